"""manage.py demo, end to end with the heavy steps stood in for at the service boundary.

The real demo fine-tunes SmolLM2-135M for minutes and generates with it: far beyond a unit
test on CPU (benchmarks/results/demo.md has its measured times). Here training, generation and
BERTScore are replaced by fakes that write what the real services write (a succeeded run with
an adapter directory, outputs through the real storing services, ROUGE computed for real), so
what is tested is the demo's own logic: every step runs, a second demo reuses everything, and
a changed schedule makes a new run without touching the old one. The fakes also say what the
real libraries say on the way (a logged warning, a FutureWarning, a progress bar on stderr), so
the tests see where those lines end up.
"""

import logging
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from evalhub.management.commands.demo import LOG_NAMED, start, stop, wait_then_stop
from evalhub.metrics.rouge import rouge_scores
from evalhub.models import (
    Assignment,
    Comparison,
    JudgeRun,
    JudgeVerdict,
    Output,
    Prompt,
    Study,
    StudyStatus,
)
from evalhub.selectors.outputs import evaluation_prompts
from evalhub.services import demo, demo_round
from evalhub.services.demo_expert import answer_figure, house_format
from evalhub.services.outputs import GenerationReport, outputs_store
from evalhub.services.prompts import prompts_create_from_split
from evalhub.services.scores import ScoreReport
from evalhub.services.systems import system_get_or_create
from trainer.engine.checkpoint import ADAPTER_WEIGHTS
from trainer.engine.generate import GeneratedText
from trainer.models import Dataset, DatasetKind, FineTuneRun, RunMetric, RunStatus, TrainMethod
from trainer.selectors.runs import evaluation_dataset

BASE_ANSWER = "Well, it depends on the recipe; roughly a cup or so, give or take."
# What the real libraries print during a demo (measured on a CPU run, December 2026).
LIBRARY_BAR = "Converting and de-quantizing GGUF tensors...: 100%|##########| 272/272"
LIBRARY_WARNING = (
    "Failed to load CPU gemm_4bit_forward from kernels-community: Kernel repository "
    "'kernels-community/quantization-bitsandbytes' could not verify publisher trust status. "
    "Set trust_remote_code=True"
)
LIBRARY_FUTURE = "`is_gradient_checkpointing` is deprecated and will be removed in v6."
TRAINING_BAR = "finetune: 100%|##########| 32/32 [00:49<00:00, loss 0.41]"


