"""Bootstrap intervals against scipy's percentile bootstrap, the normal approximation and cases
whose answer is known exactly."""

import numpy as np
import pytest
from scipy import stats

from evalhub.metrics.bootstrap import bootstrap_mean, bootstrap_paired_difference


def sample(n=400, seed=1):
    return np.random.default_rng(seed).beta(2, 5, size=n)


def test_interval_agrees_with_scipy_percentile_bootstrap():
    values = sample()
    ours = bootstrap_mean(values, n_resamples=20000, seed=3)
    theirs = stats.bootstrap(
        (values,), np.mean, n_resamples=20000, method="percentile", random_state=4
    ).confidence_interval
    assert ours.low == pytest.approx(theirs.low, abs=0.002)
    assert ours.high == pytest.approx(theirs.high, abs=0.002)


def test_interval_agrees_with_the_normal_approximation_for_a_large_sample():
    values = sample(n=2000)
    ours = bootstrap_mean(values, n_resamples=5000, seed=0)
    half_width = 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert ours.mean == pytest.approx(values.mean())
    assert ours.low == pytest.approx(values.mean() - half_width, abs=0.002)
    assert ours.high == pytest.approx(values.mean() + half_width, abs=0.002)


def test_a_constant_sample_has_a_zero_width_interval():
    interval = bootstrap_mean([0.25] * 30)
    assert (interval.mean, interval.low, interval.high, interval.n) == (0.25, 0.25, 0.25, 30)


def test_an_empty_sample_has_no_interval():
    assert bootstrap_mean([]) is None


def test_the_same_seed_gives_the_same_interval():
    values = sample(n=50)
    assert bootstrap_mean(values, seed=5) == bootstrap_mean(values, seed=5)


def test_a_constant_paired_shift_is_recovered_exactly():
    base = sample(n=100)
    interval = bootstrap_paired_difference(base + 0.1, base)
    assert interval.mean == pytest.approx(0.1)
    assert interval.low == pytest.approx(0.1) and interval.high == pytest.approx(0.1)


def test_pairing_removes_prompt_to_prompt_variance():
    prompt_difficulty = sample(n=200)
    noise = np.random.default_rng(9).normal(0, 0.01, size=200)
    adapter, base = prompt_difficulty + 0.02 + noise, prompt_difficulty
    paired = bootstrap_paired_difference(adapter, base, seed=0)
    separate = [bootstrap_mean(x, seed=0) for x in (adapter, base)]
    assert paired.low > 0  # the improvement is resolved when paired ...
    assert separate[0].low < separate[1].high  # ... although the two intervals overlap


def test_unpaired_lengths_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        bootstrap_paired_difference([1, 2], [1])


def test_confidence_must_be_a_probability():
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_mean([1, 2], confidence=1.5)
