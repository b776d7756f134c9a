"""Adaptive allocation: the draw probabilities against a hand computation, the estimator's
unbiasedness by enumeration over every comparison and rater, the bounded betting sequence
against a plain loop of its formulas, coverage by seeded simulation of adaptive studies, and
what ``monitor`` reports."""

import math
import random

import numpy as np
import pytest
from scipy.special import expit

from evalhub.analysis import allocation
from evalhub.analysis.allocation import (
    Completed,
    draw,
    estimates,
    monitor,
    probabilities,
    spreads,
)
from evalhub.analysis.sequential import (
    ADAPTER_BETTER,
    GRID,
    UNDECIDED,
    confidence_sequence,
)

ALPHA = 0.05
RATERS = ("ana", "ben", "cy")
# Four comparisons × three raters: what each rater says of each comparison, and the metric's
# prediction for each comparison (wrong on comparison 3, where the raters also split).
TABLE = {
    0: (1.0, 1.0, 0.5),
    1: (0.0, 0.5, 0.0),
    2: (1.0, 1.0, 1.0),
    3: (0.0, 1.0, 0.5),
}
PREDICTIONS = {0: 0.8, 1: 0.3, 2: 0.9, 3: 0.9}
HISTORIES = (
    [],
    [(3, 0.0)],
    [(3, 0.0), (3, 1.0), (2, 1.0)],
    [(0, 1.0), (1, 0.0), (1, 0.5), (2, 1.0), (3, 0.5)],
)


def draws_of_every_comparison(predictions, judged, seed=0):
    """One draw of each comparison, found by drawing (with ``judged`` fixed) until all came."""
    rng = random.Random(seed)
    found = {}
    while len(found) < len(predictions):
        d = draw(predictions, judged, RATERS, rng)
        found.setdefault(d.item, d)
    return found


def test_spreads_and_probabilities_agree_with_a_hand_computation():
    predictions = {0: 0.5, 1: 0.8, 2: 0.2}
    # Item 7 has no prediction: its judgment is left out of everything.
    judged = [(0, 1.0), (0, 0.0), (1, 1.0), (7, 1.0)]
    # Squared residuals: item 0 ¼ + ¼ over 2, item 1 0.04 over 1, item 2 none.
    # Overall (prior ¼ with weight 1): (0.25 + 0.5 + 0.04) / (1 + 3) = 0.1975.
    expected = {
        0: math.sqrt((0.5 + 0.1975) / 3),
        1: math.sqrt((0.04 + 0.1975) / 2),
        2: math.sqrt(0.1975),
    }
    assert spreads(predictions, judged) == pytest.approx(expected, abs=1e-12)
    total = sum(expected.values())
    q = probabilities(predictions, judged)
    assert q == pytest.approx({i: 0.5 * s / total + 0.5 / 3 for i, s in expected.items()})
    assert sum(q.values()) == pytest.approx(1.0)


def test_with_no_judgment_every_comparison_is_equally_likely():
    q = probabilities(PREDICTIONS, [])
    assert q == pytest.approx(dict.fromkeys(PREDICTIONS, 0.25))
    assert spreads(PREDICTIONS, []) == pytest.approx(dict.fromkeys(PREDICTIONS, 0.5))


@pytest.mark.parametrize("judged", HISTORIES)
def test_probabilities_sum_to_one_and_never_fall_below_the_exploration_floor(judged):
    q = probabilities(PREDICTIONS, judged)
    assert sum(q.values()) == pytest.approx(1.0)
    assert min(q.values()) >= allocation.EXPLORATION / len(PREDICTIONS) - 1e-15


def test_comparisons_where_the_metric_missed_are_drawn_more_often():
    q = probabilities(PREDICTIONS, [(2, 1.0), (2, 1.0), (3, 0.0), (3, 1.0)])
    assert q[3] > q[0] > q[2]


@pytest.mark.parametrize("judged", HISTORIES)
def test_the_estimate_has_the_table_mean_as_its_expectation_whatever_was_judged(judged):
    q = probabilities(PREDICTIONS, judged)
    found = draws_of_every_comparison(PREDICTIONS, judged)
    expectation = sum(
        q[i] * np.mean(estimates([found[i]] * len(RATERS), TABLE[i], PREDICTIONS))
        for i in PREDICTIONS
    )
    table_mean = np.mean([y for row in TABLE.values() for y in row])
    assert expectation == pytest.approx(table_mean, abs=1e-12)
    # And by the formula written out: f̄ + (y − f_i) / (N q_i), for every cell.
    f_bar = sum(PREDICTIONS.values()) / 4
    by_hand = sum(
        q[i] * np.mean([f_bar + (y - PREDICTIONS[i]) / (4 * q[i]) for y in TABLE[i]])
        for i in PREDICTIONS
    )
    assert by_hand == pytest.approx(table_mean, abs=1e-12)


