"""A prediction-powered interval for the win rate: the few expert judgments combined with a
cheap automated signal that exists for every comparison of the study.

Prediction-powered inference (Angelopoulos, Bates, Fannjiang, Jordan & Zrnic, "Prediction-
powered inference", Science 382, 2023; with the power tuning of Angelopoulos, Duchi & Zrnic,
"PPI++", arXiv 2311.01453) estimates a mean from n labelled units and N unlabelled ones that
only have a prediction f:

    θ̂ = λ · mean(f over the unlabelled) + mean(Y − λ f over the labelled)

The second term corrects the predictions' bias with the experts' own outcomes, so θ̂ is
unbiased whatever f is; its variance λ²·Var(f)/N + Var(Y − λf)/n is small when f tracks Y.
λ ∈ [0, 1] is chosen from the data to minimise it (λ = 0 is the experts alone, so a signal
that predicts nothing costs nothing but a little noise in λ). The interval is θ̂ ± z·se
(central limit theorem, asymptotically valid). ``ppi_py``, the authors' package, computes both.

Units. As in :mod:`evalhub.analysis.sequential`, the unit is the comparison: Y is the mean of
its judgments' outcomes for the adapter (1, ½, 0) once all its assignments are judged, so
judgments of one prompt count once; the labelled comparisons are those complete, the
unlabelled ones the study's other comparisons of the pair (not yet complete), which still have
the signal. The estimand is the win rate over the study's prompts as the panel would judge
them, like the sequence's exact part; the panel's own lean is not in this interval.

Validity needs the completed comparisons to be a random subset of the study's comparisons,
as when raters work through randomly ordered assignments. It does not need the signal to be
any good: a poor one only makes λ small and the interval as wide as the experts' alone.
"""

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from evalhub.analysis.sequential import Outcome

ALPHA = 0.05
# Fewer labelled or unlabelled comparisons than this and the normal interval is not trusted.
MIN_LABELLED = 10
MIN_UNLABELLED = 10
METHOD = (
    "prediction-powered inference with power tuning (Angelopoulos et al. 2023, PPI++), "
    "normal interval over comparisons"
)
EXPERT_METHOD = "experts alone: normal interval over the same complete comparisons"
REASON_FEW_LABELLED = "fewer complete comparisons with the signal than the minimum ({needed})"
REASON_FEW_UNLABELLED = "fewer comparisons with only the signal than the minimum ({needed})"
REASON_CONSTANT_SIGNAL = "the signal is the same on every comparison, so it predicts nothing"


@dataclass(frozen=True, slots=True)
class PredictionPowered:
    """The prediction-powered estimate and interval beside the experts' alone over the same
    ``labelled`` comparisons; ``width_ratio`` is the PPI width over the experts'."""

    signal: str
    labelled: int
    unlabelled: int
    estimate: float
    interval: tuple[float, float]
    expert_estimate: float
    expert_interval: tuple[float, float]
    width_ratio: float
    signal_correlation: float | None
    alpha: float
    method: str = METHOD
    expert_method: str = EXPERT_METHOD


@dataclass(frozen=True, slots=True)
class NotComputed:
    """Why there is no prediction-powered interval (yet); ``signal`` None when there is none."""

    signal: str | None
    labelled: int
    unlabelled: int
    reason: str


def complete_comparisons(
    outcomes: Sequence[Outcome], required: Mapping[int, int]
) -> dict[int, float]:
    """Each comparison's mean outcome, for those with all ``required[item]`` judgments (the
    rule of :func:`evalhub.analysis.sequential.comparison_units`)."""
    values: dict[int, list[float]] = defaultdict(list)
    for outcome in outcomes:
        values[outcome.item].append(outcome.value)
    return {item: sum(v) / len(v) for item, v in values.items() if len(v) >= required.get(item, 1)}


def metric_predictions(differences: Mapping[int, float]) -> dict[int, float]:
    """A predicted outcome in [0, 1] for each comparison from the metric difference
    d = metric(adapter) − metric(base): ½ + ½·tanh(d / s), s the root mean square of d over
    all the comparisons given.

    Why this map: d = 0 gives ½, what a tie scores; the output the metric prefers is predicted
    to win, more surely the larger the difference; tanh saturates, so a few extreme
    differences (an empty answer scores 0) do not swamp the rest; dividing by s makes ROUGE-L
    and BERTScore, whose differences differ tenfold in size, map alike. s uses no expert
    outcome, so the map is fixed before the labels are read, which PPI requires. Calibration
    is not needed for validity: λ rescales the prediction from the data."""
    if not differences:
        return {}
    values = np.array(list(differences.values()), dtype=float)
    scale = math.sqrt(float(np.mean(values**2)))
    if scale == 0:
        return dict.fromkeys(differences, 0.5)
    return {item: 0.5 + 0.5 * math.tanh(d / scale) for item, d in differences.items()}


def prediction_powered(
    outcomes: Mapping[int, float],
    predictions: Mapping[int, float],
    *,
    signal: str,
    alpha: float = ALPHA,
) -> PredictionPowered | NotComputed:
    """The win rate from the complete comparisons' mean outcomes (``outcomes``) and the
    signal's predicted outcome for every comparison (``predictions``). Comparisons without a
    prediction are left out of both intervals, so the two cover the same comparisons."""
    labelled = sorted(item for item in outcomes if item in predictions)
    unlabelled = sorted(item for item in predictions if item not in outcomes)
    y = np.array([outcomes[i] for i in labelled], dtype=float)
    f = np.array([predictions[i] for i in labelled], dtype=float)
    f_unlabelled = np.array([predictions[i] for i in unlabelled], dtype=float)
    reason = None
    if len(labelled) < MIN_LABELLED:
        reason = REASON_FEW_LABELLED.format(needed=MIN_LABELLED)
    elif len(unlabelled) < MIN_UNLABELLED:
        reason = REASON_FEW_UNLABELLED.format(needed=MIN_UNLABELLED)
    elif np.ptp(np.concatenate([f, f_unlabelled])) == 0:
        reason = REASON_CONSTANT_SIGNAL
    if reason is not None:
        return NotComputed(signal, len(labelled), len(unlabelled), reason)
    # Imported here: ppi_py brings numba and scikit-learn (about a second), which the web
    # process and the commands need only when there is an interval to compute.
    from ppi_py import ppi_mean_ci, ppi_mean_pointestimate

    # lam=None: ppi_py picks the variance-minimising λ in [0, 1] (PPI++), the same for both.
    estimate = float(ppi_mean_pointestimate(y, f, f_unlabelled)[0])
    low, high = ppi_mean_ci(y, f, f_unlabelled, alpha=alpha)
    expert_low, expert_high = ppi_mean_ci(y, f, f_unlabelled, alpha=alpha, lam=0.0)
    interval = (max(0.0, float(low[0])), min(1.0, float(high[0])))
    expert_interval = (max(0.0, float(expert_low[0])), min(1.0, float(expert_high[0])))
    expert_width = expert_interval[1] - expert_interval[0]
    correlation = float(np.corrcoef(y, f)[0, 1]) if np.ptp(y) > 0 and np.ptp(f) > 0 else None
    return PredictionPowered(
        signal=signal,
        labelled=len(labelled),
        unlabelled=len(unlabelled),
        estimate=estimate,
        interval=interval,
        expert_estimate=float(y.mean()),
        expert_interval=expert_interval,
        width_ratio=(interval[1] - interval[0]) / expert_width if expert_width > 0 else 1.0,
        signal_correlation=correlation,
        alpha=alpha,
    )
