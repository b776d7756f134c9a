"""Empty outputs score 0; per-metric summaries pair items by key."""

import pytest

from evalhub.metrics import METRICS
from evalhub.metrics.bertscore import bertscore_scores, default_encoder
from evalhub.metrics.rouge import rouge_scores
from evalhub.metrics.scoring import score_pairs
from evalhub.metrics.summary import metric_intervals, paired_difference


def test_empty_outputs_score_zero_and_others_match_the_metrics():
    encoder = default_encoder()
    outputs = ["the cat sat on the mat", "", "   \n", "Paris is in France"]
    references = ["a cat on a mat", "anything", "something", "France's capital is Paris"]
    scores = score_pairs(outputs, references, encoder=encoder)
    assert [s.empty for s in scores] == [False, True, True, False]
    assert scores[1].metrics == dict.fromkeys(METRICS, 0.0)
    direct = [
        {**r, **b}
        for r, b in zip(
            rouge_scores([outputs[0], outputs[3]], [references[0], references[3]]),
            bertscore_scores(
                [outputs[0], outputs[3]], [references[0], references[3]], encoder=encoder
            ),
            strict=True,
        )
    ]
    assert scores[0].metrics == pytest.approx(direct[0])
    assert scores[3].metrics == pytest.approx(direct[1])


def test_a_missing_reference_is_an_error_for_the_caller_to_skip():
    with pytest.raises(ValueError, match="reference 1 is empty"):
        score_pairs(["a", "b"], ["x", " "], encoder=default_encoder())


def test_metric_intervals_report_the_plain_mean_of_each_metric():
    rows = [{"rouge1": 0.2, "bertscore_f1": 0.8}, {"rouge1": 0.4, "bertscore_f1": 0.6}]
    summary = metric_intervals(rows, n_resamples=200)
    assert summary["rouge1"]["mean"] == pytest.approx(0.3)
    assert summary["bertscore_f1"]["mean"] == pytest.approx(0.7)
    assert summary["rouge1"]["n"] == 2
    assert "rouge2" not in summary


def test_paired_difference_uses_only_items_both_systems_scored():
    adapter = {1: {"rouge1": 0.5}, 2: {"rouge1": 0.9}, 3: {"rouge1": 0.1}}
    base = {1: {"rouge1": 0.25}, 2: {"rouge1": 0.4}}
    summary = paired_difference(adapter, base, n_resamples=200)
    assert summary["rouge1"]["n"] == 2
    assert summary["rouge1"]["mean"] == pytest.approx((0.25 + 0.5) / 2)
