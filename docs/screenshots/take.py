"""The README's screenshots: the rating page (desktop and phone), a run page and a study's
analysis page, saved as PNGs beside this file.

    python docs/screenshots/take.py        # about 30 s; needs Playwright and /usr/bin/chromium

It builds a demo-like site in a throwaway data directory without training anything: the demo's
accounts, dataset and study come from the demo's own services (evalhub.services.demo); the run
is recorded as the demo's 32-step run (validation losses as measured in
benchmarks/results/demo.md, its memory and size figures from a CPU run of the same settings);
the base model's answers are real SmolLM2-135M answers to the held-out prompts
(base_answers.json), the adapter's are the dataset's reference answers; the demo expert has
judged most items. On top of that, loop.py builds the improvement loop (feedback study with
corrections, preference set, DPO run v2, a base/v1/v2 study with a model judge) for the lineage,
preference set, DPO run, study, judge and correction screenshots. The site is served exactly as
`manage.py demo` serves it.
"""

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
DESKTOP, PHONE = (1366, 900), (390, 844)
LONGEST_PAGE = 2000  # pixels
LARGEST_PNG = 400 * 1024
CORRECTION = "Answer: 3.3 lb\nWorking: 1.5 kg × 2.2046 lb per kg = 3.31 lb, rounded to one decimal."
JUDGED = 30  # of the study's 43 items; the rest is left for the rating page
VALIDATION_LOSS = {8: 1.46, 16: 0.94, 24: 0.80, 32: 0.762}
RUN_FACTS = {
    "trainable_params": 4_884_480,
    "total_params": 139_399_488,
    "peak_memory_bytes": 4_383_531_008,
    "adapter_size_bytes": 19_601_225,
    "environment": {
        "device": "cpu",
        "compute_dtype": "float32",
        "world_size": 1,
        "cpu_threads": 2,
        "memory_plan": {
            "cached_layers": 30,
            "embeddings_on_cpu": False,
            "optimizer": "adamw",
            "loss_chunk_tokens": 1024,
            "budget_bytes": 20_732_374_220,
            "estimated_peak_bytes": 2_852_179_968,
            "layers": {"keep": 30, "recompute": 0, "offload": 0},
            "budget_gib": 19.31,
            "estimated_peak_gib": 2.66,
        },
    },
}


def build() -> dict[str, int]:
    """The site's rows; returns the ids the screenshots open."""
    import loop  # beside this file
    from django.core.management import call_command

    from evalhub.services import demo

    call_command("migrate", verbosity=0)
    users = demo.demo_accounts()
    loop.import_dataset(created_by=users["manager"])
    dataset, _ = demo.demo_dataset(created_by=users["manager"])
    run = demo.demo_run_create(
        dataset=dataset, config=demo.demo_training_config(), created_by=users["manager"]
    )
    record_run(run)
    record_outputs(run)
    study, _ = demo.demo_study(run=run, expert=users["expert"], manager=users["manager"])
    judge(study, users["expert"])
    return {"run": run.pk, "study": study.pk, "dataset": dataset.name} | loop.build_loop(
        v1=run, users=users
    )


def record_run(run) -> None:
    from django.conf import settings
    from django.utils import timezone

    from trainer.models import FineTuneRun, MetricKind, RunMetric, RunStatus

    steps = run.hyperparameters["max_steps"]
    for step in range(1, steps + 1):
        # A curve of the measured shape: 3.35 at the start, the validation loss's level by the end.
        loss = 0.7 + 2.65 * 0.88 ** (step - 1) + 0.05 * ((step * 7) % 5 - 2) / 2
        RunMetric.objects.create(
            run=run,
            kind=MetricKind.TRAIN,
            step=step,
            epoch=step / 36,
            loss=loss,
            learning_rate=1e-3,
            grad_norm=1.3,
            tokens_per_s=160.0,
        )
    for step, loss in VALIDATION_LOSS.items():
        RunMetric.objects.create(
            run=run, kind=MetricKind.VALIDATION, step=step, epoch=step / 36, loss=loss
        )
    finished = timezone.now()
    FineTuneRun.objects.filter(pk=run.pk).update(
        status=RunStatus.SUCCEEDED,
        step=steps,
        total_steps=steps,
        epoch=steps / 36,
        best_val_loss=VALIDATION_LOSS[32],
        best_step=32,
        wall_seconds=212.0,
        started_at=finished - timedelta(seconds=212),
        finished_at=finished,
        worker="laptop:4242",
        adapter_path=str(Path(settings.EVALHUB_RUNS_DIR) / f"run-{run.pk}" / "adapter"),
        **RUN_FACTS,
    )


def record_outputs(run) -> None:
    from evalhub.selectors.outputs import evaluation_prompts
    from evalhub.services.outputs import outputs_store
    from evalhub.services.prompts import prompts_create_from_split
    from evalhub.services.systems import system_get_or_create
    from trainer.engine.generate import GeneratedText
    from trainer.models import Split

    base_answers = json.loads((HERE / "base_answers.json").read_text())
    prompts_create_from_split(dataset=run.dataset, split=Split.TEST)
    prompts = list(evaluation_prompts(dataset=run.dataset, split=Split.TEST))
    answers = {
        "base": [base_answers[p.messages[-1]["content"]] for p in prompts],
        "adapter": [p.reference for p in prompts],
    }
    for kind, texts in answers.items():
        system = system_get_or_create(run=run, kind=kind)
        pairs = zip(prompts, texts, strict=True)
        items = [(p, GeneratedText(t, len(t.split()), 900.0)) for p, t in pairs]
        outputs_store(system=system, items=items)


