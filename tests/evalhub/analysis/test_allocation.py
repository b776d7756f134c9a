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
    study_design,
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


def test_calibration_spreads_and_probabilities_agree_with_a_hand_computation():
    # Comparison 3 is never judged; its prediction shares the top band [0.8, 1] with 1's.
    predictions = {0: 0.5, 1: 0.9, 2: 0.1, 3: 0.85}
    # Item 7 has no prediction: its judgment is left out of everything.
    judged = [(1, 1.0), (2, 0.5), (0, 0.5), (1, 0.5), (7, 1.0)]
    # Calibration: judged predictions 0.9, 0.1, 0.5, 0.9 (mean 0.6), outcomes 1, ½, ½, ½
    # (mean 0.625); Σ (f − f̄)² = 0.09 + 0.25 + 0.01 + 0.09 = 0.44 and
    # Σ (f − f̄)(y − ȳ) = 0.3·0.375 − 0.5·0.125 ... = 0.15, so the slope shrunk towards 1 with
    # weight 0.1 is (0.15 + 0.1) / (0.44 + 0.1).
    slope = 0.25 / 0.54
    g = {i: 0.625 + slope * (f - 0.6) for i, f in predictions.items()}
    _, plan = study_design(predictions, judged)
    assert plan.calibrated.tolist() == pytest.approx([g[0], g[1], g[2], g[3]], abs=1e-12)
    squares = {
        0: [(0.5 - g[0]) ** 2],
        1: [(1.0 - g[1]) ** 2, (0.5 - g[1]) ** 2],
        2: [(0.5 - g[2]) ** 2],
        3: [],
    }
    every = [r for rs in squares.values() for r in rs]
    overall = (0.25 + sum(every)) / (1 + len(every))
    # Bands of a fifth: 0.1 in the first, 0.5 in the third, 0.9 and 0.85 in the last.
    band_of = {0: 2, 1: 4, 2: 0, 3: 4}
    band = {
        b: (sum(r for i in squares if band_of[i] == b for r in squares[i]) + 2 * overall)
        / (sum(len(squares[i]) for i in squares if band_of[i] == b) + 2)
        for b in (0, 2, 4)
    }
    spread = {
        i: math.sqrt((sum(squares[i]) + band[band_of[i]]) / (len(squares[i]) + 1))
        for i in predictions
    }
    assert plan.spreads.tolist() == pytest.approx([spread[i] for i in range(4)], abs=1e-12)
    total = sum(spread.values())
    q = probabilities(predictions, judged)
    assert q == pytest.approx({i: 0.5 * s / total + 0.5 / 4 for i, s in spread.items()})
    assert sum(q.values()) == pytest.approx(1.0)


def test_an_overconfident_metric_is_flattened_and_a_blind_one_ignored():
    predictions = {i: f for i, f in enumerate((0.05, 0.2, 0.35, 0.65, 0.8, 0.95))}
    # The experts follow the metric's direction but far less surely: the slope of y on f is
    # 0.3, with Σ (f − ½)² = 5 × 0.63 over the 30 judgments, shrunk towards 1 with weight 0.1.
    leaning = [(i, 0.5 + 0.3 * (f - 0.5)) for i, f in predictions.items()] * 5
    g = study_design(predictions, leaning)[1].calibrated
    slope = (0.3 * 3.15 + 0.1) / (3.15 + 0.1)
    assert g == pytest.approx([0.5 + slope * (f - 0.5) for f in predictions.values()])
    # The experts say ¾ whatever the metric: the slope is what the prior leaves, the
    # prediction nearly the running mean.
    flat = [(i, 0.75) for i in predictions] * 5
    g = study_design(predictions, flat)[1].calibrated
    slope = 0.1 / (3.15 + 0.1)
    assert g == pytest.approx([0.75 + slope * (f - 0.5) for f in predictions.values()])


def test_a_comparison_never_judged_is_drawn_more_where_the_metric_missed_similar_ones():
    # Two bands: the metric is right on low predictions, wrong on high ones.
    predictions = {0: 0.1, 1: 0.15, 2: 0.12, 3: 0.9, 4: 0.85, 5: 0.88}
    judged = [(0, 0.0), (1, 0.0), (0, 0.0), (3, 0.0), (4, 1.0), (3, 1.0)]
    q = probabilities(predictions, judged)
    assert q[5] > q[2]


def test_with_no_judgment_every_comparison_is_equally_likely():
    q = probabilities(PREDICTIONS, [])
    assert q == pytest.approx(dict.fromkeys(PREDICTIONS, 0.25))
    _, plan = study_design(PREDICTIONS, [])
    assert plan.spreads.tolist() == pytest.approx([0.5] * 4)
    # Before any judgment the metric is taken as it is.
    assert plan.calibrated.tolist() == pytest.approx([PREDICTIONS[i] for i in range(4)])


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
        q[i] * np.mean(estimates([found[i]] * len(RATERS), TABLE[i])) for i in PREDICTIONS
    )
    table_mean = np.mean([y for row in TABLE.values() for y in row])
    assert expectation == pytest.approx(table_mean, abs=1e-12)
    # And by the formula written out: ḡ + (y − g_i) / (N q_i), for every cell, where the
    # centre ḡ is the mean of the calibrated predictions of all comparisons.
    g = {i: found[i].prediction for i in PREDICTIONS}
    g_bar = sum(g.values()) / 4
    assert all(d.centre == pytest.approx(g_bar) for d in found.values())
    by_hand = sum(
        q[i] * np.mean([g_bar + (y - g[i]) / (4 * q[i]) for y in TABLE[i]]) for i in PREDICTIONS
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
        for y in (0.0, 0.5, 1.0):
            (z,) = estimates([d], [y])
            assert d.low - 1e-12 <= z <= d.high + 1e-12
    # The tightest bounds: each is reached by some comparison and outcome.
    reached = [float(estimates([found[i]], [y])[0]) for i in PREDICTIONS for y in (0.0, 1.0)]
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