class Fakes:
    def __init__(self) -> None:
        self.trained: list[int] = []
        self.generated = 0
        self.scored = 0
        # What the fake adapter answers, from the prompt's reference answer.
        self.adapter_answer = lambda reference: reference
        self.judged = 0


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    made = Fakes()

    def run_execute(*, run, stop=None, show_progress=False):
        made.trained.append(run.pk)
        logging.getLogger("bitsandbytes.backends.cpu.ops").warning(LIBRARY_WARNING)
        warnings.warn(LIBRARY_FUTURE, FutureWarning, stacklevel=1)
        if show_progress:
            print(TRAINING_BAR, file=sys.stderr)
        adapter = tmp_path / f"run-{run.pk}" / "adapter"
        adapter.mkdir(parents=True)
        (adapter / "adapter_config.json").write_text("{}")
        (adapter / ADAPTER_WEIGHTS).write_bytes(b"")
        steps = run.hyperparameters["max_steps"]
        for step in range(1, steps + 1):
            RunMetric.objects.create(run=run, kind="train", step=step, loss=3.0 / step)
        FineTuneRun.objects.filter(pk=run.pk).update(
            status=RunStatus.SUCCEEDED,
            step=steps,
            total_steps=steps,
            adapter_path=str(adapter),
            adapter_size_bytes=1234,
            finished_at=timezone.now(),
        )
        run.refresh_from_db()
        return run

    def outputs_generate(*, run, decoding, split, systems=("base", "adapter"), on_system=None, **_):
        prompts_create_from_split(dataset=evaluation_dataset(run=run), split=split)
        prompts = list(evaluation_prompts(dataset=evaluation_dataset(run=run), split=split))
        for kind in systems:
            system = system_get_or_create(run=run, kind=kind)
            missing = [p for p in prompts if not Output.objects.filter(system=system, prompt=p)]
            texts = [
                (p, BASE_ANSWER if kind == "base" else made.adapter_answer(p.reference))
                for p in missing
            ]
            items = [(p, GeneratedText(text, len(text.split()), 5.0)) for p, text in texts]
            outputs_store(system=system, items=items)
            made.generated += len(items)
            if on_system:
                on_system(GenerationReport(system.name, len(items), len(prompts) - len(items), 0))
        return []

    def outputs_score(*, run, **_):
        outputs = list(Output.objects.filter(system__run=run).select_related("prompt"))
        scores = rouge_scores([o.text for o in outputs], [o.prompt.reference for o in outputs])
        for output, metrics in zip(outputs, scores, strict=True):
            output.metrics, output.metrics_encoder = metrics, "rouge-only"
            output.save(update_fields=["metrics", "metrics_encoder"])
        made.scored += len(outputs)
        return ScoreReport(scored=len(outputs), empty=0, skipped=0, encoder="rouge-only")

    monkeypatch.setattr(demo, "run_execute", run_execute)
    monkeypatch.setattr(demo, "outputs_generate", outputs_generate)
    monkeypatch.setattr(demo_round, "outputs_generate", outputs_generate)

    def judge_run_execute(*, run, progress=None):
        # As the packaged SmolLM2 judges the demo (measured): the answer shown first, always.
        made.judged += 1
        for comparison in run.study.comparisons.filter(is_gold=False):
            for order, first in (("ab", "a"), ("ba", "b")):
                JudgeVerdict.objects.create(
                    judge=run.judge, comparison=comparison, order=order, choice=first, raw="A"
                )
        JudgeRun.objects.filter(pk=run.pk).update(status="succeeded", verdicts_done=72)
        run.refresh_from_db()
        return run

    monkeypatch.setattr(demo_round, "judge_run_execute", judge_run_execute)
    monkeypatch.setattr(demo, "outputs_score", outputs_score)

    def base_model_tokens():
        # The real one converts the packaged GGUF model to load its tokenizer (~30 s).
        print(LIBRARY_BAR, file=sys.stderr)

    monkeypatch.setattr("evalhub.management.commands.demo.base_model_tokens", base_model_tokens)
    return made


