import math
import random

import pytest

from evalhub.analysis.rater_quality import (
    Gate,
    competence,
    competences,
    gate_reasons,
    weight,
    weighted_win_rate,
)
from evalhub.analysis.records import VERDICTS
from tests.evalhub.analysis.builders import rating

TRUE_ACCURACY = {"r1": 0.9, "r2": 0.85, "r3": 0.8, "r4": 0.75, "r5": 0.7, "r6": 0.6, "r7": 0.3}


def _simulated(seed: int, items: int = 600, overlap: int = 4, gold_every: int = 0):
    """Raters of known accuracy: each names the true verdict with that probability, else one
    of the three others at random; each item goes to ``overlap`` raters drawn at random."""
    rng = random.Random(seed)
    ratings = []
    for item in range(items):
        truth = rng.choice(VERDICTS[:3])
        gold = truth if gold_every and item % gold_every == 0 else None
        for rater in rng.sample(sorted(TRUE_ACCURACY), overlap):
            right = rng.random() < TRUE_ACCURACY[rater]
            verdict = truth if right else rng.choice([v for v in VERDICTS if v != truth])
            ratings.append(rating(item, verdict, rater=rater, gold=gold))
    return ratings


def test_simulated_raters_accuracies_are_recovered():
    fitted = competence(_simulated(seed=1))
    for rater, p in TRUE_ACCURACY.items():
        assert fitted[rater] == pytest.approx(p, abs=0.05), rater


def _reference_em(ratings, iterations=200):
    """A second, plain-loop implementation of one-coin Dawid–Skene with gold anchoring and a
    Beta(1, 1) prior, written from the paper's E and M steps."""
    k = len(VERDICTS)
    items = sorted({r.item for r in ratings})
    raters = sorted({r.rater for r in ratings})
    by_item = {i: [r for r in ratings if r.item == i] for i in items}
    gold = {r.item: r.gold for r in ratings if r.gold is not None}
    truth = {}
    for i in items:
        if i in gold:
            truth[i] = {v: float(v == gold[i]) for v in VERDICTS}
        else:
            votes = [r.verdict for r in by_item[i]]
            truth[i] = {v: votes.count(v) / len(votes) for v in VERDICTS}
    p = {}
    for _ in range(iterations):
        for rater in raters:
            mine = [r for r in ratings if r.rater == rater]
            p[rater] = (sum(truth[r.item][r.verdict] for r in mine) + 1) / (len(mine) + 2)
        mass = {v: sum(truth[i][v] for i in items) + 1 for v in VERDICTS}
        prior = {v: m / sum(mass.values()) for v, m in mass.items()}
        for i in items:
            if i in gold:
                continue
            likelihood = {}
            for v in VERDICTS:
                value = prior[v]
                for r in by_item[i]:
                    value *= p[r.rater] if r.verdict == v else (1 - p[r.rater]) / (k - 1)
                likelihood[v] = value
            total = sum(likelihood.values())
            truth[i] = {v: x / total for v, x in likelihood.items()}
    return p


def test_competence_matches_a_plain_loop_implementation():
    ratings = _simulated(seed=7, items=60, overlap=3, gold_every=6)
    fitted = competence(ratings)
    reference = _reference_em(ratings)
    for rater in reference:
        assert fitted[rater] == pytest.approx(reference[rater], abs=1e-6)


def test_on_gold_items_alone_competence_is_the_smoothed_gold_accuracy():
    # Every item is gold, so the truth is known: p = (right + 1) / (n + 2), by hand.
    ratings = [rating(i, "a" if i < 5 else "b", rater="ann", gold="a") for i in range(7)]
    ratings += [rating(i, "a", rater="bob", gold="a") for i in range(7)]
    fitted = competence(ratings)
    assert fitted["ann"] == pytest.approx(6 / 9)
    assert fitted["bob"] == pytest.approx(8 / 9)


def test_gold_items_pull_the_truth_against_a_confident_majority():
    # Two raters agree with each other and are wrong on every gold item; the third is right.
    ratings = []
    for item in range(12):
        gold = "a" if item < 6 else None
        ratings += [rating(item, "b", rater=name, gold=gold) for name in ("x", "y")]
        ratings.append(rating(item, "a", rater="z", gold=gold))
    fitted = competence(ratings)
    assert fitted["z"] > 0.5 > fitted["x"]


def test_weight_is_log_odds_and_zero_at_chance():
    assert weight(0.25) == pytest.approx(0.0)
    assert weight(0.1) == 0.0
    assert weight(0.75) == pytest.approx(math.log(0.75 * 3 / 0.25))


def test_a_rater_far_below_the_rest_is_flagged():
    rows = {c.rater: c for c in competences(_simulated(seed=3, items=200))}
    assert rows["r7"].far_below
    assert not any(rows[r].far_below for r in TRUE_ACCURACY if r != "r7")


def test_weighted_win_rate_by_hand():
    ratings = [rating(i, "a", rater="good") for i in range(12)]
    ratings += [rating(i, "b", rater="poor") for i in range(12)]
    ratings.append(rating(0, "tie", rater="poor"))
    ratings.append(rating(99, "b", rater="poor", gold="a"))  # gold: not in the win rate
    result = weighted_win_rate(ratings, {"good": 3.0, "poor": 1.0}, "adapter", "base")
    # good: 12 wins × 3; poor: 12 losses and one tie (½) × 1 → 36.5 / (36 + 13)
    assert result.n == 25
    assert result.win_rate == pytest.approx(36.5 / 49)
    assert result.bootstrap.low <= result.win_rate <= result.bootstrap.high


def test_weighted_win_rate_is_none_when_every_weight_is_zero():
    ratings = [rating(i, "a", rater="chance") for i in range(3)]
    assert weighted_win_rate(ratings, {"chance": 0.0}, "adapter", "base").win_rate is None


GATE = Gate(min_gold_accuracy=0.5, min_gold_judged=3, min_median_seconds=3)


def test_gate_names_each_reason_a_rater_fails():
    assert gate_reasons(GATE, gold_judged=7, gold_correct=0, median_time_ms=1000) == [
        "0 of 7 gold items right (under 50%)",
        "median 1.0 s per item (under 3 s)",
    ]


def test_gate_passes_a_careful_rater_and_waits_for_enough_gold():
    assert gate_reasons(GATE, gold_judged=7, gold_correct=4, median_time_ms=9000) == []
    assert gate_reasons(GATE, gold_judged=2, gold_correct=0, median_time_ms=None) == []


def test_a_zero_threshold_checks_nothing():
    off = Gate(min_gold_accuracy=0, min_gold_judged=3, min_median_seconds=0)
    assert gate_reasons(off, gold_judged=7, gold_correct=0, median_time_ms=10) == []
