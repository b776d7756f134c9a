"""Prediction-powered intervals in simulated studies: width against the experts' alone and
coverage, for signals that correlate 0.3, 0.5 and 0.8 with the experts' comparison outcomes.

Per study: 500 comparisons, 100 of them complete (two judgments each, 20 % ties, a prompt
effect of SD 0.5 on the logit scale), the other 400 with only the signal. The signal is the
prompt's latent lean (logit) plus Gaussian noise, given as a metric difference and mapped by
``evalhub.analysis.ppi.metric_predictions``; its noise is set so that its correlation with the
comparison outcome is the target. The true win rate (ties as half) is 58 %.

Also the planner's power: studies of the size ``plan_study`` asks for 60 %, simulated and tested
at the end as in ``sequential_sim.py`` (run from benchmarks/, which it imports).

Writes benchmarks/results/ppi_sim.json. Run: python benchmarks/ppi_sim.py
"""

import json
import multiprocessing
import time
from pathlib import Path

import numpy as np
import sequential_sim as sim
from scipy.special import expit

from evalhub.analysis.planning import plan_study
from evalhub.analysis.ppi import metric_predictions, prediction_powered
from evalhub.analysis.sequential import ADAPTER_BETTER, comparison_units

STUDIES = 1000
COMPLETE, UNFINISHED = 100, 400
TIE_RATE, PROMPT_SD, SHIFT, OVERLAP = 0.2, 0.5, 0.42, 2
CORRELATIONS = (0.3, 0.5, 0.8)
SEED = 16
OUT = Path(__file__).parent / "results" / "ppi_sim.json"


def comparisons(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(latent lean, mean outcome of two judgments) for ``count`` comparisons."""
    lean = SHIFT + rng.normal(0, PROMPT_SD, count)
    p = expit(lean)[:, None]
    tie = rng.random((count, OVERLAP)) < TIE_RATE
    win = rng.random((count, OVERLAP)) < p
    return lean, np.where(tie, 0.5, win.astype(float)).mean(axis=1)


def noise_for(target: float, rng: np.random.Generator) -> float:
    """Noise SD on the lean whose mapped signal correlates ``target`` with the outcome."""
    _, y = comparisons(rng, 200_000)
    low, high = 0.0, 5.0
    for _ in range(40):
        mid = (low + high) / 2
        d = y - 0.5 + rng.normal(0, mid, len(y))
        f = np.array(list(metric_predictions(dict(enumerate(d))).values()))
        if np.corrcoef(f, y)[0, 1] > target:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def run(target: float) -> dict:
    rng = np.random.default_rng([SEED, int(target * 100)])
    noise = noise_for(target, rng)
    _, big = comparisons(rng, 2_000_000)
    truth = float(big.mean())
    covered = expert_covered = 0
    ratios, correlations = [], []
    for _ in range(STUDIES):
        _, y = comparisons(rng, COMPLETE + UNFINISHED)
        d = y - 0.5 + rng.normal(0, noise, len(y))
        result = prediction_powered(
            dict(enumerate(y[:COMPLETE])), metric_predictions(dict(enumerate(d))), signal="sim"
        )
        covered += result.interval[0] <= truth <= result.interval[1]
        expert_covered += result.expert_interval[0] <= truth <= result.expert_interval[1]
        ratios.append(result.width_ratio)
        correlations.append(result.signal_correlation)
    return {
        "target_correlation": target,
        "measured_correlation_median": float(np.median(correlations)),
        "ppi_coverage": covered / STUDIES,
        "expert_coverage": expert_covered / STUDIES,
        "width_vs_expert_median": float(np.median(ratios)),
        "narrower_by_median": 1 - float(np.median(ratios)),
        "true_win_rate": truth,
    }


def planner_power(studies: int = STUDIES) -> dict:
    """Share of studies of the planned size for 60 % whose test at the end finds the adapter
    better, with sequential_sim's prompt and rater effects."""
    plan = plan_study(
        win_rate=0.6,
        tie_rate=sim.TIE_RATE,
        overlap=sim.OVERLAP,
        raters=sim.RATERS,
        raters_at_large=True,
    )
    rng = np.random.default_rng([SEED, 600])
    effects = (sim.PROMPT_SD, sim.RATER_SD)
    shift = sim.shift_for(0.6, effects, rng)
    decided = 0
    for _ in range(studies):
        outcomes, _ = sim.simulate_study(shift, effects, plan.judgments // sim.OVERLAP, rng)
        units = comparison_units(outcomes, dict.fromkeys({o.item for o in outcomes}, sim.OVERLAP))
        decided += sim.fixed_verdict(units) == ADAPTER_BETTER
    return {
        "judgments": plan.judgments,
        "design_effect": plan.design_effect,
        "rater_icc": plan.rater_icc,
        "rater_widening": plan.rater_widening,
        "power_at_60": decided / studies,
        "studies": studies,
    }


def main() -> None:
    started = time.time()
    with multiprocessing.Pool(2) as pool:
        rows = pool.map(run, CORRELATIONS)
    power = planner_power()
    result = {
        "benchmark": "ppi_sim",
        "settings": {
            "studies": STUDIES,
            "complete_comparisons": COMPLETE,
            "unfinished_comparisons": UNFINISHED,
            "tie_rate": TIE_RATE,
            "prompt_effect_sd_logit": PROMPT_SD,
            "overlap": OVERLAP,
            "alpha": 0.05,
            "seed": SEED,
        },
        "rows": rows,
        "planner_at_60": power,
        "machine": sim.machine(),
        "wall_seconds": round(time.time() - started, 1),
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