def run_demo(*args: str) -> str:
    out = StringIO()
    call_command("demo", "--no-serve", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_the_demo_builds_a_browsable_study_from_nothing(fakes):
    output = run_demo()

    dataset = Dataset.objects.get(kind=DatasetKind.EXAMPLES)
    assert dataset.name == "demo" and dataset.examples.count() == 360
    run = FineTuneRun.objects.get(method=TrainMethod.SFT)
    assert run.status == RunStatus.SUCCEEDED and fakes.trained[0] == run.pk
    assert run.hyperparameters["max_steps"] == demo.DEMO_STEPS
    assert run.hyperparameters == demo.demo_training_config().as_dict()
    test_prompts = Prompt.objects.filter(dataset=dataset, example__split="test").count()
    # base and v1 on the test and the feedback prompts, v2 on the test prompts
    assert test_prompts == 36 and fakes.generated == 2 * 36 + 2 * 36 + 36
    study = Study.objects.get(name=demo.STUDY_NAME)
    assert study.status == StudyStatus.OPEN and study.run == run
    assert study.name == demo.STUDY_NAME and list(study.criteria) == list(demo.STUDY_CRITERIA)
    gold = Comparison.objects.filter(study=study, is_gold=True).count()
    assert gold == 7  # trainer/demo_data/gold.jsonl
    expert = get_user_model().objects.get(username=demo.EXPERT_USERNAME)
    assert Assignment.objects.filter(rater=expert, comparison__study=study).count() == 36 + 7
    manager = get_user_model().objects.get(username=demo.MANAGER_USERNAME)
    assert manager.is_staff and manager.check_password(demo.MANAGER_PASSWORD)
    assert expert.check_password(demo.EXPERT_PASSWORD) and not expert.is_staff
    # The summary shows the change in behaviour and the timings of every phase.
    assert "rougeL" in output and "-- adapter:" in output
    for phase in ("migrate", "dataset import + lint", "fine-tune", "generate", "score", "study"):
        assert f"   {phase}: " in output


@pytest.mark.django_db(transaction=True)
def test_a_demo_rater_who_clicks_through_is_left_out_of_the_verdict_and_shown(fakes, client):
    """The case that prompted the gate: the demo expert got 0 of 7 gold items right at about
    one second an item, and counted fully in the verdict."""
    from evalhub.reports.build import report_build
    from evalhub.reports.render import render_csv, render_html
    from evalhub.services.judgments import judgment_submit

    run_demo()
    study = Study.objects.get(name=demo.STUDY_NAME)
    for a in Assignment.objects.filter(comparison__study=study).select_related("comparison"):
        wrong = {"a": "b", "b": "a"}.get(a.comparison.gold_answer, "a")
        shown = "a" if (wrong == "a") == a.left_is_a else "b"
        judgment_submit(assignment=a, rater=a.rater, choice=shown, time_on_task_ms=1000)

    report = report_build(study, resamples=100, bt_resamples=10)

    quality = report["rater_quality"]
    assert quality["excluded"] == [demo.EXPERT_USERNAME]
    (row,) = quality["raters"]
    assert (row["gold_correct"], row["gold_judged"], row["median_seconds"]) == (0, 7, 1.0)
    assert report["sequential"]["judgments"] == 0 and report["analysis"]["judgments"] == 0
    assert quality["pair"]["all"]["judgments"] == 36
    assert quality["pair"]["counted"]["judgments"] == 0
    assert "0 of 7 gold items right" in render_html(report)
    assert ",False," in render_csv(report)
    client.force_login(get_user_model().objects.get(username=demo.MANAGER_USERNAME))
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert f"<strong>{demo.EXPERT_USERNAME}</strong> is left out of the verdict" in page


@pytest.mark.django_db(transaction=True)
def test_the_demo_simulates_a_second_study_whose_report_fills_every_section(fakes, client):
    """Issue 17's sections (ties, length control, agreement intervals, rater quality and the
    gate, final calls) need several raters and a reviewer: the demo makes them up, says so, and
    leaves the human's study as it was."""
    from evalhub.models import Adjudication, Judgment
    from evalhub.reports.build import report_build
    from evalhub.roles import is_expert, is_reviewer

    started = time.perf_counter()
    output = run_demo()
    seconds = time.perf_counter() - started

    real = Study.objects.get(name=demo.STUDY_NAME)
    assert not Judgment.objects.filter(assignment__comparison__study=real).exists()
    study = Study.objects.get(name=demo.SIMULATED_STUDY_NAME)
    assert study.run == real.run and study.status == StudyStatus.OPEN
    assert study.guidelines.splitlines()[0] == demo.SIMULATED_NOTICE
    raters = sorted(study.raters.values_list("username", flat=True))
    assert raters == [f"sim-rater-{n}" for n in range(1, 6)]
    users = get_user_model().objects.filter(username__startswith="sim-")
    assert not any(u.has_usable_password() for u in users)
    assert all(is_expert(u) for u in users.exclude(username=demo.SIMULATED_REVIEWER))
    judgments = Judgment.objects.filter(assignment__comparison__study=study)
    assert judgments.count() == 36 * demo.SIMULATED_OVERLAP + 7 * 5
    assert all(j.time_on_task_ms for j in judgments)
    calls = Adjudication.objects.filter(comparison__study=study)
    assert calls.count() == demo.SIMULATED_FINAL_CALLS
    assert {c.reviewer.username for c in calls} == {demo.SIMULATED_REVIEWER}
    assert is_reviewer(calls[0].reviewer)
    assert (
        f"Simulated a second study: 5 raters, {judgments.count()} judgments, "
        f"{demo.SIMULATED_FINAL_CALLS} final calls by 1 reviewer" in output
    )
    assert seconds < 60  # the whole faked demo; the simulation itself is timed in the README

    report = report_build(study, resamples=100, bt_resamples=10, model_resamples=50)

    analysis = report["analysis"]
    (ties,) = analysis["ties"]["pairs"]
    assert 0 < ties["p_no_preference"] < 1 and ties["both_bad"] > 0
    (length,) = analysis["length_controlled"]
    assert 0 < length["estimate"]["lc_win_rate"] < 1 and length["estimate"]["length_ratio"] > 1
    intervals = analysis["agreement_intervals"]
    assert intervals["krippendorff_alpha"]["low"] < intervals["krippendorff_alpha"]["high"]
    assert all("low" in pair for pair in intervals["pairs"])
    assert analysis["drift"]["change"] is not None and len(analysis["drift"]["raters"]) == 4
    quality = report["rater_quality"]
    assert quality["excluded"] == ["sim-rater-5"] and len(quality["raters"]) == 5
    assert "sim-rater-5" in quality["far_below"]
    assert report["adjudication"]["adjudicated"] == demo.SIMULATED_FINAL_CALLS
    assert report["adjudication"]["pairs"][0]["win_rate_adjudicated"] is not None
    client.force_login(get_user_model().objects.get(username=demo.MANAGER_USERNAME))
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert "Simulated raters: the demo made up" in page

    counts = [Study, Comparison, Assignment, Judgment, Adjudication, get_user_model()]
    before = {model: model.objects.count() for model in counts}
    again = run_demo()
    assert {model: model.objects.count() for model in counts} == before
    assert f"{demo.SIMULATED_STUDY_NAME!r} reused" in again


@pytest.mark.django_db(transaction=True)
def test_running_the_demo_again_reuses_everything(fakes):
    run_demo()
    counts = [Dataset, FineTuneRun, Output, Prompt, Study, Comparison, Assignment]
    before = {model: model.objects.count() for model in counts}
    get_user_model().objects.filter(username=demo.EXPERT_USERNAME).update(password="changed")

    output = run_demo()

    assert {model: model.objects.count() for model in counts} == before
    assert len(fakes.trained) == 2 and fakes.scored == 2 * 36  # the first demo only
    assert "dataset 'demo' reused" in output and "reusing run" in output
    assert "every output already scored" in output and f"{demo.STUDY_NAME!r} reused" in output
    expert = get_user_model().objects.get(username=demo.EXPERT_USERNAME)
    assert expert.check_password(demo.EXPERT_PASSWORD)  # the printed login works again


@pytest.mark.django_db(transaction=True)
def test_another_schedule_is_a_new_run_with_its_own_study(fakes):
    run_demo()
    run_demo("--steps", "5")
    first, second = FineTuneRun.objects.filter(method=TrainMethod.SFT).order_by("pk")
    assert second.hyperparameters["max_steps"] == 5 and len(fakes.trained) == 4
    assert first.dataset_id == second.dataset_id
    names = sorted(Study.objects.filter(run__in=[first, second]).values_list("run_id", "name"))
    simulated = demo.SIMULATED_STUDY_NAME
    assert names == [
        (first.pk, demo_round.FEEDBACK_STUDY_NAME),
        (first.pk, simulated),
        (first.pk, demo.STUDY_NAME),
        (second.pk, f"{demo_round.FEEDBACK_STUDY_NAME} 2"),
        (second.pk, f"{simulated} 2"),
        (second.pk, f"{demo.STUDY_NAME} 2"),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_demo_dataset_name_taken_by_other_data_is_left_alone(fakes):
    other = Dataset.objects.create(name="demo", format="messages", content_hash="0" * 64)
    run_demo()
    imported = Dataset.objects.exclude(pk=other.pk).get(kind=DatasetKind.EXAMPLES)
    assert imported.name.startswith("demo-") and other.examples.count() == 0


@pytest.mark.django_db
def test_bad_steps_are_refused():
    with pytest.raises(CommandError) as raised:
        call_command("demo", "--no-serve", "--steps", "0")
    assert raised.value.returncode == 2


@pytest.mark.django_db
def test_a_busy_port_is_refused_before_anything_runs():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(CommandError, match=f"port {port} on 127.0.0.1 is in use") as raised:
            call_command("demo", "--port", str(port))
    assert raised.value.returncode == 2 and not Dataset.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_terminal_shows_the_demos_lines_and_the_log_gets_the_libraries(fakes, capfd):
    output = run_demo()

    terminal = capfd.readouterr()
    shown = output + terminal.out + terminal.err
    log = Path(settings.DATA_DIR) / "demo.log"
    assert LOG_NAMED.format(path=log) in output
    assert "   fine-tune: " in output and TRAINING_BAR in terminal.err
    written = log.read_text()
    for line in (LIBRARY_BAR, LIBRARY_WARNING, f"FutureWarning: {LIBRARY_FUTURE}"):
        assert line not in shown and line in written
    assert "kernels-community" not in shown and "FutureWarning" not in shown
    assert TRAINING_BAR not in written


@pytest.mark.django_db(transaction=True)
def test_a_library_error_is_shown_on_the_terminal_with_the_log(fakes, capfd, monkeypatch):
    train = demo.run_execute

    def failing_loudly(**kwargs):
        logging.getLogger("bitsandbytes").error("CUDA driver gone")
        return train(**kwargs)

    monkeypatch.setattr(demo, "run_execute", failing_loudly)
    run_demo()

    log = Path(settings.DATA_DIR) / "demo.log"
    shown = capfd.readouterr().err
    assert "ERROR bitsandbytes: CUDA driver gone" in shown and str(log) in shown
    assert "CUDA driver gone" in log.read_text()


@pytest.mark.django_db(transaction=True)
def test_a_server_that_stops_at_once_is_a_failure_naming_the_log(fakes, monkeypatch):
    monkeypatch.setattr(demo, "demo_server", lambda port: [sys.executable, "-c", "exit(3)"])
    with pytest.raises(CommandError) as raised:
        call_command("demo", "--port", str(free_port()), stdout=StringIO())
    log = Path(settings.DATA_DIR) / "demo.log"
    assert raised.value.returncode == 1
    assert str(raised.value).startswith("the web server stopped at once (exit 3)")
    assert str(log) in str(raised.value)


def test_a_worker_that_stops_while_serving_is_a_failure_and_stops_the_server():
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    worker = subprocess.Popen([sys.executable, "-c", "exit(4)"])
    with pytest.raises(demo.DemoError, match=r"^the worker stopped \(exit 4\)$"):
        wait_then_stop({"web server": server, "worker": worker})
    assert server.returncode is not None


def test_the_demo_server_serves_the_sites_error_pages_and_logs_to_the_file(
    tmp_path, monkeypatch, capfd
):
    # The real settings module, as `manage.py demo` runs it; the data dir is the tests' own.
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "evalhub.settings")
    port, log = free_port(), tmp_path / "demo.log"
    server = start("web server", demo.demo_server(port), log)
    try:
        demo.demo_server_wait(port)
        css = fetch(f"http://127.0.0.1:{port}/static/css/evalhub.css")
        missing = fetch(f"http://127.0.0.1:{port}/no-such-page/")
        # The server writes a request's log line once the answer is sent, maybe a moment later.
        deadline = time.monotonic() + 10
        while "GET /no-such-page/" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop({"web server": server})

    assert css.status == 200
    assert missing.status == 404
    assert "<h1>Not found</h1>" in missing.body and "css/evalhub.css" in missing.body
    assert "URLconf" not in missing.body and "admin/" not in missing.body
    written, shown = log.read_text(), "".join(capfd.readouterr())
    assert "Starting development server" in written and "Starting development" not in shown
    assert '"GET /no-such-page/ HTTP/1.1" 404' in written and "GET /" not in shown


def test_a_server_error_gets_the_sites_styled_page(rf):
    from django.views.defaults import server_error

    response = server_error(rf.get("/"))

    page = response.content.decode()
    assert response.status_code == 500
    assert "<h1>Something went wrong</h1>" in page and "css/evalhub.css" in page


class Fetched:
    def __init__(self, status: int, body: str) -> None:
        self.status, self.body = status, body


def fetch(address: str) -> Fetched:
    try:
        with urllib.request.urlopen(address, timeout=10) as response:
            return Fetched(response.status, response.read().decode())
    except urllib.error.HTTPError as error:
        return Fetched(error.code, error.read().decode())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_demo_files_are_where_the_demo_reads_them():
    assert Path(demo.DATASET_FILE).is_file() and Path(demo.GOLD_FILE).is_file()


@pytest.mark.django_db(transaction=True)
def test_the_demo_closes_the_loop_with_a_labelled_simulated_expert(fakes):
    """Feedback study rated by the rule, a preference set from it, DPO from v1, and base vs v1
    vs v2 on the test prompts; the terminal says what changed."""
    from evalhub.models import Judgment, PreferenceSet

    output = run_demo()

    v1 = FineTuneRun.objects.get(method=TrainMethod.SFT)
    v2 = FineTuneRun.objects.get(method=TrainMethod.DPO)
    assert v2.from_run == v1 and v2.status == RunStatus.SUCCEEDED
    assert fakes.trained == [v1.pk, v2.pk]
    assert v2.hyperparameters == demo_round.demo_dpo_config().as_dict()
    feedback = Study.objects.get(name=demo_round.FEEDBACK_STUDY_NAME)
    assert feedback.guidelines.startswith(demo_round.NOTICE)
    splits = set(feedback.comparisons.values_list("prompt__example__split", flat=True))
    assert splits == {"feedback"}
    # The fake adapter answers with the reference, the fake base in prose: v1 wins every
    # feedback comparison with the right figure, so no correction was needed.
    judgments = Judgment.objects.filter(assignment__comparison__study=feedback)
    assert judgments.count() == 36 and not judgments.exclude(correction="").exists()
    built = PreferenceSet.objects.get(study=feedback)
    assert v2.dataset == built.dataset and built.pair_count == 36 and built.sft_count == 0
    round_study = Study.objects.get(name=demo_round.ROUND_STUDY_NAME)
    assert round_study.run == v2 and round_study.systems.count() == 3
    assert round_study.comparisons.count() == 3 * 36
    assert Judgment.objects.filter(assignment__comparison__study=round_study).count() == 3 * 36
    assert "Second round" in output
    labels = {"base": "base", v1.pk: "v1", v2.pk: "v2"}
    for system in round_study.systems.all():
        right = 0 if system.kind == "base" else 36
        label = labels["base" if system.kind == "base" else system.run_id]
        assert f"{label:<3} {system.name:<28} {right} of 36" in output
    # The round is summed up before the closing lines.
    assert output.index("Second round") < output.index("Done: run")
    # v1 and v2 give the same (reference) answers: every judgment between them is a tie.
    assert "v2 against v1: win rate 50% [" in output and "over 36 judgments" in output


@pytest.mark.django_db(transaction=True)
def test_the_demo_judges_the_simulated_study_once_and_the_report_calibrates_it(fakes):
    from evalhub.reports.build import report_build

    run_demo()
    run_demo()

    assert fakes.judged == 1
    simulated = Study.objects.get(name=demo.SIMULATED_STUDY_NAME)
    (judge,) = report_build(simulated, resamples=50, bt_resamples=10)["judges"]
    assert judge["flip_rate"] == 1.0
    assert judge["stand_in"]["may_stand_in"] is False


@pytest.mark.django_db(transaction=True)
def test_the_simulated_expert_corrects_wrong_figures_and_the_set_pairs_them(fakes):
    """With an adapter whose figures are off, the rule still prefers its house format, writes
    the reference as its correction, and the set chooses the correction over both answers."""
    from evalhub.models import PreferenceSet

    def off_by_one(reference: str) -> str:
        first, rest = reference.split("\n", 1)
        figure, unit = answer_figure(first)
        return f"Answer: {figure + 1:g} {unit}\n{rest}"

    fakes.adapter_answer = off_by_one
    run_demo()

    built = PreferenceSet.objects.get(study__name=demo_round.FEEDBACK_STUDY_NAME)
    # One pair per comparison (v1's house format over base's prose) and the correction over
    # each of the two answers shown.
    assert (built.pair_count, built.sft_count) == (36 + 2 * 36, 36)
    rows = built.dataset.examples.exclude(rejected="").values_list("messages", "rejected")
    over_v1 = [(m[-1]["content"], rejected) for m, rejected in rows if rejected != BASE_ANSWER]
    # The correction (the reference) over v1's answer: the same house format, the figure fixed.
    assert len(over_v1) == 36
    for chosen, rejected in over_v1:
        assert house_format(chosen) and house_format(rejected)
        assert answer_figure(chosen)[0] + 1 == pytest.approx(answer_figure(rejected)[0])


@pytest.mark.django_db(transaction=True)
def test_a_served_demo_leaves_the_judge_to_the_worker(fakes, settings):
    """Served, the judge's run is queued as the study page's button queues it, for the demo's
    worker; queued twice, it is one run."""
    from evalhub.models import JudgeRun

    settings.TASKS = {
        "default": {
            "BACKEND": "django_tasks.backends.dummy.DummyBackend",
            "QUEUES": ["default", "gpu"],
        }
    }
    run_demo()  # --no-serve: judged here (the fake)
    simulated = Study.objects.get(name=demo.SIMULATED_STUDY_NAME)
    JudgeVerdict.objects.all().delete()

    queued = demo_round.demo_judge(study=simulated, queue=True)

    assert queued.status == "queued" and fakes.judged == 1
    assert demo_round.demo_judge(study=simulated, queue=True) == queued
    assert JudgeRun.objects.filter(study=simulated, status="queued").count() == 1
