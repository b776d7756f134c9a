"""ROUGE against rouge_score called directly, and one value worked out by hand."""

import pytest
from rouge_score import rouge_scorer

from evalhub.metrics.rouge import rouge_scores

PAIRS = [
    ("The cat sat on the mat.", "A cat was sitting on the mat."),
    ("Paris is the capital of France.", "The capital of France is Paris."),
    ("Running dogs ran quickly", "the dog runs quick"),
    ("completely unrelated words here", "nothing in common at all"),
    ("same text", "same text"),
]


def test_rouge_equals_rouge_score_with_stemming_on_the_same_strings():
    reference = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    ours = rouge_scores([c for c, _ in PAIRS], [r for _, r in PAIRS])
    for (candidate, target), mine in zip(PAIRS, ours, strict=True):
        expected = reference.score(target, candidate)
        for key in ("rouge1", "rouge2", "rougeL"):
            assert mine[key] == pytest.approx(expected[key].fmeasure, abs=1e-12)


def test_rouge1_by_hand():
    # candidate "the cat sat" vs reference "the cat ran away": 2 shared unigrams,
    # precision 2/3, recall 2/4, F = 2PR / (P + R) = 4/7.
    [score] = rouge_scores(["the cat sat"], ["the cat ran away"])
    assert score["rouge1"] == pytest.approx(4 / 7)
    # bigrams: "the cat" shared; precision 1/2, recall 1/3, F = 2/5.
    assert score["rouge2"] == pytest.approx(2 / 5)


def test_stemming_matches_inflected_forms():
    [score] = rouge_scores(["cats running"], ["cat runs"])
    assert score["rouge1"] == pytest.approx(1.0)


def test_lengths_must_match():
    with pytest.raises(ValueError, match="differ in length"):
        rouge_scores(["a"], [])
