"""The planner against independent references: the textbook normal approximation by hand,
statsmodels' power functions, an exact binomial power and a seeded simulation; the ICC against
statsmodels' mixed model."""

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy.stats import binom, binomtest, chi2
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from evalhub.analysis import planning
from evalhub.analysis.planning import Correlations, PlanError, icc_oneway, plan_study

INDEPENDENT = Correlations(prompt_icc=0.0, rater_icc=0.0, source="test")


def test_sixty_percent_needs_194_decisive_judgments_by_the_normal_approximation():
    # (1.959964 * 0.5 + 0.841621 * sqrt(0.24))^2 / 0.1^2 = 193.85, by hand
    by_hand = (1.959964 * 0.5 + 0.841621 * math.sqrt(0.24)) ** 2 / 0.01
    plan = plan_study(win_rate=0.6, overlap=1, correlations=INDEPENDENT)
    assert math.ceil(by_hand) == 194
    assert plan.decisive_independent == 194
    assert plan.judgments == plan.prompts == 194
    assert plan.design_effect == pytest.approx(1.0)


def test_the_plan_agrees_with_statsmodels_arcsine_power_within_one_judgment():
    effect = proportion_effectsize(0.6, 0.5)
    n = NormalIndPower().solve_power(effect_size=effect, alpha=0.05, power=0.8, ratio=0)
    assert planning.decisive_needed(0.6, alpha=0.05, power=0.8) == pytest.approx(n, abs=1)


def test_the_planned_size_has_the_power_it_promises_exactly_and_by_simulation():
    n = plan_study(win_rate=0.6, overlap=1, correlations=INDEPENDENT).judgments
    # Exact power of the exact two-sided binomial test at that n: close to 0.8 (a little under,
    # the exact test being conservative).
    rejected = [k for k in range(n + 1) if binomtest(k, n, 0.5).pvalue < 0.05]
    exact = binom.pmf(rejected, n, 0.6).sum()
    assert exact == pytest.approx(0.8, abs=0.04)
    rng = np.random.default_rng(7)
    wins = rng.binomial(n, 0.6, size=20_000)
    z = (wins - n / 2) / math.sqrt(n / 4)
    assert (np.abs(z) > 1.959964).mean() == pytest.approx(0.8, abs=0.02)


def test_ties_need_proportionally_more_judgments():
    plan = plan_study(win_rate=0.6, tie_rate=0.2, overlap=1, correlations=INDEPENDENT)
    assert plan.judgments == math.ceil(193.85 / 0.8)
    assert plan.decisive == math.ceil(plan.judgments * 0.8)


def test_overlap_and_prompt_correlation_inflate_by_the_design_effect():
    correlated = Correlations(prompt_icc=0.2, rater_icc=0.0, source="test")
    plan = plan_study(win_rate=0.6, overlap=3, correlations=correlated, raters_at_large=True)
    # Three raters: c = 2 / χ²₂ quantile at 0.2, and χ²₂'s cdf is 1 − e^(−x/2).
    widening = 2 / (-2 * math.log(0.8))
    assert plan.rater_widening == pytest.approx(widening)
    assert plan.design_effect == pytest.approx(1 + 2 * 0.2 + widening - 1, rel=1e-3)
    assert plan.prompts == math.ceil(193.85 * (0.4 + widening) / 3)
    assert plan.judgments == plan.prompts * 3


def test_rater_correlation_grows_with_the_judgments_each_rater_makes():
    correlated = Correlations(prompt_icc=0.0, rater_icc=0.01, source="test")
    plan = plan_study(
        win_rate=0.6, overlap=1, raters=10, correlations=correlated, raters_at_large=True
    )
    # n = n0 (1 + (c − 1)(1 − ρ_r) + c ρ_r n / raters), solved by hand for n
    n0 = planning.decisive_needed(0.6, alpha=0.05, power=0.8)
    c = 9 / chi2.ppf(0.2, 9)
    n = n0 * (1 + (c - 1) * (1 - 0.01)) / (1 - n0 * c * 0.01 / 10)
    assert plan.judgments == math.ceil(n)
    assert plan.design_effect == pytest.approx(1 + (c - 1) * 0.99 + c * 0.01 * n / 10)


def test_a_verdict_about_the_studys_own_raters_needs_only_the_prompt_term():
    correlated = Correlations(prompt_icc=0.2, rater_icc=0.05, source="test")
    plan = plan_study(win_rate=0.6, overlap=2, raters=2, correlations=correlated)
    # n0 · (1 + (overlap − 1) ρ_p), rounded up to whole prompts of two judgments each
    assert plan.judgments == 2 * math.ceil(193.85 * 1.2 / 2)
    assert (plan.rater_widening, plan.rater_icc, plan.raters_at_large) == (1.0, 0.0, False)


def test_one_rater_gives_the_verdict_and_the_plan_no_rater_term():
    correlated = Correlations(prompt_icc=0.0, rater_icc=0.05, source="test")
    plan = plan_study(win_rate=0.6, overlap=1, raters=1, correlations=correlated)
    assert plan.judgments == 194 and plan.rater_widening == 1


def test_too_few_raters_for_their_correlation_is_refused_naming_raters():
    correlated = Correlations(prompt_icc=0.0, rater_icc=0.05, source="test")
    with pytest.raises(PlanError) as refused:
        plan_study(win_rate=0.6, overlap=2, raters=2, correlations=correlated, raters_at_large=True)
    assert refused.value.field == "raters"
    # The fewest k with n0 · c_k · ρ_r < k, by hand: 193.85 · 0.05 · c_k against k.
    needed = next(k for k in range(3, 100) if 193.85 * 0.05 * (k - 1) / chi2.ppf(0.2, k - 1) < k)
    assert f"at least {needed} raters" in str(refused.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("win_rate", 0.5),
        ("win_rate", 1.2),
        ("tie_rate", 1.0),
        ("power", 0.01),
        ("alpha", 0.0),
        ("overlap", 0),
        ("raters", 1),
    ],
)
def test_bad_input_is_refused_naming_the_field(field, value):
    kwargs = {"win_rate": 0.6, "overlap": 2, "raters": 3, field: value}
    with pytest.raises(PlanError) as refused:
        plan_study(**kwargs)
    assert refused.value.field == field
    assert field in str(refused.value)


def test_icc_matches_statsmodels_mixed_model_on_balanced_groups():
    rng = np.random.default_rng(3)
    groups = rng.normal(0, 0.6, 60)[:, None] + rng.normal(0, 1.0, (60, 4))
    frame = pd.DataFrame({"y": groups.ravel(), "g": np.repeat(np.arange(60), 4)})
    fit = smf.mixedlm("y ~ 1", frame, groups=frame["g"]).fit(reml=True)
    between = float(fit.cov_re.iloc[0, 0])
    reference = between / (between + fit.scale)
    assert icc_oneway(groups.tolist()) == pytest.approx(reference, abs=1e-3)


def test_icc_by_hand_and_its_edges():
    # Groups (1, 3) and (5, 7): MSB = 2·(2−4)² + 2·(6−4)² = 16, MSW = (1+1+1+1)/2 = 2,
    # ICC = (16 − 2) / (16 + 2) = 0.778.
    assert icc_oneway([[1, 3], [5, 7]]) == pytest.approx(14 / 18)
    assert icc_oneway([[1, 2]]) is None
    assert icc_oneway([[1, 1], [1, 1]]) is None
    assert icc_oneway([[0, 1], [1, 0], [0, 1]]) == 0.0
