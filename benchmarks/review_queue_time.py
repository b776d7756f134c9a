"""Time the reviewer's queue (``disputed_comparisons``) and one item page's read on a large study.

    .venv/bin/python benchmarks/review_queue_time.py [--prompts 5000] [--raters 3] [--repeats 10]

Builds a throwaway SQLite database under a temporary EVALHUB_DATA_DIR (DATABASE_URL is ignored,
nothing else is touched): one comparison per prompt, every rater judging every comparison with
random sides and verdicts (so most comparisons are split, the worst case for the queue) and one
judgment in twenty flagged. Every review page reads the queue once; writes
benchmarks/results/review_queue.json.
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
RESULTS = ROOT / "benchmarks" / "results" / "review_queue.json"


def generate(prompts: int, raters: int, seed: int = 0, *, feedback: bool = False) -> int:
    """A closed study of base against adapter: one comparison per prompt, every rater judging
    every comparison with random sides and verdicts, one judgment in twenty flagged. With
    ``feedback`` (what a preference set is built from) the prompts are a dataset's feedback
    examples, prompts and answers distinct prose, and one judgment in ten has a better answer;
    otherwise numbered questions and answers."""
    from django.contrib.auth import get_user_model

    from evalhub import models as ev
    from trainer import models as tr

    rng = random.Random(seed)
    dataset = tr.Dataset.objects.create(name="bench", format="messages", content_hash="0" * 64)
    if feedback:
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
        prompt_rows = [
            ev.Prompt(dataset=dataset, example=e, messages=e.messages[:1]) for e in examples
        ]
    else:
        prompt_rows = [
            ev.Prompt(dataset=dataset, messages=[{"role": "user", "content": f"Question {i}?"}])
            for i in range(prompts)
        ]
    base_model = tr.BaseModel.objects.create(name="smollm2-135m", source="smollm2-135m")
    run = tr.FineTuneRun.objects.create(name="run", dataset=dataset, base_model=base_model)
    base = ev.System.objects.create(name="base", kind="base", base_model=base_model, run=run)
    adapter = ev.System.objects.create(name="adapter", kind="adapter", run=run)
    study = ev.Study.objects.create(name="bench-study", run=run, seed=seed, status="closed")
    study.systems.set([base, adapter])
    made = ev.Prompt.objects.bulk_create(prompt_rows)

    def answer(system: str, i: int) -> str:
        return prose(rng) if feedback else f"{system} {i}"

    outputs = ev.Output.objects.bulk_create(
        [ev.Output(system=base, prompt=p, text=answer("base", i)) for i, p in enumerate(made)]
        + [
            ev.Output(system=adapter, prompt=p, text=answer("adapter", i))
            for i, p in enumerate(made)
        ]
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
                correction=prose(rng) if feedback and rng.random() < 0.1 else "",
            )
            for a in assignments
        ]
    )
    return study.pk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=5000)
    parser.add_argument("--raters", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="evalhub-review-")
    try:
        setup_django(data_dir)
        from django.contrib.auth import get_user_model

        from evalhub.models import Study
        from evalhub.selectors.review import disputed_comparisons, review_item

        study = Study.objects.get(pk=generate(args.prompts, args.raters))
        reviewer = get_user_model().objects.create(username="reviewer")
        queue = disputed_comparisons(study=study, reviewer=reviewer)
        queue_ms = timed(lambda: disputed_comparisons(study=study, reviewer=reviewer), args.repeats)
        item_ms = timed(
            lambda: review_item(study=study, queue=queue, disputed=queue[0]), args.repeats
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    result = {
        "prompts": args.prompts,
        "raters": args.raters,
        "judgments": args.prompts * args.raters,
        "queue_length": len(queue),
        "repeats": args.repeats,
        "queue_ms": queue_ms,
        "item_read_ms": item_ms,
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
