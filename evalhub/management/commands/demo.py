"""manage.py demo: the whole walk on a laptop with no GPU and no network, then a browsable study.

    python manage.py demo                 # ~10 minutes on 2 CPU cores the first time
    python manage.py demo --no-serve      # everything but the web server and the worker
    python manage.py demo --steps 10      # a shorter (and less convincing) training run

Migrates, creates a demo manager and a demo expert, imports and lints the demo dataset,
fine-tunes SmolLM2-135M with QLoRA on CPU, generates and scores base and adapter outputs on the
held-out split, opens a study with gold items and a second one rated by simulated raters (so
the analysis has numbers to show), then serves the site on 127.0.0.1 with a worker beside it.
Run it again and it reuses all of that. Exit codes: 0 done (or stopped with Ctrl-C while
serving), 1 a step failed or the server or worker stopped, 2 bad options.

The terminal shows the demo's own lines and the training progress bar. Everything else (Python
warnings, library loggers, whatever libraries write to stderr, the web server's banner and
request log, the worker's output) goes to demo.log in the data directory (var/ by default), whose
path is printed once; a logged error is also shown on the terminal, and a failure names the log.
"""

from __future__ import annotations

import ctypes
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from pathlib import Path
from typing import Any, TextIO

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalhub.services import demo, demo_round

PORT_BUSY = "port {port} on 127.0.0.1 is in use; pass --port with a free one"
BAD_STEPS = "--{option} must be at least 1, got {steps}"
LOG_NAMED = "Library messages and the web server's request log: {path}"
SEE_LOG = "{message}\n(library messages and the web server's log: {path})"
SERVER_DIED = "the {what} stopped at once (exit {code})"
SERVER_STOPPED = "the {what} stopped (exit {code})"
# Read by huggingface_hub and transformers when they are imported.
NO_LIBRARY_BARS = "HF_HUB_DISABLE_PROGRESS_BARS"
STEP_FAILED, BAD_OPTIONS = 1, 2
PR_SET_PDEATHSIG = 1  # prctl option, from <linux/prctl.h>


class Phases:
    """Wall-clock and CPU seconds per step, printed as they finish and summed at the end."""

    def __init__(self, write: Any) -> None:
        self.write = write
        self.rows: list[tuple[str, float, float]] = []

    @staticmethod
    def cpu() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.write(f"== {name}")
        wall, cpu = time.perf_counter(), self.cpu()
        yield
        row = (name, time.perf_counter() - wall, self.cpu() - cpu)
        self.rows.append(row)
        self.write(f"   {name}: {row[1]:.0f} s ({row[2]:.0f} CPU s)")

    def table(self) -> str:
        lines = [f"  {name:<22} {wall:7.0f} s {cpu:8.0f} CPU s" for name, wall, cpu in self.rows]
        wall = sum(r[1] for r in self.rows)
        cpu = sum(r[2] for r in self.rows)
        lines.append(f"  {'total':<22} {wall:7.0f} s {cpu:8.0f} CPU s")
        return "\n".join(lines)


