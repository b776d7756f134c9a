import dataclasses
import math

import numpy as np
import pytest
from scipy.optimize import minimize

from evalhub.analysis.base import REASON_FEW_ITEMS, Insufficient
from evalhub.analysis.ranking import REASON_DISCONNECTED
from evalhub.analysis.ties import REASON_ONE_SYSTEM, davidson_fit, outcome_counts, tie_model
from tests.evalhub.analysis.builders import rating

VERDICT = {"A": "a", "B": "b", "T": "tie", "X": "both_bad"}


def _study(outcomes: dict[tuple[str, str], str], *, raters: int = 1) -> list:
    """outcomes[(x, y)]: one verdict (A, B, T tie, X both bad) per prompt, x stored as output a;
    each prompt judged alike by ``raters`` raters."""
    ratings = []
    prompt = 0
    for (x, y), verdicts in outcomes.items():
        for v in verdicts:
            for k in range(raters):
                ratings.append(
                    rating(prompt, VERDICT[v], rater=f"r{k}", system_a=x, system_b=y, prompt=prompt)
                )
            prompt += 1
    return ratings


def _scipy_davidson(wins: np.ndarray, ties: np.ndarray) -> tuple[np.ndarray, float]:
    """An independent fit: Davidson's likelihood written over pairs i < j in π = exp(θ) and ν,
    maximised by scipy's BFGS with numerical gradients."""
    size = len(wins)

    def negative(params: np.ndarray) -> float:
        pi = np.exp(np.concatenate([[0.0], params[: size - 1]]))
        nu = math.exp(params[-1])
        total = 0.0
        for i in range(size):
            for j in range(i + 1, size):
                d = pi[i] + pi[j] + nu * math.sqrt(pi[i] * pi[j])
                total += wins[i, j] * math.log(pi[i] / d) + wins[j, i] * math.log(pi[j] / d)
                total += ties[i, j] * math.log(nu * math.sqrt(pi[i] * pi[j]) / d)
        return -total

    fit = minimize(negative, np.zeros(size), method="BFGS", options={"gtol": 1e-9})
    theta = np.concatenate([[0.0], fit.x[: size - 1]])
    return theta - theta.mean(), math.exp(fit.x[-1])


def test_two_systems_match_davidsons_closed_form():
    # Two systems: the model is saturated, so its MLE reproduces the observed shares:
    # θ₁ − θ₂ = log(W / L) and ν = T / √(W L).
    wins = np.array([[[0, 30], [10, 0]]])
    ties = np.array([[[0, 20], [20, 0]]])
    theta, log_nu = davidson_fit(wins, ties, regularization=0.0)
    assert theta[0, 0] - theta[0, 1] == pytest.approx(math.log(3), abs=1e-9)
    assert math.exp(log_nu[0]) == pytest.approx(20 / math.sqrt(300), abs=1e-9)


def test_several_systems_match_an_independent_scipy_fit():
    wins = np.array([[0, 12, 7, 9], [5, 0, 6, 11], [8, 4, 0, 3], [2, 6, 9, 0]], dtype=float)
    upper = np.array([[0, 4, 2, 3], [0, 0, 5, 1], [0, 0, 0, 6], [0, 0, 0, 0]], dtype=float)
    ties = upper + upper.T
    expected_theta, expected_nu = _scipy_davidson(wins, upper)
    theta, log_nu = davidson_fit(wins[None], ties[None], regularization=0.0)
    assert theta[0] == pytest.approx(expected_theta, abs=1e-5)
    assert math.exp(log_nu[0]) == pytest.approx(expected_nu, abs=1e-5)


def test_a_system_that_always_wins_still_gets_a_finite_strength():
    theta, log_nu = davidson_fit(np.array([[[0, 20], [0, 0]]]), np.zeros((1, 2, 2)))
    assert np.isfinite(theta).all() and np.isfinite(log_nu).all()
    assert theta[0, 0] > 2


