"""The form check: surface features by hand, the paired logistic fit against scipy's optimiser
and statsmodels' conditional logit, the cross-validation redone independently, the interval
against scipy's exact binomial interval, and seeded simulations with a known answer (same form:
chance; a house format: near certainty)."""

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import binomtest
from statsmodels.discrete.conditional_models import ConditionalLogit

from evalhub.analysis.recognisability import (
    FEATURES,
    FOLDS,
    MIN_PAIRS,
    PENALTY,
    WARN_ABOVE,
    fit_pairs,
    fold_of_each,
    form_check,
    surface_features,
    telltales,
)
from evalhub.services.gold import gold_load
from tests.evalhub.analysis.answers import anything, house, prose


def differences(pairs: int, seed: int, columns: int = 4) -> np.ndarray:
    """Feature differences of overlapping classes (no perfect separation)."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.3, 1.0, size=(pairs, columns))


# --- features -----------------------------------------------------------------------------


def test_surface_features_count_markdown_marks_and_shared_phrases():
    markdown = (
        "# Steps\n\n- weigh the flour\n* sift it\n1. mix, then **rest** it\n"
        "```\ncode\n```\nNote: done."
    )
    texts = [markdown, "Note that it is fine", "Note that 2 cups = 473 ml"]
    row = dict(zip(FEATURES, surface_features(texts)[0], strict=True))
    lines, words = 8, 19
    assert row["line count"] == pytest.approx(math.log1p(lines))
    assert row["word count"] == pytest.approx(math.log1p(words))
    assert row["words per line"] == pytest.approx(words / lines)
    assert row["bullet marks"] == pytest.approx(2 / lines)
    assert row["numbered lists"] == pytest.approx(1 / lines)
    assert row["headings"] == 1 and row["bold text"] == 1 and row["code fences"] == 2
    assert row["lines opening with a label"] == pytest.approx(1 / lines)
    assert row["commas"] == pytest.approx(1 / words)
    assert row["colons"] == pytest.approx(1 / words)
    assert row["a closing full stop"] == 1
    # "# steps" opens no other text; "note that" opens both others, each sharing with one.
    assert row["a shared opening"] == 0
    assert surface_features(texts)[1][FEATURES.index("a shared opening")] == pytest.approx(1 / 2)
    other = dict(zip(FEATURES, surface_features(texts)[2], strict=True))
    assert other["numbers"] == pytest.approx(2 / 7) and other["symbols"] == pytest.approx(1 / 7)


def test_an_empty_answer_has_features_and_no_division_by_zero():
    features = surface_features(["", "Answer: 1 g"])
    assert np.isfinite(features).all() and features[0][FEATURES.index("word count")] == 0


# --- the paired logistic fit -----------------------------------------------------------------


def test_the_fit_minimises_the_ridge_penalised_paired_likelihood():
    d = differences(60, seed=1)

    def objective(w):
        return np.logaddexp(0, -(d @ w)).sum() + PENALTY / 2 * w @ w

    reference = minimize(objective, np.zeros(d.shape[1]), method="BFGS", options={"gtol": 1e-10})
    assert fit_pairs(d) == pytest.approx(reference.x, abs=1e-5)


def test_the_fit_is_statsmodels_conditional_logit_for_matched_pairs_without_penalty():
    """Each pair is a stratum of two answers, the first system's being the event: the
    conditional likelihood is σ(w·(x₁ − x₂)), which the fit maximises (penalty → 0)."""
    d = differences(80, seed=2, columns=3)
    x = np.empty((160, 3))
    x[0::2], x[1::2] = d, 0.0
    event = np.tile([1, 0], 80)
    groups = np.repeat(np.arange(80), 2)
    model = ConditionalLogit(event, x, groups=groups)
    reference = model.fit(method="newton", maxiter=100, tol=1e-12, disp=0).params
    assert fit_pairs(d, penalty=1e-9) == pytest.approx(reference, abs=1e-5)


def test_perfectly_separated_pairs_still_give_a_finite_fit():
    d = np.abs(differences(30, seed=3)) + 1.0
    weights = fit_pairs(d)
    assert np.isfinite(weights).all() and (d @ weights > 0).all()


# --- cross-validation and the interval -------------------------------------------------------


def test_folds_split_the_pairs_into_near_equal_seeded_parts():
    folds = fold_of_each(23, 5, seed=4)
    assert sorted(np.bincount(folds)) == [4, 4, 5, 5, 5]
    assert (folds == fold_of_each(23, 5, seed=4)).all()
    assert (folds != fold_of_each(23, 5, seed=5)).any()


def by_hand_cross_validation(pairs: list[tuple[str, str]], seed: int) -> float:
    """The accuracy recomputed: each fold scaled by its training answers' spread, fitted with
    scipy's optimiser, scored on its held-out pairs (a tie counts half)."""
    features = surface_features([text for pair in pairs for text in pair])
    first, second = features[0::2], features[1::2]
    folds = fold_of_each(len(pairs), FOLDS, seed)
    correct = 0.0
    for fold in range(FOLDS):
        train, test = folds != fold, folds == fold
        spread = np.vstack([first[train], second[train]]).std(axis=0)
        spread[spread == 0] = 1.0
        d = (first[train] - second[train]) / spread

        def objective(w, d=d):
            return np.logaddexp(0, -(d @ w)).sum() + PENALTY / 2 * w @ w

        w = minimize(objective, np.zeros(len(FEATURES)), method="BFGS").x
        margin = ((first[test] - second[test]) / spread) @ w
        correct += float((margin > 1e-9).sum() + 0.5 * (np.abs(margin) <= 1e-9).sum())
    return correct / len(pairs)