def judge(study, expert) -> None:
    """Most verdicts for the adapter, as the demo's expert would give them; gold items right."""
    from evalhub.models import Assignment
    from evalhub.services.judgments import judgment_submit

    rng = random.Random(0)
    assignments = Assignment.objects.filter(comparison__study=study, rater=expert).order_by(
        "position"
    )
    for assignment in assignments.select_related("comparison__output_a__system")[:JUDGED]:
        comparison = assignment.comparison
        if comparison.is_gold:
            better = comparison.output_a if comparison.gold_answer == "a" else comparison.output_b
        else:
            adapter_is_a = comparison.output_a.system.kind == "adapter"
            better = comparison.output_a if adapter_is_a else comparison.output_b
        good, poor = ("a", "b") if assignment.left_output_id == better.pk else ("b", "a")
        if comparison.is_gold:
            choice = good
        else:
            choice = rng.choices([good, "tie", "both_bad", poor], weights=[70, 10, 12, 8])[0]
        scores = {
            "correctness": {good: rng.randint(2, 5), poor: rng.randint(1, 4)},
            "format": {good: rng.randint(4, 5), poor: rng.randint(1, 2)},
        }
        judgment_submit(
            assignment=assignment,
            rater=expert,
            choice=choice,
            criterion_scores=scores,
            time_on_task_ms=rng.randint(9_000, 40_000),
        )


def shoot(address: str, ids: dict[str, int]) -> list[Path]:
    from django.urls import reverse
    from playwright.sync_api import sync_playwright

    from evalhub.services import demo

    study, three = ids["study"], ids["three"]
    preference_set = [ids["preference_set"], ids["version"]]
    # (file, role, viewport, page, what to show: the viewport, "page" (its top LONGEST_PAGE
    # pixels), an element's selector, or "open:<selector>" to click it open and show the viewport)
    shots = [
        ("rating-desktop.png", "expert", DESKTOP, reverse("rate_next", args=[study]), "viewport"),
        ("rating-phone.png", "expert", PHONE, reverse("rate_next", args=[study]), "viewport"),
        ("run.png", "manager", DESKTOP, reverse("run_detail", args=[ids["run"]]), "page"),
        ("analysis.png", "manager", DESKTOP, reverse("study_analysis", args=[study]), "page"),
        (
            "rating-correction.png",
            "expert",
            DESKTOP,
            reverse("rate_next", args=[study]),
            "open:details.rate-correction",
        ),
        (
            "lineage.png",
            "manager",
            DESKTOP,
            reverse("dataset_lineage", args=[ids["dataset"]]),
            "page",
        ),
        (
            "preference-set.png",
            "manager",
            DESKTOP,
            reverse("preference_detail", args=preference_set),
            "page",
        ),
        ("dpo-run.png", "manager", DESKTOP, reverse("run_detail", args=[ids["v2"]]), "page"),
        ("study.png", "manager", DESKTOP, reverse("study_detail", args=[three]), "page"),
        ("study-judge.png", "manager", DESKTOP, reverse("study_detail", args=[three]), "#judges"),
        (
            "analysis-judge.png",
            "manager",
            DESKTOP,
            reverse("study_analysis", args=[three]),
            "#judges",
        ),
    ]
    logins = {login.role.split(":")[0]: login for login in demo.demo_logins()}
    saved = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for name, role, (width, height), path, show in shots:
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            page.goto(address + reverse("login"))
            page.fill("input[name=username]", logins[role].username)
            page.fill("input[name=password]", logins[role].password)
            page.click("button[type=submit]")
            page.wait_for_load_state()
            response = page.goto(address + path)
            if response is None or response.status != 200:
                raise SystemExit(f"{path} answered {response and response.status}, not 200")
            page.wait_for_load_state("networkidle")
            saved.append(HERE / name)
            if show == "viewport":  # what the expert sees on opening the page
                page.screenshot(path=saved[-1])
            elif show.startswith("open:"):
                fold = page.locator(show.removeprefix("open:"))
                fold.locator("summary").click()
                fold.locator("textarea").fill(CORRECTION)
                fold.scroll_into_view_if_needed()
                page.screenshot(path=saved[-1])
            elif show == "page":  # the manager's pages are long: their first LONGEST_PAGE pixels
                tall = page.evaluate("document.documentElement.scrollHeight")
                clip = {"x": 0, "y": 0, "width": width, "height": min(tall, LONGEST_PAGE)}
                page.screenshot(path=saved[-1], full_page=True, clip=clip)
            else:
                page.locator(show).screenshot(path=saved[-1])
            context.close()
        browser.close()
    return saved


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="evalhub-screenshots-") as data_dir:
        os.environ["EVALHUB_DATA_DIR"] = data_dir
        os.environ["DJANGO_SETTINGS_MODULE"] = "evalhub.settings"
        os.environ.pop("DEBUG", None)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        ids = build()
        serve_and_shoot(ids, Path(data_dir) / "server.log")


def serve_and_shoot(ids: dict[str, int], server_log: Path) -> None:
    from evalhub.services import demo

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with server_log.open("w") as output:
        server = subprocess.Popen(
            demo.demo_server(port),
            cwd=ROOT,
            env=demo.demo_server_environment(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        demo.demo_server_wait(port)
        for path in shoot(f"http://127.0.0.1:{port}", ids):
            size = path.stat().st_size
            print(f"{path.relative_to(ROOT)}  {size // 1024} KB")
            if size > LARGEST_PNG:
                raise SystemExit(f"{path.name} is over {LARGEST_PNG // 1024} KB")
    except Exception:
        print(f"The web server's log ends:\n{server_log.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