def test_tie_model_reports_outcome_probabilities_and_both_bad_apart():
    ratings = _study({("adapter", "base"): "A" * 14 + "B" * 6 + "T" * 4 + "X" * 6})
    result = tie_model(ratings, ["adapter", "base"], [("adapter", "base")], resamples=200)
    (pair,) = result.pairs
    assert (pair.n, pair.prompts, pair.both_bad) == (30, 30, 6)
    # saturated with two systems: the probabilities are the observed shares (up to the tiny
    # regularisation), ties and both bad together forming "no preference"
    assert pair.p_win == pytest.approx(14 / 30, abs=0.01)
    assert pair.p_loss == pytest.approx(6 / 30, abs=0.01)
    assert pair.p_no_preference == pytest.approx(10 / 30, abs=0.01)
    assert pair.both_bad_rate == pytest.approx(6 / 30)
    assert pair.both_bad_interval.low < 0.2 < pair.both_bad_interval.high
    assert pair.p_win_interval.low < pair.p_win < pair.p_win_interval.high
    assert result.tie_propensity == pytest.approx(10 / math.sqrt(14 * 6), abs=0.01)
    assert [s.system for s in result.systems] == ["adapter", "base"]
    assert result.judgments == 30 and result.prompts == 30


def test_intervals_resample_prompts_not_judgments():
    outcomes = {("adapter", "base"): "AABTX" * 6}
    alone = tie_model(_study(outcomes), ["adapter", "base"], [("adapter", "base")], seed=3)
    # Three raters judging each prompt alike add no information about the prompts.
    tripled = tie_model(
        _study(outcomes, raters=3), ["adapter", "base"], [("adapter", "base")], seed=3
    )
    low, high = alone.systems[0].interval.low, alone.systems[0].interval.high
    assert tripled.systems[0].interval.low == pytest.approx(low, abs=0.005)
    assert tripled.systems[0].interval.high == pytest.approx(high, abs=0.005)
    assert tripled.judgments == 90 and tripled.prompts == 30
    # Taken as 90 independent prompts, the same judgments would claim a much narrower interval.
    separate = [
        dataclasses.replace(r, item=n, prompt=None)
        for n, r in enumerate(_study(outcomes, raters=3))
    ]
    naive = tie_model(separate, ["adapter", "base"], [("adapter", "base")], seed=3)
    assert naive.prompts == 90
    naive_width = naive.systems[0].interval.high - naive.systems[0].interval.low
    assert naive_width < 0.7 * (high - low)


def test_counts_put_every_judgment_of_a_prompt_together():
    ratings = [
        rating(1, "a", system_a="x", system_b="y", prompt=7),
        rating(2, "both_bad", system_a="y", system_b="z", prompt=7),
        rating(3, "b", system_a="x", system_b="z", prompt=8),
    ]
    prompts, counts = outcome_counts(ratings, ["x", "y", "z"])
    assert prompts == [7, 8]
    assert counts[0, 0, 0, 1] == 1 and counts[0, 1, 1, 2] == counts[0, 2, 2, 1] == 1
    assert counts[1, 0, 2, 0] == 1


def test_tie_model_says_why_it_has_no_estimate():
    one = tie_model(_study({("adapter", "base"): "A" * 20}), ["adapter"], [])
    assert one == Insufficient(REASON_ONE_SYSTEM, 1, 2)
    few = tie_model(_study({("a", "b"): "AB"}), ["a", "b"], [("a", "b")])
    assert isinstance(few, Insufficient) and few.reason == REASON_FEW_ITEMS
    split = tie_model(
        _study({("a", "b"): "AB" * 5, ("c", "d"): "AB" * 5}), ["a", "b", "c", "d"], []
    )
    assert isinstance(split, Insufficient) and split.reason == REASON_DISCONNECTED


def test_intervals_cover_the_true_strengths_in_a_seeded_simulation():
    # Davidson with θ_adapter − θ_base = 0.6 and ν = 0.5: centred, the adapter's strength is 0.3.
    half, nu = 0.3, 0.5
    denominator = math.exp(half) + math.exp(-half) + nu
    chances = [math.exp(half) / denominator, math.exp(-half) / denominator]
    runs, covered, covered_nu = 60, 0, 0
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        draws = rng.choice(3, size=80, p=[*chances, nu / denominator])
        verdicts = "".join("ABT"[d] for d in draws)
        result = tie_model(
            _study({("adapter", "base"): verdicts}), ["adapter", "base"], [], seed=seed
        )
        adapter = next(s for s in result.systems if s.system == "adapter")
        covered += adapter.interval.low <= half <= adapter.interval.high
        interval = result.tie_propensity_interval
        covered_nu += interval.low <= nu <= interval.high
    # 95 % intervals: out of 60, fewer than 52 covered would be very unlikely (p < 0.01)
    assert covered >= 52 and covered_nu >= 52