class Command(BaseCommand):
    help = (
        "Run the whole demo: dataset, QLoRA fine-tuning of SmolLM2-135M on CPU, base vs "
        "adapter outputs and metrics, an expert study; then serve it. Re-running reuses it all."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="web server port (8000)")
        parser.add_argument(
            "--no-serve", action="store_true", help="stop after the study: no server, no worker"
        )
        parser.add_argument(
            "--steps",
            type=int,
            default=demo.DEMO_STEPS,
            help=f"optimizer steps of the demo run (default {demo.DEMO_STEPS}; fewer is "
            "faster and shows less)",
        )

        parser.add_argument(
            "--dpo-steps",
            type=int,
            default=demo_round.DPO_STEPS,
            help=f"optimizer steps of the second round's DPO run (default {demo_round.DPO_STEPS})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        for option in ("steps", "dpo_steps"):
            if options[option] < 1:
                raise CommandError(
                    BAD_STEPS.format(option=option.replace("_", "-"), steps=options[option]),
                    returncode=BAD_OPTIONS,
                )
        port = options["port"] if not options["no_serve"] else None
        if port is not None and not port_free(port):
            raise CommandError(PORT_BUSY.format(port=port), returncode=BAD_OPTIONS)
        log = demo.demo_log_start()
        self.stdout.write(LOG_NAMED.format(path=log))
        terminal = sys.stderr
        phases = Phases(self.stdout.write)
        processes: dict[str, subprocess.Popen] = {}
        try:
            with library_messages_to(log, terminal=terminal):
                users, dataset = self.prepare(phases)
                if port is not None:
                    # Up before training, so the run page shows the loss curves as they come.
                    processes["web server"] = start("web server", demo.demo_server(port), log)
                    demo.demo_server_wait(port)
                    self.stdout.write(f"   the site is up at {url(port)}/")
                run, study, simulated = self.evaluate(
                    phases, users, dataset, options["steps"], port, terminal, options["verbosity"]
                )
                second = self.second_round(
                    phases,
                    users,
                    run,
                    simulated,
                    options["dpo_steps"],
                    terminal,
                    options["verbosity"],
                    serving=port is not None,
                )
                self.summary(phases, run, study, simulated, second, port)
                if port is not None:
                    processes["worker"] = start("worker", demo.demo_worker(), log)
                    wait_then_stop(processes)
        except demo.DemoError as error:
            stop(processes)
            message = SEE_LOG.format(message=error, path=log)
            raise CommandError(message, returncode=STEP_FAILED) from error
        except BaseException:
            stop(processes)
            raise

    def prepare(self, phases: Phases) -> tuple[dict[str, Any], Any]:
        with phases("migrate"):
            call_command("migrate", verbosity=0)
        with phases("accounts"):
            users = demo.demo_accounts()
        with phases("base model"):
            count_tokens = base_model_tokens()
        with phases("dataset import + lint"):
            dataset, imported = demo.demo_dataset(
                created_by=users["manager"], count_tokens=count_tokens
            )
            self.stdout.write(
                f"   dataset {dataset.name!r} {'imported' if imported else 'reused'}: "
                f"{dataset.examples.count()} examples, {dataset.lint_errors} lint errors, "
                f"{dataset.lint_warnings} warnings"
            )
        return users, dataset

    def evaluate(
        self,
        phases: Phases,
        users: dict[str, Any],
        dataset: Any,
        steps: int,
        port: int | None,
        terminal: TextIO,
        verbosity: int,
    ) -> tuple[Any, Any, Any]:
        write = self.stdout.write
        config = demo.demo_training_config(steps)
        with phases("fine-tune"):
            run = demo.demo_run_find(dataset=dataset, config=config)
            if run is not None and run.status == "succeeded":
                write(f"   reusing run {run.pk} ({run.name}), succeeded")
            else:
                run = demo.demo_run_create(
                    dataset=dataset, config=config, created_by=users["manager"]
                )
                write(f"   training run {run.pk}: {config.max_steps} steps")
                if port is not None:
                    write(f"   watch it at {url(port)}/runs/{run.pk}/")
                # The training's progress bar is the demo's own: it goes to the terminal.
                with redirect_stderr(terminal):
                    run = demo.demo_train(run=run, show_progress=verbosity > 0)
        with phases("generate"):
            demo.demo_generate(run=run, log=write)
        with phases("score"):
            scored = demo.demo_score(run=run)
            write(f"   {scored} outputs scored" if scored else "   every output already scored")
        with phases("study"):
            study, created = demo.demo_study(
                run=run, expert=users["expert"], manager=users["manager"]
            )
            write(f"   study {study.pk} {study.name!r} {'created' if created else 'reused'}")
        with phases("simulated study"):
            simulated = demo.demo_simulated_study(run=run, manager=users["manager"])
            write(
                f"   study {simulated.study.pk} {simulated.study.name!r} "
                f"{'created' if simulated.created else 'reused'}"
            )
        return run, study, simulated

    def second_round(
        self,
        phases: Phases,
        users: dict[str, Any],
        v1: Any,
        simulated: Any,
        steps: int,
        terminal: TextIO,
        verbosity: int,
        *,
        serving: bool,
    ) -> demo_round.RoundResult:
        """A model judge beside the simulated raters; then expert feedback on v1 trains v2 by
        DPO, and base, v1 and v2 are judged again."""
        write, manager = self.stdout.write, users["manager"]
        with phases("model judge"):
            # Served, the worker judges while the site is up (about a minute); otherwise here.
            judged = demo_round.demo_judge(study=simulated.study, queue=serving)
            pk = simulated.study.pk
            if judged is None:
                write("   every verdict of the model judge already stored")
            elif serving:
                write(
                    f"   {judged.judge} queued to judge study {pk} in both orders: the worker "
                    "answers it once the site is up, and the study's analysis shows how far it "
                    "agrees with the raters"
                )
            else:
                write(
                    f"   {judged.judge} judged study {pk} in both orders: "
                    f"{judged.verdicts_done} verdicts ({judged.status})"
                )
        with phases("feedback study"):
            feedback = demo_round.demo_feedback_study(run=v1, manager=manager, log=write)
            write(f"   study {feedback.pk} {feedback.name!r}: rated by the simulated expert")
        with phases("preference set"):
            built = demo_round.demo_preference_set(study=feedback, manager=manager)
            write(
                f"   {built} ({built.dataset.name}): {built.pair_count} pairs, "
                f"{built.sft_count} corrections"
            )
        config = demo_round.demo_dpo_config(steps)
        with phases("DPO from v1"):
            v2 = demo_round.demo_dpo_find(v1=v1, preference_set=built, config=config)
            if v2 is not None and v2.status == "succeeded":
                write(f"   reusing run {v2.pk} ({v2.name}), succeeded")
            else:
                v2 = demo_round.demo_dpo_create(
                    v1=v1, preference_set=built, config=config, manager=manager
                )
                write(f"   training run {v2.pk}: DPO, {config.max_steps} steps from run {v1.pk}")
                with redirect_stderr(terminal):
                    v2 = demo.demo_train(run=v2, show_progress=verbosity > 0)
        with phases("round study"):
            study = demo_round.demo_round_study(v2=v2, manager=manager, log=write)
            write(f"   study {study.pk} {study.name!r}: base, v1 and v2 on the test prompts")
        return demo_round.round_result(
            feedback_study=feedback, preference_set=built, v2=v2, round_study=study
        )

    def round_summary(self, result: demo_round.RoundResult, port: int | None) -> None:
        write = self.stdout.write
        write("\nSecond round (judgments by the simulated expert, a rule: see the study's notice):")
        write("  test answers with the right figure:")
        for label, accuracy in zip(("base", "v1", "v2"), result.accuracy, strict=True):
            write(f"    {label:<3} {accuracy.system:<28} {accuracy.right} of {accuracy.total}")
        if result.v2_win_rate is not None and result.v2_interval is not None:
            write(
                f"  v2 against v1: win rate {result.v2_win_rate:.0%} "
                f"[{result.v2_interval.low:.0%}, {result.v2_interval.high:.0%}] over "
                f"{result.v2_judgments} judgments (ties count half)"
            )
        where = url(port) if port is not None else ""
        write(f"  lineage: {where}/datasets/{demo_round.lineage_dataset(result)}/lineage/")

    def summary(
        self,
        phases: Phases,
        run: Any,
        study: Any,
        simulated: Any,
        second: demo_round.RoundResult,
        port: int | None,
    ) -> None:
        from evalhub.selectors.outputs import outputs_summary

        write = self.stdout.write
        write("\nTimings (wall, CPU):\n" + phases.table())
        difference = outputs_summary(run=run, n_resamples=1000)["difference"]
        if difference:
            write("\nAdapter − base on the held-out prompts (95% bootstrap intervals):")
            for metric in ("rougeL", "bertscore_f1"):
                value = difference["metrics"].get(metric)
                if value:
                    write(
                        f"  {metric:<13} {value['mean']:+.3f} "
                        f"[{value['low']:+.3f}, {value['high']:+.3f}]"
                    )
        for question, base, adapter in demo.adapter_examples(run=run, count=1):
            write(f"\nQ: {question}\n-- base:\n{base}\n-- adapter:\n{adapter}")
        pk = simulated.study.pk
        where = f"{url(port)}/studies/{pk}/" if port is not None else f"study {pk}"
        write(
            f"\nSimulated a second study: {simulated.raters} raters, {simulated.judgments} "
            f"judgments, {simulated.final_calls} final calls by 1 reviewer, all made up to show "
            f"the analysis — see {where}"
        )
        self.round_summary(second, port)
        if port is None:
            write(f"\nDone: run {run.pk}, study {study.pk}. Serve with `manage.py runserver`.")
            return
        write(f"\nevalhub is at {url(port)}/  (Ctrl-C stops the server and the worker)")
        write(f"  run:      {url(port)}/runs/{run.pk}/")
        write(f"  study:    {url(port)}/studies/{study.pk}/")
        write(f"  rate:     {url(port)}/rate/")
        for login in demo.demo_logins():
            write(f"  login {login.username} / {login.password}  ({login.role})")


@contextmanager
def library_messages_to(log: Path, *, terminal: TextIO) -> Iterator[None]:
    """While the demo runs, Python warnings, every logger's records and whatever is written to
    sys.stderr (libraries' notices and progress bars) go to the log; records of ERROR and above
    are shown on the terminal too, with the log's path, so a failure is never hidden there."""
    root = logging.getLogger()
    kept_handlers, kept_bars = root.handlers[:], os.environ.get(NO_LIBRARY_BARS)
    with log.open("a", encoding="utf-8", buffering=1) as stream:
        to_log = logging.StreamHandler(stream)
        to_log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        to_terminal = logging.StreamHandler(terminal)
        to_terminal.setLevel(logging.ERROR)
        shown = SEE_LOG.format(
            message="%(levelname)s %(name)s: %(message)s", path=str(log).replace("%", "%%")
        )
        to_terminal.setFormatter(logging.Formatter(shown))
        root.handlers = [to_log, to_terminal]
        logging.captureWarnings(True)
        # Libraries' own bars would show on the terminal while the training's bar is there.
        os.environ[NO_LIBRARY_BARS] = "1"
        try:
            with redirect_stderr(stream):
                yield
        finally:
            logging.captureWarnings(False)
            root.handlers = kept_handlers
            if kept_bars is None:
                del os.environ[NO_LIBRARY_BARS]
            else:
                os.environ[NO_LIBRARY_BARS] = kept_bars


def start(what: str, command: list[str], log: Path) -> subprocess.Popen:
    """Start the web server or the worker with its output appended to the log."""
    with log.open("a", encoding="utf-8") as output:
        process = subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            env=demo.demo_server_environment(),
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    time.sleep(2)
    if process.poll() is not None:
        raise demo.DemoError(SERVER_DIED.format(what=what, code=process.returncode))
    return process


def wait_then_stop(processes: dict[str, subprocess.Popen]) -> None:
    """Until Ctrl-C or SIGTERM, or until one of them stops; then stop them all. One that
    stopped by itself is a failure."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    stopped = None
    try:
        while stopped is None:
            time.sleep(1)
            stopped = next((what for what, p in processes.items() if p.poll() is not None), None)
    except KeyboardInterrupt:
        return
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop(processes)
    raise demo.DemoError(SERVER_STOPPED.format(what=stopped, code=processes[stopped].returncode))


def die_with_parent() -> None:
    """In the child, before it starts: on Linux, get SIGTERM when the demo process dies,
    however it dies, so no server or worker outlives it. Elsewhere nothing is done."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop(processes: dict[str, subprocess.Popen]) -> None:
    """SIGTERM (the worker finishes a training step and keeps a checkpoint), then SIGKILL."""
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def base_model_tokens() -> Any:
    """Convert the packaged base model once (the training needs it anyway) and count tokens
    with its tokenizer, so the linter measures examples as the model will see them.

    The demo's first use of transformers, so also where its records are sent the way of every
    library's: transformers prints through a stderr handler of its own by default."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as transformers_logging

    from trainer.engine.model_store import DEFAULT_BASE_MODEL, resolve_model_dir

    transformers_logging.disable_default_handler()
    transformers_logging.enable_propagation()
    tokenizer = AutoTokenizer.from_pretrained(
        resolve_model_dir(DEFAULT_BASE_MODEL, settings.EVALHUB_MODEL_CACHE)
    )

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    return count