def test_cross_validated_accuracy_matches_a_second_computation():
    rng = random.Random(6)
    # Overlapping styles: the first system writes the house format 70 % of the time.
    pairs = [(house(rng) if rng.random() < 0.7 else prose(rng), anything(rng)) for _ in range(60)]
    found = form_check(pairs, seed=6).recognisability
    assert found.folds == FOLDS and found.pairs == 60
    assert found.accuracy == pytest.approx(by_hand_cross_validation(pairs, seed=6))


def test_the_interval_and_p_value_are_the_exact_binomial_ones():
    rng = random.Random(7)
    pairs = [(house(rng) if rng.random() < 0.7 else prose(rng), anything(rng)) for _ in range(50)]
    found = form_check(pairs, seed=7).recognisability
    exact = binomtest(round(found.correct), found.pairs, 0.5, alternative="greater")
    interval = binomtest(round(found.correct), found.pairs).proportion_ci(0.95, method="exact")
    assert found.correct == round(found.correct)
    assert found.interval == pytest.approx((interval.low, interval.high))
    assert found.p_value == pytest.approx(exact.pvalue)


# --- simulations with a known answer ---------------------------------------------------------


def test_answers_of_one_distribution_are_told_apart_at_chance():
    """Cross-validation under no difference scatters a little more than a binomial (the folds'
    models are not independent), so the exact interval covers 50 % in about 90 % of studies,
    not 95 %; the warning, far above chance, never fires."""
    found = []
    for seed in range(40):
        rng = random.Random(seed)
        pairs = [(anything(rng), anything(rng)) for _ in range(60)]
        found.append(form_check(pairs, seed=seed).recognisability)
    assert 0.45 < np.mean([f.accuracy for f in found]) < 0.55
    assert sum(f.interval[0] < 0.5 < f.interval[1] for f in found) >= 0.8 * len(found)
    assert not any(f.warn for f in found)


def test_a_house_format_against_prose_is_told_apart_almost_always_and_warns():
    rng = random.Random(8)
    found = form_check([(house(rng), prose(rng)) for _ in range(36)], seed=8).recognisability
    assert found.accuracy >= 0.97 and found.interval[0] > WARN_ABOVE and found.warn
    assert found.p_value < 1e-6
    assert {t.feature for t in found.telltales} & {"line count", "lines opening with a label"}
    assert all(t.agreement == 1.0 for t in found.telltales)


