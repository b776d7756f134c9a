"""The betting confidence sequence: coverage by seeded simulation (independent judgments, and
judgments clustered by prompt and rater), a plain loop of the paper's formulas and a plain
ANOVA as independent computations, and the verdicts."""

import math

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import chi2

from evalhub.analysis.records import Rating
from evalhub.analysis.sequential import (
    ADAPTER_BETTER,
    BASE_BETTER,
    EQUIVALENT,
    GRID,
    RATER_CONFIDENCE,
    UNDECIDED,
    Outcome,
    bets,
    clustered_sequence,
    comparison_units,
    confidence_sequence,
    monitor,
    pair_outcomes,
    rater_variance,
    verdict_of,
)

ALPHA = 0.05


def one_per_comparison(values) -> tuple[list[Outcome], dict[int, int]]:
    """Independent judgments of one rater, each its own comparison (one rater: no rater term
    to estimate, the interval is for that rater)."""
    outcomes = [Outcome(i, "r", float(v)) for i, v in enumerate(values)]
    return outcomes, dict.fromkeys(range(len(values)), 1)


def clustered_study(rng, *, prompts, raters, overlap, prompt_sd, rater_sd):
    """Judgments at a true win rate of exactly ½ over prompts and raters (effects symmetric
    about 0 on the logit scale, ties 20 %), a prompt's judgments one after the other, its
    raters drawn at random from the panel."""
    prompt_effect = rng.normal(0, prompt_sd, prompts)
    rater_effect = rng.normal(0, rater_sd, raters)
    prompt = np.repeat(np.arange(prompts), overlap)
    rater = np.argsort(rng.random((prompts, raters)), axis=1)[:, :overlap].ravel()
    win = rng.random(len(prompt)) < expit(prompt_effect[prompt] + rater_effect[rater])
    value = np.where(rng.random(len(prompt)) < 0.2, 0.5, win.astype(float))
    outcomes = [
        Outcome(int(p), f"r{r}", float(v)) for p, r, v in zip(prompt, rater, value, strict=True)
    ]
    return outcomes, dict.fromkeys(range(prompts), overlap)


def capital_loop(x, m, alpha=ALPHA):
    """Waudby-Smith & Ramdas hedged capital at m, one judgment at a time, from the paper."""
    up = down = 1.0
    total = squares = 0.0
    out = []
    for t, value in enumerate(x, start=1):
        variance = (0.25 + squares) / t
        lam = math.sqrt(2 * math.log(2 / alpha) / (variance * t * math.log(1 + t)))
        up *= 1 + min(lam, 0.5 / m) * (value - m)
        down *= 1 - min(lam, 0.5 / (1 - m)) * (value - m)
        out.append(0.5 * up + 0.5 * down)
        total += value
        squares += (value - (0.5 + total) / (t + 1)) ** 2
    return out


def misses_truth(x: np.ndarray, truth: float) -> np.ndarray:
    """For many sequences at once (rows): does the CS ever exclude ``truth``?"""
    lam = np.vstack([bets(row, ALPHA) for row in x])
    up = np.cumsum(np.log1p(np.minimum(lam, 0.5 / truth) * (x - truth)), axis=1)
    down = np.cumsum(np.log1p(-np.minimum(lam, 0.5 / (1 - truth)) * (x - truth)), axis=1)
    return ((np.logaddexp(up, down) + math.log(0.5)) >= math.log(1 / ALPHA)).any(axis=1)


@pytest.mark.parametrize(
    ("truth", "probabilities"), [(0.5, [0.4, 0.2, 0.4]), (0.6, [0.3, 0.2, 0.5])]
)
def test_the_sequence_misses_the_truth_at_any_time_in_at_most_alpha_of_studies(
    truth, probabilities
):
    rng = np.random.default_rng(2026)
    x = rng.choice([0.0, 0.5, 1.0], p=probabilities, size=(1000, 400))
    assert misses_truth(x, truth).mean() <= ALPHA


def test_two_hundred_fair_coin_studies_read_after_every_judgment():
    rng = np.random.default_rng(16)
    missed = 0
    for _ in range(200):
        low, high = confidence_sequence(rng.integers(0, 2, 300).astype(float))
        missed += bool(((low > 0.5) | (high < 0.5)).any())
    assert missed / 200 <= ALPHA


