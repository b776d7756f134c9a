"""The prediction-powered interval against a hand computation of the PPI++ mean estimator and
its normal interval, and a seeded coverage simulation."""

import math
import random
import statistics

import numpy as np
import pytest

from evalhub.analysis.ppi import (
    MIN_LABELLED,
    REASON_CONSTANT_SIGNAL,
    REASON_FEW_LABELLED,
    REASON_FEW_UNLABELLED,
    NotComputed,
    PredictionPowered,
    complete_comparisons,
    metric_predictions,
    prediction_powered,
)
from evalhub.analysis.sequential import Outcome

Z = statistics.NormalDist().inv_cdf(0.975)


def by_hand(y: list[float], f: list[float], f_unlabelled: list[float]):
    """Angelopoulos et al. 2023 with PPI++'s λ (arXiv 2311.01453, the mean case): λ =
    Cov(Y, f) / ((1 + n/N) · Var(f)), clipped to [0, 1]; θ = λ·mean(f_U) + mean(Y − λ f_L);
    se² = λ² Var(f_U) / N + Var(Y − λ f_L) / n."""
    n, big_n = len(y), len(f_unlabelled)
    y_bar, f_bar = sum(y) / n, sum(f) / n
    covariance = sum((a - y_bar) * (b - f_bar) for a, b in zip(y, f, strict=True)) / n
    lam = min(1.0, max(0.0, covariance / ((1 + n / big_n) * statistics.variance(f + f_unlabelled))))
    rectifier = [a - lam * b for a, b in zip(y, f, strict=True)]
    theta = lam * sum(f_unlabelled) / big_n + sum(rectifier) / n
    se = math.sqrt(
        lam**2 * statistics.pvariance(f_unlabelled) / big_n + statistics.pvariance(rectifier) / n
    )
    return theta, (theta - Z * se, theta + Z * se)


def study(n: int, big_n: int, noise: float, seed: int):
    """Comparison outcomes (means of two judgments, 0 … 1) and a signal that tracks them with
    ``noise``; the first ``n`` comparisons are complete."""
    rng = random.Random(seed)
    truth = [rng.choice([0.0, 0.5, 1.0, 1.0, 0.5, 0.75, 0.25]) for _ in range(n + big_n)]
    signal = [min(1.0, max(0.0, t + rng.gauss(0, noise))) for t in truth]
    outcomes = dict(enumerate(truth[:n]))
    return outcomes, dict(enumerate(signal)), truth


def test_estimate_and_interval_match_the_hand_computation():
    outcomes, predictions, _ = study(40, 120, 0.25, seed=3)
    result = prediction_powered(outcomes, predictions, signal="rougeL")
    y = [outcomes[i] for i in range(40)]
    theta, (low, high) = by_hand(
        y, [predictions[i] for i in range(40)], [predictions[i] for i in range(40, 160)]
    )
    assert isinstance(result, PredictionPowered)
    assert result.estimate == pytest.approx(theta, abs=1e-12)
    assert result.interval == pytest.approx((low, high), abs=1e-12)
    assert (result.labelled, result.unlabelled) == (40, 120)


def test_the_experts_alone_interval_is_the_plain_normal_interval():
    outcomes, predictions, _ = study(40, 120, 0.25, seed=4)
    result = prediction_powered(outcomes, predictions, signal="rougeL")
    y = list(outcomes.values())
    half = Z * statistics.pstdev(y) / math.sqrt(len(y))
    assert result.expert_estimate == pytest.approx(statistics.fmean(y))
    assert result.expert_interval == pytest.approx(
        (statistics.fmean(y) - half, statistics.fmean(y) + half), abs=1e-12
    )


def test_a_signal_that_tracks_the_experts_narrows_the_interval():
    outcomes, predictions, _ = study(60, 400, 0.1, seed=5)
    result = prediction_powered(outcomes, predictions, signal="rougeL")
    assert result.signal_correlation > 0.9
    assert result.width_ratio < 0.7


