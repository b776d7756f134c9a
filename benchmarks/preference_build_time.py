"""Time ``preference_set_build`` on a large feedback study.

    .venv/bin/python benchmarks/preference_build_time.py [--prompts 2000] [--raters 3] [--repeats 3]

Builds a throwaway SQLite database under a temporary EVALHUB_DATA_DIR (DATABASE_URL is ignored,
nothing else is touched): one comparison per feedback prompt (distinct prose prompts and
answers), every rater judging every comparison with random sides and verdicts, one judgment in
twenty flagged, one in ten with a correction. Each repeat builds the next version of one set;
writes benchmarks/results/preference_build.json with the time and what the rules left out.
"""

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recognisability_time import setup_django, timed
from review_queue_time import generate

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "preference_build.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--raters", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="evalhub-preferences-")
    try:
        setup_django(data_dir)
        from evalhub.models import PreferenceSet, Study
        from evalhub.services.preferences import preference_set_build

        study = Study.objects.get(pk=generate(args.prompts, args.raters, feedback=True))
        build_ms = timed(lambda: preference_set_build(study=study, name="bench"), args.repeats)
        built = PreferenceSet.objects.filter(name="bench").order_by("-version").first()
        rows = built.dataset.examples.values_list("split", flat=True)
        counts = {
            "pairs": built.pair_count,
            "sft_rows": built.sft_count,
            "validation_rows": sum(1 for split in rows if split == "validation"),
            "judgments_used": built.judgments.count(),
            "left_out": {r["rule"]: r["count"] for r in built.rules["left_out"]},
        }
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    result = {
        "prompts": args.prompts,
        "raters": args.raters,
        "judgments": args.prompts * args.raters,
        "repeats": args.repeats,
        "build_ms": build_ms,
        "set": counts,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load": os.getloadavg(),
        },
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