def test_the_vectorised_sequence_agrees_with_a_plain_loop_of_the_formulas():
    rng = np.random.default_rng(5)
    x = rng.choice([0.0, 0.5, 1.0], p=[0.3, 0.2, 0.5], size=120)
    low, high = confidence_sequence(x)
    for m in (0.3, 0.45, 0.5, 0.55, 0.62, 0.8):
        ever_rejected = np.maximum.accumulate(np.array(capital_loop(x, m))) >= 1 / ALPHA
        inside = (low <= m) & (m <= high)
        # Outside the hull means rejected; a rejected m never comes back.
        assert not (~inside & ~ever_rejected).any(), m
    step = GRID[1] - GRID[0]
    for t in (10, 60, 119):
        kept = [m for m in GRID if max(capital_loop(x[: t + 1], m)) < 1 / ALPHA]
        assert low[t] == pytest.approx(max(0, min(kept) - step))
        assert high[t] == pytest.approx(min(1, max(kept) + step))


def test_the_sequence_is_nested_and_wider_than_a_fixed_sample_interval():
    rng = np.random.default_rng(9)
    x = rng.choice([0.0, 0.5, 1.0], p=[0.3, 0.2, 0.5], size=400)
    low, high = confidence_sequence(x)
    assert (np.diff(low) >= 0).all() and (np.diff(high) <= 0).all()
    n = np.arange(1, 401)
    means = np.cumsum(x) / n
    wald = 1.96 * np.sqrt(0.25 / n)
    assert ((high - low)[20:] > 2 * wald[20:] * 0.9).all()
    assert ((low <= means) & (means <= high)).all()


def test_verdicts_read_the_interval_against_half_and_the_margin():
    assert verdict_of(0.52, 0.7, margin=0.05) == ADAPTER_BETTER
    assert verdict_of(0.3, 0.49, margin=0.05) == BASE_BETTER
    assert verdict_of(0.46, 0.54, margin=0.05) == EQUIVALENT
    assert verdict_of(0.46, 0.54, margin=0.0) == UNDECIDED
    assert verdict_of(0.44, 0.54, margin=0.05) == UNDECIDED


def test_a_clear_winner_is_decided_and_an_even_match_estimates_what_is_left():
    rng = np.random.default_rng(1)
    outcomes, required = one_per_comparison(
        rng.choice([0.0, 0.5, 1.0], p=[0.15, 0.2, 0.65], size=300)
    )
    strong = monitor(outcomes, required=required)
    assert strong.verdict == ADAPTER_BETTER
    assert strong.decided_at is not None and strong.decided_at < 300
    assert strong.judgments_needed is None
    outcomes, required = one_per_comparison(
        rng.choice([0.0, 0.5, 1.0], p=[0.35, 0.2, 0.45], size=40)
    )
    even = monitor(outcomes, required=required)
    assert even.verdict == UNDECIDED
    assert even.judgments_needed is not None and even.judgments_needed > 0
    empty = monitor([], required={})
    assert (empty.verdict, empty.judgments, empty.units, empty.estimate) == (
        UNDECIDED,
        0,
        0,
        None,
    )
    assert empty.judgments_needed is None  # nothing to project from


def test_a_comparison_counts_once_all_its_judgments_are_in():
    outcomes = [
        Outcome(1, "x", 1.0),
        Outcome(2, "x", 0.0),
        Outcome(1, "y", 0.5),
        Outcome(3, "y", 1.0),
        Outcome(2, "z", 1.0),
    ]
    units = comparison_units(outcomes, {1: 2, 2: 2, 3: 2})
    assert units.means.tolist() == [0.75, 0.5]
    assert units.completed_at.tolist() == [3, 5]
    state = monitor(outcomes, required={1: 2, 2: 2, 3: 2})
    assert (state.judgments, state.units, state.wins, state.ties) == (5, 2, 3, 1)
    assert state.estimate == pytest.approx(0.625)


def test_ten_comparisons_won_outright_decide_at_the_judgment_that_completes_the_tenth():
    outcomes = [Outcome(item, rater, 1.0) for item in range(12) for rater in ("x", "y")]
    state = monitor(outcomes, required=dict.fromkeys(range(12), 2))
    # Ten straight wins are the fewest that take the capital at ½ past 1/α = 20.
    assert (state.verdict, state.decided_at) == (ADAPTER_BETTER, 20)