def test_a_signal_of_pure_noise_leaves_about_the_experts_width():
    rng = random.Random(6)
    outcomes = {i: rng.choice([0.0, 0.5, 1.0]) for i in range(60)}
    predictions = {i: rng.random() for i in range(400)}
    result = prediction_powered(outcomes, predictions, signal="rougeL")
    assert result.width_ratio == pytest.approx(1.0, abs=0.1)


def clipped_normal_mean(mean: float, sd: float) -> float:
    """E[min(max(Z, 0), 1)] for Z ~ N(mean, sd²): E[Z; 0 < Z < 1] + P(Z > 1)."""
    unit = statistics.NormalDist()
    a, b = (0 - mean) / sd, (1 - mean) / sd
    inside = mean * (unit.cdf(b) - unit.cdf(a)) - sd * (unit.pdf(b) - unit.pdf(a))
    return inside + 1 - unit.cdf(b)


def test_coverage_of_the_true_win_rate_in_seeded_simulated_studies():
    """400 studies of 50 complete and 200 unfinished comparisons: outcome ½ + a prompt's lean
    + noise, clipped to [0, 1]; signal = tanh of the lean plus noise. Nominal 95 %; with 400
    studies, 92 % is 2.7 standard errors below it."""
    rng = np.random.default_rng(16)
    truth = clipped_normal_mean(0.58, math.sqrt(0.2**2 + 0.25**2))
    covered, ratios = 0, []
    for _ in range(400):
        lean = rng.normal(0.08, 0.2, 250)
        y = np.clip(0.5 + lean + rng.normal(0, 0.25, 250), 0, 1)
        f = 0.5 + 0.5 * np.tanh(2 * lean + rng.normal(0, 0.1, 250))
        result = prediction_powered(dict(enumerate(y[:50])), dict(enumerate(f)), signal="m")
        covered += result.interval[0] <= truth <= result.interval[1]
        ratios.append(result.width_ratio)
    assert covered / 400 >= 0.92
    assert np.mean(ratios) < 0.9


def test_too_few_complete_comparisons_give_a_reason_not_a_number():
    outcomes, predictions, _ = study(MIN_LABELLED - 1, 50, 0.2, seed=7)
    result = prediction_powered(outcomes, predictions, signal="rougeL")
    assert isinstance(result, NotComputed)
    assert result.reason == REASON_FEW_LABELLED.format(needed=MIN_LABELLED)


def test_a_finished_study_has_no_unlabelled_comparisons_to_add():
    outcomes, predictions, _ = study(30, 0, 0.2, seed=8)
    result = prediction_powered(outcomes, predictions, signal="rougeL")
    assert isinstance(result, NotComputed) and result.reason.startswith(
        REASON_FEW_UNLABELLED.split("(")[0]
    )


def test_a_constant_signal_is_refused():
    outcomes = {i: float(i % 2) for i in range(20)}
    result = prediction_powered(outcomes, dict.fromkeys(range(60), 0.5), signal="rougeL")
    assert result.reason == REASON_CONSTANT_SIGNAL


def test_metric_differences_map_to_predicted_outcomes():
    predictions = metric_predictions({1: 0.0, 2: 0.1, 3: -0.1, 4: 0.3})
    rms = math.sqrt((0.01 + 0.01 + 0.09) / 4)
    assert predictions[1] == 0.5
    assert predictions[2] == pytest.approx(0.5 + 0.5 * math.tanh(0.1 / rms))
    assert predictions[2] + predictions[3] == pytest.approx(1.0)
    assert predictions[4] > predictions[2] and 0 < predictions[4] < 1
    # The scale of the metric does not matter: BERTScore's small differences map alike.
    assert metric_predictions({1: 0.0, 2: 0.01, 3: -0.01, 4: 0.03}) == pytest.approx(predictions)


def test_a_comparison_counts_only_when_all_its_judgments_are_in():
    outcomes = [Outcome(1, "r1", 1.0), Outcome(2, "r1", 0.0), Outcome(1, "r2", 0.5)]
    assert complete_comparisons(outcomes, {1: 2, 2: 2}) == {1: 0.75}