@pytest.mark.parametrize("judged", HISTORIES)
def test_every_outcome_of_every_comparison_lies_within_the_draws_bounds(judged):
    found = draws_of_every_comparison(PREDICTIONS, judged)
    q = probabilities(PREDICTIONS, judged)
    for item, d in found.items():
        assert d.weight == pytest.approx(1 / (4 * q[item]))
        # The bounds are the same whichever comparison was drawn: known before the draw.
        assert (d.low, d.high) == pytest.approx((found[0].low, found[0].high))
        for other in PREDICTIONS:
            moved = allocation.Draw(other, d.rater, 1 / (4 * q[other]), d.low, d.high)
            for y in (0.0, 0.5, 1.0):
                (z,) = estimates([moved], [y], PREDICTIONS)
                assert d.low - 1e-12 <= z <= d.high + 1e-12
    # The tightest bounds: each is reached by some comparison and outcome.
    reached = [
        float(estimates([allocation.Draw(i, "ana", 1 / (4 * q[i]), 0, 0)], [y], PREDICTIONS)[0])
        for i in PREDICTIONS
        for y in (0.0, 1.0)
    ]
    assert min(reached) == pytest.approx(found[0].low)
    assert max(reached) == pytest.approx(found[0].high)


def test_draws_follow_the_probabilities_and_pick_every_rater():
    judged = [(3, 0.0), (3, 1.0), (2, 1.0)]
    q = probabilities(PREDICTIONS, judged)
    rng = random.Random(3)
    drawn = [draw(PREDICTIONS, judged, RATERS, rng) for _ in range(4000)]
    for item in PREDICTIONS:
        share = sum(d.item == item for d in drawn) / len(drawn)
        assert share == pytest.approx(q[item], abs=0.025)
    assert {d.rater for d in drawn} == set(RATERS)


def capital_loop(x, m, lower, upper, centre, alpha=ALPHA):
    """Hedged capital at m, one observation at a time: WSR's predictable plug-in bet,
    regularised towards ``centre``, truncated so that an observation within its bounds never
    takes more than half the capital."""
    up = down = 1.0
    total = squares = 0.0
    out = []
    for t, (value, lo, hi) in enumerate(zip(x, lower, upper, strict=True), start=1):
        variance = (0.25 + squares) / t
        lam = math.sqrt(2 * math.log(2 / alpha) / (variance * t * math.log(1 + t)))
        lam_up = min(lam, 0.5 / (m - lo)) if m > lo else lam
        lam_down = min(lam, 0.5 / (hi - m)) if hi > m else lam
        up *= 1 + lam_up * (value - m)
        down *= 1 - lam_down * (value - m)
        out.append(0.5 * up + 0.5 * down)
        total += value
        squares += (value - (centre + total) / (t + 1)) ** 2
    return out


def kept_by_loop(x, lower, upper, centre, times):
    """The grid points the loop has never rejected by each of ``times``."""
    capital = {m: np.maximum.accumulate(capital_loop(x, m, lower, upper, centre)) for m in GRID}
    return {t: [m for m in GRID if capital[m][t] < 1 / ALPHA] for t in times}


def test_the_bounded_sequence_agrees_with_a_plain_loop_of_the_formulas():
    rng = np.random.default_rng(11)
    n = 120
    lower = -rng.uniform(0.2, 1.5, n)
    upper = 1 + rng.uniform(0.2, 1.5, n)
    x = np.where(rng.random(n) < 0.7, lower + 0.2 * (upper - lower), upper - 0.3 * (upper - lower))
    centre = 0.4
    low, high = confidence_sequence(x, lower=lower, upper=upper, centre=centre)
    step = GRID[1] - GRID[0]
    times = (5, 30, 80, 119)
    for t, kept in kept_by_loop(x, lower, upper, centre, times).items():
        assert kept, t
        assert low[t] == pytest.approx(max(0, min(kept) - step)), t
        assert high[t] == pytest.approx(min(1, max(kept) + step)), t


