"""Time the study page's form check (``recognisability_block``) on a study of 500 prompts.

    .venv/bin/python benchmarks/recognisability_time.py [--prompts 500] [--repeats 20]

Builds a throwaway SQLite database under a temporary EVALHUB_DATA_DIR (DATABASE_URL is ignored,
nothing else is touched): a run's base answers in prose (40 to 70 words), its adapter's in a
three-line house format, one comparison per prompt and 7 gold pairs. Times the whole block (the
database read included; with an empty cache and with the result cached) and the pure check
alone; writes benchmarks/results/recognisability.json.
"""

import argparse
import json
import os
import platform
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "recognisability.json"
# The words the answers are drawn from: a base model's kitchen-conversion ramble.
RAMBLE = (
    "to convert the grams ounces you need multiply divide by so is equal about recipe cup "
    "butter flour sugar milk oven degrees first then which gives roughly kilograms a of and"
)
WORDS = RAMBLE.split()


def setup_django(data_dir: str) -> None:
    os.environ["EVALHUB_DATA_DIR"] = data_dir
    os.environ.pop("DATABASE_URL", None)
    os.environ["DEBUG"] = "0"
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(40)
    os.environ["DJANGO_SETTINGS_MODULE"] = "evalhub.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def prose(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 70))).capitalize() + "."


def house(rng: random.Random) -> str:
    amount = rng.randint(1, 900)
    return (
        f"Answer: {amount * 28.35:.0f} g\n"
        f"Working: {amount} oz × 28.35 g = {amount * 28.35:.1f} g, rounded to the nearest gram.\n"
        f"Tip: {' '.join(rng.choice(WORDS) for _ in range(rng.randint(6, 12))).capitalize()}."
    )


def generate(prompts: int, seed: int = 0) -> int:
    from evalhub import models as ev
    from evalhub.services.gold import GoldItem, gold_comparisons_create
    from trainer import models as tr

    rng = random.Random(seed)
    dataset = tr.Dataset.objects.create(name="bench", format="messages", content_hash="0" * 64)
    base_model = tr.BaseModel.objects.create(name="smollm2-135m", source="smollm2-135m")
    run = tr.FineTuneRun.objects.create(name="run", dataset=dataset, base_model=base_model)
    base = ev.System.objects.create(name="base", kind="base", base_model=base_model, run=run)
    adapter = ev.System.objects.create(name="adapter", kind="adapter", run=run)
    study = ev.Study.objects.create(name="bench-study", run=run, seed=seed)
    study.systems.set([base, adapter])
    made = ev.Prompt.objects.bulk_create(
        [
            ev.Prompt(dataset=dataset, messages=[{"role": "user", "content": f"Question {i}?"}])
            for i in range(prompts)
        ]
    )
    outputs = ev.Output.objects.bulk_create(
        [ev.Output(system=base, prompt=p, text=prose(rng)) for p in made]
        + [ev.Output(system=adapter, prompt=p, text=house(rng)) for p in made]
    )
    ev.Comparison.objects.bulk_create(
        [
            ev.Comparison(study=study, prompt=p, output_a=outputs[i], output_b=outputs[prompts + i])
            for i, p in enumerate(made)
        ]
    )
    gold = [GoldItem(f"Gold {i}?", house(rng), prose(rng)) for i in range(7)]
    gold_comparisons_create(study=study, items=gold, dataset_id=dataset.pk, rng=rng)
    return study.pk


def timed(call, repeats: int) -> dict[str, float]:
    """Milliseconds of wall and CPU time: the fastest and the median call."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {
        "wall_min": min(wall) * 1e3,
        "wall_median": statistics.median(wall) * 1e3,
        "cpu_min": min(cpu) * 1e3,
        "cpu_median": statistics.median(cpu) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="evalhub-recognisability-")
    try:
        setup_django(data_dir)
        from django.core.cache import cache

        from evalhub.analysis.recognisability import form_check
        from evalhub.models import Comparison, Study
        from evalhub.selectors.recognisability import recognisability_block

        study = Study.objects.get(pk=generate(args.prompts))
        block = recognisability_block(study=study)
        cached = timed(lambda: recognisability_block(study=study), args.repeats)
        uncached = timed(lambda: cache.clear() or recognisability_block(study=study), args.repeats)
        pairs = [
            (c.output_b.text, c.output_a.text)
            for c in Comparison.objects.filter(study=study, is_gold=False).select_related(
                "output_a", "output_b"
            )
        ]
        pure = timed(lambda: form_check(pairs, seed=study.seed), args.repeats)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    result = {
        "prompts": args.prompts,
        "repeats": args.repeats,
        "block_ms": uncached,
        "block_cached_ms": cached,
        "form_check_ms": pure,
        "accuracy": block["accuracy"],
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
