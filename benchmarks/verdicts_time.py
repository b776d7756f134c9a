"""Time the verdict statistics of issue 17 (Davidson ties, length-controlled win rate,
agreement intervals, rater drift) with their default resamples, on generated studies.

    .venv/bin/python benchmarks/verdicts_time.py [--judgments 500 5000 100000]

No database: plain records, as ``report_build`` hands them over. Each study has three systems
(adapter vs base on every prompt plus one more pair), two raters per comparison out of five,
lengths and ties. Writes benchmarks/results/verdicts_time.json.
"""

import argparse
import json
import math
import platform
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evalhub.analysis.agreement_intervals import agreement_intervals, rater_drift  # noqa: E402
from evalhub.analysis.length import length_controlled  # noqa: E402
from evalhub.analysis.records import Rating  # noqa: E402
from evalhub.analysis.ties import tie_model  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "verdicts_time.json"
QUALITY = {"base": 0.0, "adapter": 0.4, "distilled": 0.2}
SYSTEMS = ["adapter", "base", "distilled"]
PAIRS = [("adapter", "base"), ("adapter", "distilled"), ("base", "distilled")]


def generate(judgments: int, seed: int = 0) -> list[Rating]:
    rng = random.Random(seed)
    raters = [f"rater{i}" for i in range(5)]
    ratings: list[Rating] = []
    item = 0
    for prompt in range(judgments):
        lengths = {s: rng.randint(20, 400) for s in SYSTEMS}
        second = ("adapter", "distilled") if prompt % 2 else ("base", "distilled")
        for x, y in (("adapter", "base"), second):
            item += 1
            for rater in rng.sample(raters, 2):
                if len(ratings) == judgments:
                    return ratings
                edge = QUALITY[x] - QUALITY[y] + 0.5 * math.log(lengths[x] / lengths[y])
                edge += rng.gauss(0, 0.8)
                roll = rng.random()
                verdict = (
                    "both_bad" if roll < 0.05 else "tie" if abs(edge) < 0.15 else "ab"[edge < 0]
                )
                ratings.append(
                    Rating(
                        item=item,
                        rater=rater,
                        system_a=x,
                        system_b=y,
                        verdict=verdict,
                        length_a=lengths[x],
                        length_b=lengths[y],
                        time_ms=rng.randint(4000, 90000),
                        prompt=prompt,
                    )
                )
    return ratings


def timed(work, *args) -> float:
    start = time.perf_counter()
    work(*args)
    return round(time.perf_counter() - start, 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--judgments", type=int, nargs="+", default=[500, 5000, 100000])
    args = parser.parse_args()
    rows = []
    warm = generate(200)  # first calls import statsmodels and krippendorff: not timed
    agreement_intervals(warm)
    length_controlled(warm, "adapter", "base")
    for n in args.judgments:
        ratings = generate(n)
        seconds = {
            "tie_model": timed(tie_model, ratings, SYSTEMS, PAIRS),
            "length_controlled_3_pairs": timed(
                lambda r: [length_controlled(r, x, y) for x, y in PAIRS], ratings
            ),
            "agreement_intervals": timed(agreement_intervals, ratings),
            "rater_drift": timed(rater_drift, ratings),
        }
        seconds["total"] = round(sum(seconds.values()), 3)
        rows.append({"judgments": n, "wall_s": seconds})
        print(n, seconds, flush=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "verdict statistics (issue 17), default resamples",
                "machine": f"{platform.machine()}, {platform.python_version()}",
                "runs": rows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