def test_bounds_of_zero_and_one_give_the_sequence_for_outcomes():
    rng = np.random.default_rng(12)
    x = rng.choice([0.0, 0.5, 1.0], p=[0.3, 0.2, 0.5], size=100)
    plain = confidence_sequence(x)
    bounded = confidence_sequence(x, lower=np.zeros(100), upper=np.ones(100), centre=0.5)
    np.testing.assert_array_equal(plain[0], bounded[0])
    np.testing.assert_array_equal(plain[1], bounded[1])
    # And the sequence for outcomes as it was: bets capped at ½ / m and ½ / (1 − m).
    step = GRID[1] - GRID[0]
    for t, kept in kept_by_loop(x, np.zeros(100), np.ones(100), 0.5, (20, 99)).items():
        assert plain[0][t] == pytest.approx(max(0, min(kept) - step))
        assert plain[1][t] == pytest.approx(min(1, max(kept) + step))


def adaptive_study(table, predictions, rng, draws):
    """Draw, judge (a cell judged before is reused), and record, as a study would."""
    raters = list(range(table.shape[1]))
    judged_cells: dict[tuple[int, int], float] = {}
    completed = []
    for _ in range(draws):
        d = draw(predictions, [(i, y) for (i, _), y in judged_cells.items()], raters, rng)
        y = float(table[d.item, d.rater])
        judged_cells.setdefault((d.item, d.rater), y)
        completed.append(Completed(d, y, len(judged_cells)))
    return completed, list(judged_cells.values())


def random_table(rng, *, comparisons, raters, shift):
    """Outcomes with prompt and rater effects on the logit scale and 20 % ties, and a metric
    that follows the prompt on four comparisons in five and points the other way on the rest."""
    prompt = rng.normal(0, 0.8, comparisons)
    rater = rng.normal(0, 0.3, raters)
    win = rng.random((comparisons, raters)) < expit(shift + prompt[:, None] + rater[None, :])
    table = np.where(rng.random((comparisons, raters)) < 0.2, 0.5, win.astype(float))
    sign = np.where(rng.random(comparisons) < 0.2, -1, 1)
    predictions = {i: float(expit(sign[i] * (shift + prompt[i]))) for i in range(comparisons)}
    return table, predictions


def test_two_hundred_adaptive_studies_miss_the_table_mean_in_at_most_alpha_of_them():
    rng = np.random.default_rng(16)
    table, predictions = random_table(rng, comparisons=30, raters=4, shift=0.3)
    truth = table.mean()
    missed = 0
    for seed in range(200):
        completed, judged = adaptive_study(table, predictions, random.Random(seed), 100)
        # The interval is the running intersection, so a miss at any time shows at the end.
        low, high = monitor(completed, predictions, judged=judged).interval
        missed += not low <= truth <= high
    assert missed / 200 <= ALPHA + 0.01


def test_monitor_counts_distinct_judgments_and_when_the_verdict_came():
    table = np.ones((10, 3))  # the adapter wins every comparison with every rater
    predictions = {i: 0.5 for i in range(10)}
    completed, judged = adaptive_study(table, predictions, random.Random(1), 60)
    result = monitor(completed, predictions, judged=judged)
    assert result.verdict == ADAPTER_BETTER
    assert result.judgments == len(judged) < 60 == result.units
    assert result.wins == len(judged) and result.losses == result.ties == 0
    # The first draw whose interval clears ½, read from prefixes of the study.
    first = next(
        t
        for t in range(1, 61)
        if monitor(completed[:t], predictions, judged=judged).interval[0] > 0.5
    )
    assert result.decided_at == completed[first - 1].judgments
    assert result.judgments_needed is None


def test_an_undecided_study_says_how_many_judgments_are_still_needed():
    rng = np.random.default_rng(4)
    table, predictions = random_table(rng, comparisons=40, raters=4, shift=0.4)
    completed, judged = adaptive_study(table, predictions, random.Random(2), 20)
    result = monitor(completed, predictions, judged=judged)
    assert result.verdict == UNDECIDED
    assert result.decided_at is None
    assert result.judgments_needed > 0
    nothing = monitor([], predictions, judged=[])
    assert (nothing.verdict, nothing.interval, nothing.judgments) == (UNDECIDED, (0.0, 1.0), 0)
