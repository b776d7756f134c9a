"""How good is "about N more judgments needed"? Seeded uniform studies, read early.

    .venv/bin/python benchmarks/projection_sim.py [--studies 400]

The studies of ``sequential_sim.py`` (six raters, overlap 2, 20 % ties, prompt and rater
effects, a verdict about the panel): each is read after 40, 100 and 200 judgments, as the study
page reads it (``evalhub.analysis.sequential.monitor``), and where the reading is undecided with
a projection, that projection is set against the judgments the same study really went on to
need before its always-valid interval decided, within three times the plan for 60 %. Writes
benchmarks/results/projection_sim.json: per true win rate and reading, how many readings had a
projection, how many of those studies never decided, the ratio of what was needed to what was
projected in those that did (quartiles), and the share that decided within the projection;
and, where studies decided, how wide the projection's normal-mixture boundary was against the
betting interval there (median ratio).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sequential_sim import (
    ALPHA,
    CAP_FACTOR,
    OVERLAP,
    PROMPT_SD,
    RATER_SD,
    RATERS,
    SEED,
    TIE_RATE,
    for_scope,
    machine,
    shift_for,
    simulate_study,
)

from evalhub.analysis.planning import plan_study
from evalhub.analysis.sequential import (
    DEFAULT_MARGIN,
    UNDECIDED,
    _half_width,
    clustered_sequence,
    comparison_units,
    monitor,
    unit_variances,
    verdicts,
)

RATES = (0.55, 0.60, 0.65, 0.70)
READINGS = (40, 100, 200)
OUT = Path(__file__).parent / "results" / "projection_sim.json"


def decided_at(outcomes, required) -> tuple[int | None, float | None]:
    """The judgment at which the study's always-valid interval first decided (or None), and
    there the projection's half-width (the normal-mixture boundary) over the interval's."""
    units = for_scope(comparison_units(outcomes, required), "panel")
    low, high = clustered_sequence(units, alpha=ALPHA)
    _, at = verdicts(low, high, margin=DEFAULT_MARGIN)
    if at is None:
        return None, None
    width = _half_width(at + 1, float(unit_variances(units.means[: at + 1])[-1]), ALPHA)
    return int(units.completed_at[at]), width / ((high[at] - low[at]) / 2)


def run_rate(rate: float, studies: int, cap: int) -> dict:
    rng = np.random.default_rng([SEED, 7, int(rate * 1000)])
    effects = (PROMPT_SD, RATER_SD)
    shift = shift_for(rate, effects, rng)
    rows: dict[int, list[tuple[int, int | None]]] = {k: [] for k in READINGS}
    widths = []
    for _ in range(studies):
        outcomes, _ = simulate_study(shift, effects, cap // OVERLAP, rng)
        required = dict.fromkeys({o.item for o in outcomes}, OVERLAP)
        end, width = decided_at(outcomes, required)
        if width is not None:
            widths.append(width)
        for k in READINGS:
            if end is not None and end <= k:
                continue  # decided before this reading: nothing to project
            early = monitor(outcomes[:k], required=required)
            if early.verdict != UNDECIDED or early.judgments_needed is None:
                continue
            rows[k].append((early.judgments_needed, None if end is None else end - k))
    result = {
        "true_win_rate": rate,
        "projection_over_interval_half_width_at_decision": (
            float(np.median(widths)) if widths else None
        ),
        "readings": [],
    }
    for k in READINGS:
        pairs = rows[k]
        ratios = np.array([needed / projected for projected, needed in pairs if needed is not None])
        within = [needed is not None and needed <= projected for projected, needed in pairs]
        result["readings"].append(
            {
                "after_judgments": k,
                "projected_studies": len(pairs),
                "median_projection": float(np.median([p for p, _ in pairs])) if pairs else None,
                "never_decided": sum(needed is None for _, needed in pairs),
                "needed_over_projected_when_decided": {
                    "p25": float(np.percentile(ratios, 25)) if len(ratios) else None,
                    "median": float(np.median(ratios)) if len(ratios) else None,
                    "p75": float(np.percentile(ratios, 75)) if len(ratios) else None,
                },
                "decided_within_projection": float(np.mean(within)) if pairs else None,
            }
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=400)
    args = parser.parse_args()
    plan = plan_study(win_rate=0.6, tie_rate=TIE_RATE, overlap=OVERLAP, raters=RATERS)
    cap = CAP_FACTOR * plan.judgments
    started = time.perf_counter()
    rates = [run_rate(rate, args.studies, cap) for rate in RATES]
    result = {
        "studies_per_rate": args.studies,
        "cap_judgments": cap,
        "rates": rates,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine(),
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    for r in rates:
        for reading in r["readings"]:
            q = reading["needed_over_projected_when_decided"]
            print(
                f"{r['true_win_rate']:.2f} after {reading['after_judgments']:>3}: "
                f"{reading['projected_studies']:>3} projected (median "
                f"{reading['median_projection']}), {reading['never_decided']} never decided; "
                f"needed/projected {q['p25']} / {q['median']} / {q['p75']}; "
                f"within {reading['decided_within_projection']}"
            )


if __name__ == "__main__":
    main()
