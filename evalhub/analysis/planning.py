"""How many judgments a study needs before it starts, and how correlated earlier ones were.

The question a plan answers: if the adapter truly wins ``win_rate`` of the decisive judgments,
how many judgments does a two-sided test at level ``alpha`` need to tell it from 50 % with
probability ``power``?

1. Decisive judgments, as for a one-sample proportion by the normal approximation
   (Fleiss, Levin & Paik, *Statistical Methods for Rates and Proportions*, 3rd ed., §2.5.1):
   n = (z₁₋α/₂ · √(p₀q₀) + z_power · √(p₁q₁))² / (p₁ − p₀)², with p₀ = ½ and p₁ = ``win_rate``.
   For 60 %, α 0.05 and power 0.8 that is 193.8, so 194.
2. Ties (and "both bad") carry no preference: only a share 1 − ``tie_rate`` of judgments is
   decisive, so judgments = decisive / (1 − tie_rate). (Counting ties as half a win, as the
   report's win rate does, needs the same number to within a judgment.)
3. Judgments of one prompt, and of one rater, are correlated, so n of them carry less
   information than n independent ones. The prompt part of the design effect (Kish, *Survey
   Sampling*, §5.4) is (m_p − 1)·ρ_p, with m_p = overlap judgments per prompt.
4. The rater part is sized for the rater term the verdict will use
   (:mod:`evalhub.analysis.sequential`): the variance of the panel's lean, τ̂² Σ w_r², with
   τ̂² the one-way ANOVA estimate taken at its ``RATER_CONFIDENCE`` upper confidence limit,
   (c · MS_between − MS_within) / k₀ with c = (k − 1) / χ²_{1−conf}(k − 1) for k raters.
   With equal shares (k₀ = m_r = n / k judgments per rater, Σ w_r² = 1 / k) and
   E[MS_between] = σ²(1 − ρ_r) + m_r σ² ρ_r, its expectation in units of σ² / n is
   (c − 1)(1 − ρ_r) + c · ρ_r · m_r: the first term is the price of estimating the panel's
   lean from few raters (it is there even when raters agree), the second Kish's rater term
   grown by c. With c = 1 this is Kish's (m_r − 1)·ρ_r. One rater gives the verdict no
   rater term, and the plan none. m_r grows with n, so n = n₀ · deff(n) is solved for n;
   when n₀ · c · ρ_r ≥ raters no number of judgments suffices: more raters are needed.

The correlations are estimated from earlier studies when there are enough judgments
(:func:`icc_oneway`), else the defaults below are used and the plan says so.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2, norm

from evalhub.analysis.sequential import RATER_CONFIDENCE

# Without earlier studies: judgments of one prompt by different raters agree beyond chance
# (some prompts favour one system), so ρ_p = 0.2 is a moderate assumption. Raters lean too:
# ρ_r = 0.008 is a rater's own win rate spread by an SD of about 4 points around the panel's
# (√(0.008 · 0.2), 0.2 being the variance of one outcome near 60 % with a fifth ties), the
# size of lean the benchmark simulates (SD 0.2 on the logit scale). The verdict widens for
# the lean it measures, so a plan that assumed none would be too small.
DEFAULT_PROMPT_ICC = 0.2
DEFAULT_RATER_ICC = 0.008
# An ICC from fewer groups than this is too noisy to plan with.
MIN_ICC_GROUPS = 10
MIN_ICC_RATERS = 3

ERROR_WIN_RATE = "win_rate must be between 0 and 1 and not 0.5; got {value}."
ERROR_TIE_RATE = "tie_rate must be at least 0 and below 1; got {value}."
ERROR_POWER = "power must be above alpha and below 1; got {value}."
ERROR_ALPHA = "alpha must be above 0 and at most 0.5; got {value}."
ERROR_OVERLAP = "overlap must be a whole number of at least 1; got {value}."
ERROR_RATERS = "raters must be a whole number of at least overlap ({overlap}); got {value}."
ERROR_ICC = "{name} must be between 0 and 1; got {value}."
ERROR_TOO_FEW_RATERS = (
    "raters: with {raters} raters and a rater correlation of {icc:.3f}, no number of judgments "
    "reaches power {power}; at least {needed} raters are needed."
)


class PlanError(ValueError):
    """Bad planning input; ``field`` names the offending input."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Correlations:
    """Intraclass correlations of judgments within a prompt and within a rater."""

    prompt_icc: float
    rater_icc: float
    source: str


@dataclass(frozen=True, slots=True)
class StudyPlan:
    win_rate: float
    tie_rate: float
    alpha: float
    power: float
    overlap: int
    raters: int
    prompt_icc: float
    rater_icc: float
    correlations_from: str
    raters_at_large: bool
    decisive_independent: int
    rater_widening: float
    design_effect: float
    judgments: int
    decisive: int
    prompts: int
    method: str


def decisive_needed(win_rate: float, *, alpha: float, power: float) -> float:
    """Decisive judgments for a two-sided one-sample test of ``win_rate`` against ½ (normal
    approximation, unrounded)."""
    z_alpha = norm.ppf(1 - alpha / 2)
    z_power = norm.ppf(power)
    spread = z_alpha * math.sqrt(0.25) + z_power * math.sqrt(win_rate * (1 - win_rate))
    return spread**2 / (win_rate - 0.5) ** 2


def rater_widening(raters: int) -> float:
    """c = (k − 1) / χ²_{1−conf}(k − 1): how much the verdict's upper confidence limit for the
    rater variance inflates the between-rater mean square, for k raters (1 for one rater,
    whose lean the verdict cannot see)."""
    if raters < 2:
        return 1.0
    return (raters - 1) / chi2.ppf(1 - RATER_CONFIDENCE, raters - 1)