def test_the_rater_term_agrees_with_a_plain_one_way_anova():
    outcomes = [
        Outcome(0, "a", 1.0),
        Outcome(0, "b", 0.0),
        Outcome(1, "a", 1.0),
        Outcome(1, "c", 0.5),
        Outcome(2, "b", 0.0),
        Outcome(2, "c", 1.0),
        Outcome(3, "a", 1.0),
        Outcome(3, "b", 0.5),
    ]
    groups = {"a": [1.0, 1.0, 1.0], "b": [0.0, 0.0, 0.5], "c": [0.5, 1.0]}
    n = sum(len(g) for g in groups.values())
    k = len(groups)
    grand = sum(sum(g) for g in groups.values()) / n
    between = sum(len(g) * (sum(g) / len(g) - grand) ** 2 for g in groups.values()) / (k - 1)
    within = sum(sum((v - sum(g) / len(g)) ** 2 for v in g) for g in groups.values()) / (n - k)
    k0 = (n - sum(len(g) ** 2 for g in groups.values()) / n) / (k - 1)
    upper = between * (k - 1) / chi2.ppf(1 - RATER_CONFIDENCE, k - 1)
    shares = sum((len(g) / n) ** 2 for g in groups.values())
    units = [outcomes[i : i + 2] for i in range(0, 8, 2)]
    assert rater_variance(units)[-1] == pytest.approx((upper - within) / k0 * shares)
    # After one comparison each rater has one judgment: nothing within, no estimate.
    assert rater_variance(units)[0] == 0


def test_judgment_level_betting_misses_under_prompt_clustering_and_comparison_level_does_not():
    rng = np.random.default_rng(7)
    naive = clustered = 0
    runs = 200
    for _ in range(runs):
        outcomes, required = clustered_study(
            rng, prompts=100, raters=6, overlap=3, prompt_sd=2.5, rater_sd=0.0
        )
        low, high = confidence_sequence([o.value for o in outcomes])
        naive += bool(((low > 0.5) | (high < 0.5)).any())
        low, high = confidence_sequence(comparison_units(outcomes, required).means)
        clustered += bool(((low > 0.5) | (high < 0.5)).any())
    assert naive / runs > ALPHA
    assert clustered / runs <= ALPHA


def test_the_clustered_interval_misses_an_even_match_in_at_most_alpha_of_studies():
    rng = np.random.default_rng(2027)
    missed = 0
    runs = 400
    for _ in range(runs):
        outcomes, required = clustered_study(
            rng, prompts=300, raters=6, overlap=2, prompt_sd=1.0, rater_sd=0.3
        )
        low, high = clustered_sequence(comparison_units(outcomes, required))
        missed += bool(((low > 0.5) | (high < 0.5)).any())
    assert missed / runs <= ALPHA


def test_outcomes_follow_the_adapter_whichever_side_it_was_stored_on():
    ratings = [
        Rating(1, "r", "adapter", "base", "a"),
        Rating(2, "r", "base", "adapter", "a"),
        Rating(3, "r", "adapter", "base", "tie"),
        Rating(4, "r", "adapter", "base", "both_bad"),
        Rating(5, "r", "adapter", "other", "a"),
        Rating(6, "r", "adapter", "base", "a", gold="a"),
    ]
    assert pair_outcomes(ratings, "adapter", "base") == [
        Outcome(1, "r", 1.0),
        Outcome(2, "r", 0.0),
        Outcome(3, "r", 0.5),
        Outcome(4, "r", 0.5),
    ]


def test_by_default_the_verdict_is_about_the_panel_and_only_at_large_widens_for_raters():
    # Rater x always prefers the adapter, rater y never: the panel is split, raters differ.
    outcomes = [
        Outcome(item, rater, value)
        for item in range(40)
        for rater, value in (("x", 1.0), ("y", 0.0 if item % 4 else 1.0))
    ]
    required = dict.fromkeys(range(40), 2)
    units = comparison_units(outcomes, required)
    panel = monitor(outcomes, required=required)
    low, high = confidence_sequence(units.means)
    # Exactly the betting sequence on the comparison means, intersected over time.
    assert panel.interval == pytest.approx(
        (np.maximum.accumulate(low)[-1], np.minimum.accumulate(high)[-1])
    )
    assert (panel.rater_design_effect, panel.raters_at_large) == (1.0, False)
    at_large = monitor(outcomes, required=required, raters_at_large=True)
    assert at_large.raters_at_large and at_large.rater_design_effect > 1
    assert at_large.interval[0] < panel.interval[0] and at_large.interval[1] >= panel.interval[1]
