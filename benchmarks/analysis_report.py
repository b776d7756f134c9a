"""Time the analysis and all four report exports on a generated study of 100,000 judgments.

    .venv/bin/python benchmarks/analysis_report.py [--judgments 100000] [--raters 20]
        [--corrections 0.02] [--out benchmarks/results/analysis_report.json]

Builds a throwaway SQLite database under a temporary EVALHUB_DATA_DIR (DATABASE_URL is ignored,
nothing else is touched), fills it with bulk_create, then times ``report_build`` and the HTML,
PDF, CSV and JSON renderers. Writes the figures and the machine description to
benchmarks/results/analysis_report.json.

The study: three systems (base, adapter, an imported one) so that Bradley–Terry runs; each
prompt gets an adapter-vs-base comparison and one more pair; four raters per comparison out of
the pool; 1 % gold items; two criteria; ROUGE and BERTScore values on every output. Verdicts
come from a simple latent-quality model (the adapter is better on average, raters are noisy,
some prefer the left side), so agreement and bias figures are realistic rather than constant.
A share of the judgments (``--corrections``) carry a rater's better answer of a few hundred
characters; ``corrections_block`` (their list in the report) is timed on its own too.
"""

import argparse
import json
import os
import platform
import random
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "analysis_report.json"
RATERS_PER_ITEM = 4
QUALITY = {"base": 0.0, "adapter": 0.45, "distilled": 0.2}
CORRECTION = (
    "Check the cable first, then restart the router and wait two minutes before you call. "
) * 5


