"""manage.py finetune: exit codes and messages for bad input, the JSON summary, signals,
and --resume."""

import json
import os
import signal

import pytest
from django.core.management import CommandError, call_command

from tests.factories import DatasetFactory
from tests.trainer.run_fixtures import colour_dataset
from trainer.engine.model_store import NO_WEIGHTS
from trainer.engine.toy import build_tiny_model
from trainer.management.commands.finetune import (
    CONFIG_OPTIONS,
    DATASET_NOT_FOUND,
    RESUME_CHANGES,
    Command,
)
from trainer.models import FineTuneRun, RunStatus
from trainer.services.run_progress import RunProgress
from trainer.services.runs import DATASET_HAS_ERRORS

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("runs_dir")]
SMALL = ["--rank", "4", "--lr", "0.02", "--batch-size", "2", "--max-steps", "4"]


def finetune(*args):
    call_command("finetune", *args, verbosity=0)


def test_help_shows_every_default_with_a_reason():
    text = Command().create_parser("manage.py", "finetune").format_help()
    for option, _, _ in CONFIG_OPTIONS:
        assert option in text
    normalised = " ".join(text.split())
    for shown in ("(default: 16)", "(default: 2 × rank)", "(default: 0.0002)", "16–64"):
        assert shown in normalised
    assert "--resume RUN_ID" in text and "--json" in text and "--force" in text


def test_an_unknown_dataset_exits_2_naming_the_known_ones():
    DatasetFactory(name="support")
    with pytest.raises(CommandError) as error:
        finetune("--dataset", "nope")
    assert error.value.returncode == 2
    assert str(error.value) == DATASET_NOT_FOUND.format(name="nope", known="support")


@pytest.mark.parametrize("model", ["no-such-model", "empty-dir"])
def test_an_unknown_model_or_a_directory_without_weights_exits_2_leaving_no_run(model, tmp_path):
    dataset = colour_dataset()
    if model == "empty-dir":
        model = str(tmp_path)
    with pytest.raises(CommandError) as error:
        finetune("--dataset", dataset.name, "--base-model", model)
    assert error.value.returncode == 2
    if model == str(tmp_path):
        assert str(error.value) == NO_WEIGHTS.format(path=tmp_path)
    assert not FineTuneRun.objects.exists()


def test_an_invalid_setting_exits_2():
    with pytest.raises(CommandError, match="rank must be at least 1") as error:
        finetune("--dataset", colour_dataset().name, "--rank", "0")
    assert error.value.returncode == 2


def test_gradient_checkpointing_takes_only_its_three_choices():
    with pytest.raises(CommandError, match="invalid choice: 'sometimes'"):
        finetune("--dataset", colour_dataset().name, "--gradient-checkpointing", "sometimes")
    assert not FineTuneRun.objects.exists()


def test_packing_takes_only_its_three_choices():
    with pytest.raises(CommandError, match="invalid choice: 'always'"):
        finetune("--dataset", colour_dataset().name, "--packing", "always")
    assert not FineTuneRun.objects.exists()


def test_a_packed_run_says_so_in_its_plan(model_dir):
    dataset = colour_dataset()
    finetune("--dataset", dataset.name, "--base-model", str(model_dir), *SMALL, "--packing", "on")
    run = FineTuneRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED and run.hyperparameters["packing"] == "on"
    # The CPU has no variable-length attention kernel: SDPA runs example by example.
    assert run.plan["packing"].startswith("on (per-example attention): ")
    assert run.plan["padding_share"] == 0.0


def test_lint_errors_are_refused_with_the_summary_unless_forced(model_dir, capsys):
    report = [{"code": "leakage", "severity": "error", "message": "in test too", "lines": [7]}]
    dataset = colour_dataset(lint_report=report, lint_errors=1)
    with pytest.raises(CommandError) as error:
        finetune("--dataset", dataset.name, "--base-model", str(model_dir))
    assert error.value.returncode == 2
    assert str(error.value) == DATASET_HAS_ERRORS.format(
        name=dataset.name, errors=1, warnings=0, summary="  leakage (lines 7): in test too"
    )
    finetune("--dataset", dataset.name, "--base-model", str(model_dir), "--force", *SMALL)
    assert FineTuneRun.objects.get().status == RunStatus.SUCCEEDED


def test_json_prints_a_final_summary(model_dir, capsys, runs_dir):
    dataset = colour_dataset()
    finetune("--dataset", dataset.name, "--base-model", str(model_dir), "--json", *SMALL)
    summary = json.loads(capsys.readouterr().out)
    run = FineTuneRun.objects.get()
    assert summary["id"] == run.pk and summary["status"] == "succeeded"
    assert summary["step"] == summary["total_steps"] == 4
    assert summary["adapter_path"] == str(runs_dir / f"run-{run.pk}" / "adapter")
    assert summary["adapter_size_bytes"] == run.adapter_size_bytes > 0
    assert summary["hyperparameters"]["rank"] == 4 and summary["dataset"] == dataset.name
    assert summary["plan"]["total_steps"] == 4 and "plan" not in summary["hyperparameters"]
    assert summary["trainable_share"] == pytest.approx(run.trainable_params / run.total_params)


def test_sigterm_interrupts_the_run_keeping_its_checkpoint_and_resume_finishes_it(
    model_dir, monkeypatch, capsys
):
    original = RunProgress.on_step

    def terminate_at_two(self, progress):
        original(self, progress)
        if progress.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(RunProgress, "on_step", terminate_at_two)
    dataset = colour_dataset()
    with pytest.raises(CommandError) as error:
        finetune("--dataset", dataset.name, "--base-model", str(model_dir), *SMALL)
    assert error.value.returncode == 143
    run = FineTuneRun.objects.get()
    assert (run.status, run.step) == (RunStatus.INTERRUPTED, 2)
    assert os.path.isfile(os.path.join(run.checkpoint_path, "state.json"))
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handler restored

    monkeypatch.setattr(RunProgress, "on_step", original)
    with pytest.raises(CommandError) as error:
        finetune("--resume", str(run.pk), "--rank", "8")
    assert error.value.returncode == 2
    assert str(error.value) == RESUME_CHANGES.format(id=run.pk, changes="rank 4 → 8")
    finetune("--resume", str(run.pk), "--rank", "4")
    resumed = FineTuneRun.objects.exclude(pk=run.pk).get()
    assert (resumed.status, resumed.step, resumed.resumed_from_id) == ("succeeded", 4, run.pk)


def test_resume_onto_another_base_model_exits_2(model_dir, tmp_path, monkeypatch):
    original = RunProgress.on_step

    def terminate_at_two(self, progress):
        original(self, progress)
        if progress.step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(RunProgress, "on_step", terminate_at_two)
    dataset = colour_dataset()
    with pytest.raises(CommandError) as error:
        finetune("--dataset", dataset.name, "--base-model", str(model_dir), *SMALL)
    assert error.value.returncode == 130
    run = FineTuneRun.objects.get()
    assert run.status == RunStatus.CANCELLED
    other = build_tiny_model(tmp_path / "other", vocab_size=64)
    with pytest.raises(CommandError, match="another base model") as error:
        finetune("--resume", str(run.pk), "--base-model", str(other))
    assert error.value.returncode == 2
    assert FineTuneRun.objects.count() == 1
