"""Time the leakage check (study page, report) and the lineage page's tree on a large chain.

    .venv/bin/python benchmarks/lineage_time.py [--examples 50000] [--prompts 1000] [--out F]

A throwaway SQLite database (see ``analysis_report.setup_django``): a dataset of ``--examples``
training examples and ``--prompts`` test prompts, an SFT run v1 on it, a feedback study, a
preference set of 2,000 rows from it, a DPO run v2 from v1 on the set, and a study of base vs
v1 vs v2 on the test prompts (every prompt compared once per pair). ``build_s`` is the time
to store all that (examples and prompts hash their prompt as they are inserted). Writes
benchmarks/results/lineage_time.json, or ``--out``.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.analysis_report import setup_django

RESULTS = Path(__file__).resolve().parent / "results" / "lineage_time.json"
PREFERENCE_ROWS = 2000


def _conversation(text: str) -> list[dict]:
    return [{"role": "user", "content": text}, {"role": "assistant", "content": "an answer"}]


def build(examples: int, prompts: int):
    from evalhub import models as ev
    from trainer import models as tr

    dataset = tr.Dataset.objects.create(name="big", format="messages", content_hash="0" * 64)
    rows = [
        tr.Example(
            dataset=dataset,
            index=i,
            source_line=i + 1,
            messages=_conversation(f"training question {i}"),
            split="train",
            content_hash="0" * 64,
        )
        for i in range(examples)
    ]
    tests = [
        tr.Example(
            dataset=dataset,
            index=examples + i,
            source_line=examples + i + 1,
            messages=_conversation(f"test question {i}"),
            split="test",
            content_hash="0" * 64,
        )
        for i in range(prompts)
    ]
    tr.Example.objects.bulk_create(rows + tests, batch_size=5000)
    model = tr.BaseModel.objects.create(name="m", source="m")
    v1 = tr.FineTuneRun.objects.create(name="v1", dataset=dataset, base_model=model)
    pairs = tr.Dataset.objects.create(
        name="prefs-v1", kind="preferences", format="pairs", content_hash="1" * 64
    )
    tr.Example.objects.bulk_create(
        [
            tr.Example(
                dataset=pairs,
                index=i,
                source_line=i + 1,
                messages=_conversation(f"feedback question {i}"),
                rejected="worse",
                split="train",
                content_hash="1" * 64,
            )
            for i in range(PREFERENCE_ROWS)
        ],
        batch_size=5000,
    )
    v2 = tr.FineTuneRun.objects.create(
        name="v2", dataset=pairs, base_model=model, method="dpo", from_run=v1
    )
    base = ev.System.objects.create(name="base", kind="base", base_model=model, run=v1)
    a1 = ev.System.objects.create(name="a1", kind="adapter", run=v1)
    a2 = ev.System.objects.create(name="a2", kind="adapter", run=v2)
    feedback = ev.Study.objects.create(name="feedback", run=v1)
    feedback.systems.set([base, a1])
    ev.PreferenceSet.objects.create(
        name="prefs", version=1, study=feedback, dataset=pairs, pair_count=PREFERENCE_ROWS
    )
    prompt_rows = ev.Prompt.objects.bulk_create(
        [ev.Prompt(dataset=dataset, example=e, messages=e.messages[:1]) for e in tests]
    )
    outputs = {
        s.pk: ev.Output.objects.bulk_create(
            [ev.Output(system=s, prompt=p, text="x") for p in prompt_rows]
        )
        for s in (base, a1, a2)
    }
    study = ev.Study.objects.create(name="test", run=v2)
    study.systems.set([base, a1, a2])
    comparisons = [
        ev.Comparison(study=study, prompt=p, output_a=outputs[x][i], output_b=outputs[y][i])
        for x, y in ((base.pk, a1.pk), (base.pk, a2.pk), (a1.pk, a2.pk))
        for i, p in enumerate(prompt_rows)
    ]
    ev.Comparison.objects.bulk_create(comparisons, batch_size=5000)
    return dataset, study


def timed(function, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=50_000)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        setup_django(data_dir)
        from evalhub.selectors.lineage import study_leakage
        from evalhub.selectors.lineage_graph import dataset_lineage

        start = time.perf_counter()
        dataset, study = build(args.examples, args.prompts)
        build_s = time.perf_counter() - start
        leakage = study_leakage(study=study)
        assert leakage.prompts_trained_on == 0
        figures = {
            "examples_trained_on": args.examples + PREFERENCE_ROWS,
            "study_prompts": args.prompts,
            "build_s": round(build_s, 2),
            "study_leakage_s": round(timed(lambda: study_leakage(study=study)), 3),
            "dataset_lineage_s": round(timed(lambda: dataset_lineage(dataset=dataset)), 3),
            "machine": f"{platform.machine()} python {platform.python_version()}",
            "cpus": os.cpu_count(),
            "load": os.getloadavg(),
        }
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
