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
import random
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recognisability_time import prose, setup_django, timed

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "preference_build.json"


def generate(prompts: int, raters: int, seed: int = 0) -> int:
    from django.contrib.auth import get_user_model

    from evalhub import models as ev
    from trainer import models as tr

    rng = random.Random(seed)
    dataset = tr.Dataset.objects.create(name="bench", format="messages", content_hash="0" * 64)
    examples = tr.Example.objects.bulk_create(
        [
            tr.Example(
                dataset=dataset,
                index=i,
                source_line=i + 1,
                messages=[
                    {"role": "user", "content": prose(rng)},
                    {"role": "assistant", "content": prose(rng)},
                ],
                split=tr.Split.FEEDBACK,
                content_hash=f"{i:064x}",
            )
            for i in range(prompts)
        ]
    )
    base_model = tr.BaseModel.objects.create(name="smollm2-135m", source="smollm2-135m")
    run = tr.FineTuneRun.objects.create(name="run", dataset=dataset, base_model=base_model)
    base = ev.System.objects.create(name="base", kind="base", base_model=base_model, run=run)
    adapter = ev.System.objects.create(name="adapter", kind="adapter", run=run)
    study = ev.Study.objects.create(name="bench-study", run=run, seed=seed, status="closed")
    study.systems.set([base, adapter])
    made = ev.Prompt.objects.bulk_create(
        [ev.Prompt(dataset=dataset, example=e, messages=e.messages[:1]) for e in examples]
    )
    outputs = ev.Output.objects.bulk_create(
        [ev.Output(system=base, prompt=p, text=prose(rng)) for p in made]
        + [ev.Output(system=adapter, prompt=p, text=prose(rng)) for p in made]
    )
    comparisons = ev.Comparison.objects.bulk_create(
        [
            ev.Comparison(study=study, prompt=p, output_a=outputs[i], output_b=outputs[prompts + i])
            for i, p in enumerate(made)
        ]
    )
    users = [get_user_model().objects.create(username=f"rater{r}") for r in range(raters)]
    assignments = ev.Assignment.objects.bulk_create(
        [
            ev.Assignment(
                comparison=c,
                rater=u,
                left_output=rng.choice([c.output_a, c.output_b]),
                position=i,
                token=secrets.token_urlsafe(32),
            )
            for u in users
            for i, c in enumerate(comparisons)
        ]
    )
    ev.Judgment.objects.bulk_create(
        [
            ev.Judgment(
                assignment=a,
                choice=rng.choice(["a", "b", "a", "b", "tie", "both_bad"]),
                flagged=(flag := rng.random() < 0.05),
                flag_reason="unclear" if flag else "",
                correction=prose(rng) if rng.random() < 0.1 else "",
            )
            for a in assignments
        ]
    )
    return study.pk


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

        study = Study.objects.get(pk=generate(args.prompts, args.raters))
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