def test_telltales_are_the_features_that_agree_most_often_on_their_own():
    first = np.zeros((4, len(FEATURES)))
    second = np.zeros((4, len(FEATURES)))
    words, lines, commas = (FEATURES.index(f) for f in ("word count", "line count", "commas"))
    first[:, lines] = [3, 3, 3, 3]  # more lines in 4 of 4 pairs
    second[:, lines] = [1, 1, 1, 1]
    first[:, words] = [1, 1, 1, 9]  # fewer words in 3 of 4 pairs
    second[:, words] = [2, 2, 2, 2]
    first[:, commas] = [1, 0, 0, 0]  # higher in 1, tied in 3: 1/4 + 3/8
    found = telltales(first, second)
    assert [(t.feature, t.agreement, t.higher) for t in found[:2]] == [
        ("line count", 1.0, True),
        ("word count", 0.75, False),
    ]
    assert found[2].feature == "commas" and found[2].agreement == pytest.approx(5 / 8)


def test_too_few_pairs_give_no_check():
    rng = random.Random(9)
    assert form_check([(house(rng), prose(rng)) for _ in range(MIN_PAIRS - 1)]) is None


# --- gold pairs ------------------------------------------------------------------------------


def fisher_by_hand(gold_out: int, gold: int, real_out: int, real: int) -> float:
    """P(at least ``gold_out`` of the standing-out pairs among the gold ones) when the gold
    pairs are drawn at random from all pairs (hypergeometric)."""
    out, total = gold_out + real_out, gold + real
    return sum(
        math.comb(out, k) * math.comb(total - out, gold - k)
        for k in range(gold_out, min(out, gold) + 1)
    ) / math.comb(total, gold)


def test_gold_pairs_with_both_answers_in_one_form_stand_out():
    rng = random.Random(10)
    real = [(house(rng), prose(rng)) for _ in range(36)]
    gold = [(house(rng), house(rng)) for _ in range(5)] + [(house(rng), prose(rng))] * 2
    found = form_check(real, gold=gold, seed=10).gold
    assert found.standing_out == (0, 1, 2, 3, 4)
    assert found.real_pairs == 36
    assert found.p_value == pytest.approx(fisher_by_hand(5, 7, found.real_standing_out, 36))
    assert found.p_value < 1e-4
    assert found.warn_standing_out


def test_gold_pairs_like_real_ones_do_not_stand_out():
    rng = random.Random(13)
    real = [(house(rng), prose(rng)) for _ in range(36)]
    gold = [(house(rng), prose(rng)) for _ in range(4)] + [(prose(rng), house(rng))] * 3
    found = form_check(real, gold=gold, seed=13).gold
    assert found.standing_out == () and not found.warn_standing_out
    assert found.better_like_first == 4 and not found.warn_better_form


def test_gold_pairs_whose_better_answer_always_has_one_form_give_it_away():
    rng = random.Random(11)
    real = [(house(rng), prose(rng)) for _ in range(36)]
    always = [(house(rng), prose(rng)) for _ in range(6)]
    found = form_check(real, gold=always, seed=11).gold
    assert found.standing_out == () and not found.warn_standing_out
    assert found.looking_real == 6 and found.better_like_first == 6 and found.warn_better_form
    mixed = always[:3] + [(prose(rng), house(rng)) for _ in range(3)]
    found = form_check(real, gold=mixed, seed=11).gold
    assert found.better_like_first == 3 and not found.warn_better_form


def test_the_demos_gold_pairs_look_like_its_real_pairs():
    """Real demo pairs: the adapter's house-format answer (the held-out references stand in for
    it) beside the base model's prose. No gold pair stands out, and the better answer has the
    house format in some pairs only."""
    demo = Path(__file__).resolve().parents[3] / "trainer" / "demo_data"
    with (demo / "demo.jsonl").open(encoding="utf-8") as lines:
        references = [json.loads(line)["messages"][-1]["content"] for line in lines][:36]
    rng = random.Random(12)
    real = [(reference, prose(rng)) for reference in references]
    gold = [(item.better, item.worse) for item in gold_load(demo / "gold.jsonl")]
    found = form_check(real, gold=gold, seed=12).gold
    assert found.standing_out == () and not found.warn_standing_out
    assert 0 < found.better_like_first < found.items and not found.warn_better_form
