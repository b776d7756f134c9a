import math

import numpy as np
import pytest
import statsmodels.api as sm

from evalhub.analysis.base import Insufficient
from evalhub.analysis.length import REASON_EQUAL_LENGTHS, length_controlled, logistic_fit
from tests.evalhub.analysis.builders import rating


def _simulated(*, prompts: int, intercept: float, per_log_ratio: float, seed: int) -> list:
    """Two raters per prompt; the adapter's answer is usually longer, and the chance it is
    preferred is σ(intercept + per_log_ratio · log length ratio), 10 % of judgments ties."""
    rng = np.random.default_rng(seed)
    ratings = []
    for p in range(prompts):
        length_a = int(rng.integers(80, 400))
        length_b = int(rng.integers(30, 200))
        chance = 1 / (1 + math.exp(-(intercept + per_log_ratio * math.log(length_a / length_b))))
        for rater in ("r1", "r2"):
            draw = rng.random()
            verdict = "tie" if draw < 0.1 else ("a" if rng.random() < chance else "b")
            ratings.append(
                rating(p, verdict, rater=rater, prompt=p, length_a=length_a, length_b=length_b)
            )
    return ratings


def test_logistic_fit_matches_statsmodels_glm():
    ratings = _simulated(prompts=150, intercept=0.2, per_log_ratio=0.7, seed=1)
    x = np.array([math.log(r.length_a / r.length_b) for r in ratings])
    y = np.array([r.outcome_for("adapter") for r in ratings])
    glm = sm.GLM(y, sm.add_constant(x), family=sm.families.Binomial()).fit()
    (beta,) = logistic_fit(x, y, np.ones(len(x)), prior_weight=0.0)
    assert beta == pytest.approx(glm.params, abs=1e-8)
    # the virtual ties are two more observations, as statsmodels sees them with weights
    padded = sm.GLM(
        np.concatenate([y, [0.5, 0.5]]),
        sm.add_constant(np.concatenate([x, [-math.log(2), math.log(2)]])),
        family=sm.families.Binomial(),
        freq_weights=np.concatenate([np.ones(len(x)), [0.5, 0.5]]),
    ).fit()
    (beta,) = logistic_fit(x, y, np.ones(len(x)), prior_weight=0.5)
    assert beta == pytest.approx(padded.params, abs=1e-8)


def test_length_controlled_win_rate_recovers_the_preference_without_length():
    # No preference at equal lengths (intercept 0), a strong pull towards the longer answer.
    ratings = _simulated(prompts=400, intercept=0.0, per_log_ratio=1.0, seed=7)
    result = length_controlled(ratings, "adapter", "base", resamples=300)
    assert result.win_rate > 0.65  # the raw rate is bought by length
    assert result.win_rate_interval.low > 0.6
    assert result.lc_win_rate_interval.low < 0.5 < result.lc_win_rate_interval.high
    assert abs(result.lc_win_rate - 0.5) < 0.05
    # ties halve the slope's pull a little; per doubling the odds rise by about 2^1 · 0.9
    assert result.odds_ratio_interval.low > 1.3
    assert result.length_ratio > 1.5
    assert (result.n, result.prompts) == (800, 400)


def test_length_controlled_reads_from_the_named_systems_side():
    ratings = _simulated(prompts=100, intercept=0.5, per_log_ratio=0.8, seed=2)
    forward = length_controlled(ratings, "adapter", "base", resamples=100)
    backward = length_controlled(ratings, "base", "adapter", resamples=100)
    assert backward.lc_win_rate == pytest.approx(1 - forward.lc_win_rate, abs=1e-9)
    assert backward.odds_ratio_per_doubling == pytest.approx(forward.odds_ratio_per_doubling)
    assert backward.length_ratio == pytest.approx(1 / forward.length_ratio)


def test_equal_or_unknown_lengths_have_no_length_effect():
    same = [rating(i, "a" if i % 3 else "b", prompt=i, length_a=50, length_b=50) for i in range(20)]
    result = length_controlled(same, "adapter", "base")
    assert isinstance(result, Insufficient) and result.reason == REASON_EQUAL_LENGTHS
    unknown = [rating(i, "a", prompt=i) for i in range(20)]
    assert isinstance(length_controlled(unknown, "adapter", "base"), Insufficient)


def test_length_controlled_interval_covers_the_truth_in_a_seeded_simulation():
    # Ties left out (they fall independently of length), the logistic model is the true one:
    # at equal lengths the adapter wins σ(0.4).
    truth = 1 / (1 + math.exp(-0.4))
    runs, covered = 50, 0
    for seed in range(runs):
        ratings = [
            r
            for r in _simulated(prompts=120, intercept=0.4, per_log_ratio=0.8, seed=100 + seed)
            if r.verdict != "tie"
        ]
        result = length_controlled(ratings, "adapter", "base", seed=seed, resamples=300)
        covered += result.lc_win_rate_interval.low <= truth <= result.lc_win_rate_interval.high
    # 95 % intervals: out of 50, fewer than 43 covered would be very unlikely (p < 0.01)
    assert covered >= 43