def setup_django(data_dir: str) -> None:
    os.environ["EVALHUB_DATA_DIR"] = data_dir
    os.environ.pop("DATABASE_URL", None)
    # DEBUG off so Django does not keep every query in memory while it bulk-inserts.
    os.environ["DEBUG"] = "0"
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(40)
    os.environ["DJANGO_SETTINGS_MODULE"] = "evalhub.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def generate(judgments: int, raters: int, corrections: float, seed: int = 0) -> int:
    """Create the study; returns its id."""
    from django.contrib.auth import get_user_model

    from evalhub import models as ev
    from evalhub.blinding import blind_choice, sides
    from trainer import models as tr

    rng = random.Random(seed)
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"rater{i:02d}", password="!") for i in range(raters)]
    )
    dataset = tr.Dataset.objects.create(name="bench", format="messages", content_hash="0" * 64)
    base_model = tr.BaseModel.objects.create(name="smollm2-135m", source="smollm2-135m")
    run = tr.FineTuneRun.objects.create(
        name="bench-run",
        dataset=dataset,
        base_model=base_model,
        status="succeeded",
        hyperparameters={"rank": 16, "alpha": 32, "learning_rate": 2e-4, "epochs": 3},
    )
    tr.RunMetric.objects.bulk_create(
        [tr.RunMetric(run=run, kind="train", step=s, loss=2.5 * 0.99**s) for s in range(1, 301)]
        + [
            tr.RunMetric(run=run, kind="validation", step=s, loss=2.6 * 0.99**s + 0.1)
            for s in range(25, 301, 25)
        ]
    )
    systems = {
        "base": ev.System.objects.create(name="base", kind="base", base_model=base_model),
        "adapter": ev.System.objects.create(name="adapter", kind="adapter", run=run),
        "distilled": ev.System.objects.create(name="distilled", kind="imported"),
    }
    study = ev.Study.objects.create(
        name="bench-study", run=run, criteria=["correctness", "style"], overlap=4, seed=seed
    )
    study.systems.set(systems.values())

    comparisons_needed = judgments // RATERS_PER_ITEM
    prompts_needed = (comparisons_needed + 1) // 2
    prompts = ev.Prompt.objects.bulk_create(
        [
            ev.Prompt(
                dataset=dataset,
                messages=[{"role": "user", "content": f"Question number {i}: how do I ...?"}],
                reference=f"reference answer {i}",
            )
            for i in range(prompts_needed)
        ],
        batch_size=5000,
    )
    outputs = []
    for prompt in prompts:
        for name, system in systems.items():
            tokens = rng.randint(20, 400)
            rouge = min(1.0, max(0.0, rng.gauss(0.3 + QUALITY[name] / 3, 0.1)))
            bert = min(1.0, max(0.0, rng.gauss(0.85 + QUALITY[name] / 20, 0.03)))
            outputs.append(
                ev.Output(
                    system=system,
                    prompt=prompt,
                    text="word " * (tokens // 2),
                    token_count=tokens,
                    metrics={
                        "rouge1": rouge,
                        "rouge2": rouge * 0.6,
                        "rougeL": rouge * 0.9,
                        "bertscore_precision": bert,
                        "bertscore_recall": bert - 0.01,
                        "bertscore_f1": bert - 0.005,
                    },
                    metrics_encoder="all-MiniLM-L6-v2",
                )
            )
    outputs = ev.Output.objects.bulk_create(outputs, batch_size=5000)
    by_prompt = {}
    for output in outputs:
        by_prompt.setdefault(output.prompt_id, {})[output.system_id] = output

    comparisons = []
    for i, prompt in enumerate(prompts):
        own = by_prompt[prompt.pk]
        other = "distilled"
        second = ("adapter", other) if i % 2 else ("base", other)
        for x, y in (("base", "adapter"), second):
            if len(comparisons) == comparisons_needed:
                break
            gold = rng.random() < 0.01
            comparisons.append(
                ev.Comparison(
                    study=study,
                    prompt=prompt,
                    output_a=own[systems[x].pk],
                    output_b=own[systems[y].pk],
                    is_gold=gold,
                    gold_answer=("a" if QUALITY[x] > QUALITY[y] else "b") if gold else "",
                )
            )
    comparisons = ev.Comparison.objects.bulk_create(comparisons, batch_size=5000)

    left_bias = {u.pk: rng.gauss(0, 0.15) for u in users}
    names = {s.pk: n for n, s in systems.items()}
    assignments, verdicts = [], []
    for c in comparisons:
        a_name, b_name = names[c.output_a.system_id], names[c.output_b.system_id]
        item_noise = rng.gauss(0, 0.6)
        for position, rater in enumerate(rng.sample(users, RATERS_PER_ITEM)):
            left = c.output_a if rng.random() < 0.5 else c.output_b
            edge = QUALITY[a_name] - QUALITY[b_name] + item_noise + rng.gauss(0, 0.5)
            edge += left_bias[rater.pk] if left == c.output_a else -left_bias[rater.pk]
            roll = rng.random()
            if roll < 0.05:
                verdict = "both_bad"
            elif abs(edge) < 0.12:
                verdict = "tie"
            else:
                verdict = "a" if edge > 0 else "b"
            assignments.append(
                ev.Assignment(
                    comparison=c,
                    rater=rater,
                    left_output=left,
                    position=position,
                    token=secrets.token_urlsafe(24),
                )
            )
            verdicts.append((verdict, left == c.output_a, a_name, b_name))
    assignments = ev.Assignment.objects.bulk_create(assignments, batch_size=5000)

    judgments_rows = []
    for assignment, (verdict, left_is_a, a_name, b_name) in zip(assignments, verdicts, strict=True):
        score_a = max(1, min(5, round(3 + 2 * QUALITY[a_name] + rng.gauss(0, 1))))
        score_b = max(1, min(5, round(3 + 2 * QUALITY[b_name] + rng.gauss(0, 1))))
        left_score, right_score = sides(score_a, score_b, left_is_a=left_is_a)
        judgments_rows.append(
            ev.Judgment(
                assignment=assignment,
                choice=blind_choice(verdict, left_is_a=left_is_a),
                criterion_scores={
                    "correctness": {"a": left_score, "b": right_score},
                    "style": {"a": max(1, left_score - 1), "b": right_score},
                },
                time_on_task_ms=rng.randint(4000, 90000),
                flagged=rng.random() < 0.005,
                comment="=1+1 looks wrong" if rng.random() < 0.001 else "",
                correction=CORRECTION if rng.random() < corrections else "",
            )
        )
    ev.Judgment.objects.bulk_create(judgments_rows, batch_size=5000)
    return study.pk


def machine() -> dict:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()[:15]
    from importlib.metadata import version

    return {
        "lscpu": lscpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {
            p: version(p)
            for p in ("django", "numpy", "scipy", "statsmodels", "krippendorff", "choix")
        }
        | {"weasyprint": version("weasyprint")},
        "database": "SQLite (WAL), throwaway file",
        "note": (
            "2 CPU cores shared with other engineers' test runs; wall times include waiting "
            "for the CPU (see load_average_before_after), cpu_s is this process's own time"
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=100_000)
    parser.add_argument("--raters", type=int, default=20)
    parser.add_argument(
        "--corrections", type=float, default=0.02, help="share of judgments with a better answer"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="evalhub-bench-")
    try:
        setup_django(data_dir)
        from evalhub.models import Judgment, Study
        from evalhub.reports.build import report_build
        from evalhub.reports.corrections import corrections_block
        from evalhub.reports.render import render_csv, render_html, render_json, render_pdf

        started = time.perf_counter()
        study_id = generate(args.judgments, args.raters, args.corrections)
        generation_s = time.perf_counter() - started
        study = Study.objects.get(pk=study_id)
        count = Judgment.objects.filter(assignment__comparison__study=study).count()

        timings, cpu, sizes = {}, {}, {}

        def timed(name, work):
            wall, used = time.perf_counter(), time.process_time()
            value = work()
            timings[name] = time.perf_counter() - wall
            cpu[name] = time.process_time() - used
            return value

        load_before = os.getloadavg()
        listed = timed("corrections_block", lambda: corrections_block(study.pk))
        page_report = timed(
            "report_build_page", lambda: report_build(study, include_judgments=False)
        )
        report = timed("report_build_full", lambda: report_build(study))
        for fmt, render in (
            ("html", render_html),
            ("pdf", render_pdf),
            ("csv", render_csv),
            ("json", render_json),
        ):
            body = timed(f"render_{fmt}", lambda render=render: render(report))
            sizes[fmt] = len(body if isinstance(body, bytes) else body.encode())
        exports = ["report_build_full"] + [f"render_{fmt}" for fmt in sizes]
        result = {
            "benchmark": "analysis + all four exports",
            "judgments": count,
            "comparisons": study.comparisons.count(),
            "raters": args.raters,
            "corrections": listed["total"],
            "systems": 3,
            "generation_s": round(generation_s, 2),
            "wall_s": {k: round(v, 2) for k, v in timings.items()},
            "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
            "report_build_and_all_exports_wall_s": round(sum(timings[k] for k in exports), 2),
            "report_build_and_all_exports_cpu_s": round(sum(cpu[k] for k in exports), 2),
            "load_average_before_after": [
                [round(x, 2) for x in load_before],
                [round(x, 2) for x in os.getloadavg()],
            ],
            "sizes_bytes": sizes,
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "analysis_summary": {
                "pairs": [
                    {k: p[k] for k in ("system", "opponent", "n", "win_rate")}
                    for p in page_report["analysis"]["pairs"]
                ],
                "fleiss_kappa": page_report["analysis"]["agreement"]["fleiss_kappa"],
                "position_bias_share": page_report["analysis"]["position_bias"]["share"],
            },
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine(),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