def _raters_needed(independent: float, rho_r: float, raters: int) -> int:
    """The fewest raters for which n₀ · c · ρ_r < raters, so that some n suffices."""
    needed = raters + 1
    while independent * rater_widening(needed) * rho_r >= needed:
        needed += 1
    return needed


def _check(
    win_rate: float,
    tie_rate: float,
    power: float,
    alpha: float,
    overlap: int,
    raters: int,
    correlations: Correlations,
) -> None:
    if not (0 < win_rate < 1) or win_rate == 0.5:
        raise PlanError(ERROR_WIN_RATE.format(value=win_rate), "win_rate")
    if not 0 <= tie_rate < 1:
        raise PlanError(ERROR_TIE_RATE.format(value=tie_rate), "tie_rate")
    if not 0 < alpha <= 0.5:
        raise PlanError(ERROR_ALPHA.format(value=alpha), "alpha")
    if not alpha < power < 1:
        raise PlanError(ERROR_POWER.format(value=power), "power")
    if int(overlap) != overlap or overlap < 1:
        raise PlanError(ERROR_OVERLAP.format(value=overlap), "overlap")
    if int(raters) != raters or raters < overlap:
        raise PlanError(ERROR_RATERS.format(value=raters, overlap=overlap), "raters")
    for name in ("prompt_icc", "rater_icc"):
        value = getattr(correlations, name)
        if not 0 <= value <= 1:
            raise PlanError(ERROR_ICC.format(name=name, value=value), name)


def plan_study(
    *,
    win_rate: float,
    tie_rate: float = 0.0,
    power: float = 0.8,
    alpha: float = 0.05,
    overlap: int = 2,
    raters: int | None = None,
    correlations: Correlations | None = None,
    raters_at_large: bool = False,
) -> StudyPlan:
    """Judgments and prompts a study needs; ``raters`` defaults to ``overlap`` (the fewest a
    study can have). ``raters_at_large`` sizes for a verdict about raters at large, which the
    verdict widens for the rater panel's lean (the rater terms below); a verdict about the
    study's own raters (the default) needs only the prompt term. Raises :class:`PlanError`
    naming the bad input."""
    correlations = correlations or Correlations(
        DEFAULT_PROMPT_ICC, DEFAULT_RATER_ICC, "defaults (no earlier studies)"
    )
    raters = overlap if raters is None else raters
    _check(win_rate, tie_rate, power, alpha, overlap, raters, correlations)
    independent = decisive_needed(win_rate, alpha=alpha, power=power) / (1 - tie_rate)
    rho_p, rho_r = correlations.prompt_icc, correlations.rater_icc
    if not raters_at_large:
        rho_r = 0.0
    widening = rater_widening(raters) if raters_at_large else 1.0
    # n = n0 · (1 + (overlap − 1)ρ_p + (c − 1)(1 − ρ_r) + c ρ_r n / raters), solved for n;
    # the verdict has no rater term with one rater, nor about the study's own raters.
    per_judgment = widening * rho_r / raters if raters >= 2 else 0.0
    fixed = 1 + (overlap - 1) * rho_p + (widening - 1) * (1 - rho_r)
    denominator = 1 - independent * per_judgment
    if denominator <= 0:
        needed = _raters_needed(independent, rho_r, raters)
        raise PlanError(
            ERROR_TOO_FEW_RATERS.format(raters=raters, icc=rho_r, power=power, needed=needed),
            "raters",
        )
    judgments = independent * fixed / denominator
    prompts = math.ceil(judgments / overlap)
    total = prompts * overlap
    return StudyPlan(
        win_rate=win_rate,
        tie_rate=tie_rate,
        alpha=alpha,
        power=power,
        overlap=overlap,
        raters=raters,
        prompt_icc=rho_p,
        rater_icc=rho_r,
        correlations_from=correlations.source,
        raters_at_large=raters_at_large,
        decisive_independent=math.ceil(decisive_needed(win_rate, alpha=alpha, power=power)),
        rater_widening=widening,
        design_effect=judgments / independent,
        judgments=total,
        decisive=math.ceil(total * (1 - tie_rate)),
        prompts=prompts,
        method=(
            "normal approximation, two-sided, with a design effect for prompts and for the "
            "rater term the verdict estimates"
            if raters_at_large
            else "normal approximation, two-sided, with a design effect for prompts; the "
            "verdict is about the study's own raters"
        ),
    )


def icc_oneway(groups: Sequence[Sequence[float]]) -> float | None:
    """ICC(1) by one-way ANOVA (Shrout & Fleiss 1979) with unequal group sizes: the share of
    the variance of one observation that lies between groups, clipped to [0, 1].

    Groups with one observation add nothing within; None when fewer than two groups of two or
    more remain, or when there is no variance at all."""
    groups = [np.asarray(g, dtype=float) for g in groups if len(g) >= 2]
    if len(groups) < 2:
        return None
    sizes = np.array([len(g) for g in groups], dtype=float)
    n, k = sizes.sum(), len(groups)
    grand = np.concatenate(groups).mean()
    between = sum(len(g) * (g.mean() - grand) ** 2 for g in groups) / (k - 1)
    within = sum(((g - g.mean()) ** 2).sum() for g in groups) / (n - k)
    k0 = (n - (sizes**2).sum() / n) / (k - 1)
    total = between + (k0 - 1) * within
    if total <= 0:
        return None
    return float(min(1.0, max(0.0, (between - within) / total)))
