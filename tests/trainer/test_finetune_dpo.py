"""manage.py finetune --method dpo --preferences X --from-run N: a DPO round on a preference
set from an SFT run, the preference set's name resolved to its latest version, and what is
refused (exit 2, no run stored)."""

import json
import math
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.factories import DatasetFactory, ExampleFactory
from tests.trainer.run_fixtures import WRONG, colour_dataset
from trainer.engine.checkpoint import ADAPTER_WEIGHTS
from trainer.engine.config import DPO_DEFAULTS
from trainer.engine.toy import COLOURS, colour_conversation
from trainer.management.commands.finetune import (
    NO_VALIDATION_PAIRS,
    PREFERENCES_NOT_FOUND,
    RUN_NOT_FOUND,
    Command,
)
from trainer.models import DatasetKind, FineTuneRun, MetricKind, RunStatus, Split
from trainer.services.runs import (
    DPO_NEEDS_FROM_RUN,
    FROM_RUN_NO_ADAPTER,
    FROM_RUN_NOT_SUCCEEDED,
    FROM_RUN_OTHER_BASE,
    NO_PAIRS,
    NOT_PREFERENCES,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("runs_dir")]
SMALL = ["--rank", "4", "--batch-size", "5", "--dropout", "0"]


def finetune(*args):
    call_command("finetune", *args, verbosity=0)


def preference_set(name, *, validation=True, pairs=True):
    """Pairs (right colour over wrong) in train and validation, and one correction row."""
    dataset = DatasetFactory(name=name, kind=DatasetKind.PREFERENCES)
    rows = [(t, Split.TRAIN) for t in COLOURS] + [(t, Split.VALIDATION) for t in COLOURS][:2]
    rows = [row for row in rows if validation or row[1] == Split.TRAIN]
    for index, (thing, split) in enumerate(rows):
        rejected = WRONG[thing] if pairs else ""
        ExampleFactory(
            dataset=dataset,
            index=index,
            messages=colour_conversation(thing),
            split=split,
            rejected=rejected,
        )
    ExampleFactory(dataset=dataset, index=len(rows), messages=colour_conversation("sun"))
    return dataset


@pytest.fixture
def sft_run(model_dir):
    finetune("--dataset", colour_dataset().name, "--base-model", str(model_dir), *SMALL,
             "--max-steps", "2", "--lr", "0.05")  # fmt: skip
    run = FineTuneRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED
    return run


def stored_run(model_dir, tmp_path, **fields):
    """A finished run row with a (fake) adapter file on disk, unless told otherwise."""
    adapter = tmp_path / "adapter"
    adapter.mkdir(exist_ok=True)
    (adapter / ADAPTER_WEIGHTS).write_bytes(b"")
    from trainer.services.runs import base_model_for

    values = {
        "name": "v1",
        "dataset": colour_dataset(),
        "base_model": base_model_for(str(model_dir)),
        "status": RunStatus.SUCCEEDED,
        "adapter_path": str(adapter),
        "hyperparameters": {"rank": 4, "alpha": 8, "target_modules": "all-linear"},
        **fields,
    }
    return FineTuneRun.objects.create(**values)


def test_help_gives_dpo_its_own_defaults_and_their_reasons():
    text = " ".join(Command().create_parser("manage.py", "finetune").format_help().split())
    assert f"with --method dpo: {DPO_DEFAULTS['learning_rate']}" in text and "Rafailov" in text
    assert "--preferences NAME" in text and "--from-run RUN_ID" in text


def test_a_dpo_round_starts_from_the_sft_adapter_and_records_reward_curves(
    sft_run, model_dir, capsys
):
    preference_set("kitchen-v1")
    preference_set("kitchen-v2")
    finetune("--method", "dpo", "--preferences", "kitchen", "--from-run", str(sft_run.pk),
             "--lr", "0.05", "--epochs", "2", "--eval-every", "1", "--dropout", "0",
             "--json")  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    run = FineTuneRun.objects.get(pk=summary["id"])
    assert run.status == RunStatus.SUCCEEDED and run.method == "dpo"
    assert run.from_run == sft_run and run.dataset.name == "kitchen-v2"
    assert run.base_model == sft_run.base_model
    # the adapter keeps the SFT run's shape; the other settings are DPO's defaults or given
    assert run.hyperparameters["rank"] == 4 and run.hyperparameters["beta"] == 0.1
    assert run.hyperparameters["epochs"] == 2 and run.hyperparameters["method"] == "dpo"
    assert run.plan["train_examples"] == 5 and run.plan["validation_examples"] == 2
    first = run.metrics.get(kind=MetricKind.TRAIN, step=1)
    assert first.loss == pytest.approx(math.log(2), abs=1e-4)
    validation = list(run.metrics.filter(kind=MetricKind.VALIDATION))
    assert len(validation) == 2
    assert all(0 <= p.reward_accuracy <= 1 and p.reward_margin is not None for p in validation)
    assert Path(run.adapter_path, ADAPTER_WEIGHTS).is_file()
    assert summary["method"] == "dpo" and summary["from_run"] == sft_run.pk


def test_sft_on_a_preference_set_trains_on_every_chosen_answer(sft_run, capsys):
    dataset = preference_set("fixes-v1")
    finetune("--preferences", dataset.name, "--from-run", str(sft_run.pk), "--max-steps", "1",
             "--json")  # fmt: skip
    run = FineTuneRun.objects.get(pk=json.loads(capsys.readouterr().out)["id"])
    assert run.status == RunStatus.SUCCEEDED and run.method == "sft"
    assert run.from_run == sft_run
    # five train pairs plus the correction row: every train row's chosen conversation
    assert run.plan["train_examples"] == 6


def test_a_preference_set_without_validation_pairs_trains_with_a_warning(sft_run, capsys):
    preference_set("small-v1", validation=False)
    finetune("--method", "dpo", "--preferences", "small", "--from-run", str(sft_run.pk),
             "--max-steps", "1")  # fmt: skip
    assert NO_VALIDATION_PAIRS.format(name="small-v1") in capsys.readouterr().err
    run = FineTuneRun.objects.get(method="dpo")
    assert run.status == RunStatus.SUCCEEDED and run.adapter_path


def refused(*args):
    before = FineTuneRun.objects.count()
    with pytest.raises(CommandError) as error:
        finetune(*args)
    assert error.value.returncode == 2
    assert FineTuneRun.objects.count() == before
    return str(error.value)


def test_dpo_without_a_run_to_start_from_is_refused():
    preference_set("kitchen-v1")
    assert refused("--method", "dpo", "--preferences", "kitchen") == DPO_NEEDS_FROM_RUN


def test_an_unknown_preference_set_or_run_is_refused(model_dir, tmp_path):
    run = stored_run(model_dir, tmp_path)
    message = refused("--method", "dpo", "--preferences", "nope", "--from-run", str(run.pk))
    assert message == PREFERENCES_NOT_FOUND.format(name="nope")
    preference_set("kitchen-v1")
    message = refused("--method", "dpo", "--preferences", "kitchen", "--from-run", "999")
    assert message == RUN_NOT_FOUND.format(id=999)


@pytest.mark.parametrize("status", [RunStatus.FAILED, RunStatus.RUNNING, RunStatus.CANCELLED])
def test_starting_from_a_run_that_did_not_succeed_is_refused(model_dir, tmp_path, status):
    run = stored_run(model_dir, tmp_path, status=status)
    preference_set("kitchen-v1")
    message = refused("--method", "dpo", "--preferences", "kitchen", "--from-run", str(run.pk))
    assert message == FROM_RUN_NOT_SUCCEEDED.format(id=run.pk, status=status)


def test_starting_from_a_run_without_an_adapter_is_refused(model_dir, tmp_path):
    run = stored_run(model_dir, tmp_path, adapter_path=str(tmp_path / "gone"))
    preference_set("kitchen-v1")
    message = refused("--method", "dpo", "--preferences", "kitchen", "--from-run", str(run.pk))
    assert message == FROM_RUN_NO_ADAPTER.format(id=run.pk, path=tmp_path / "gone")


def test_starting_from_a_run_on_another_base_model_is_refused(model_dir, tmp_path):
    from trainer.engine.toy import build_tiny_model

    run = stored_run(model_dir, tmp_path)
    other = build_tiny_model(tmp_path / "other")
    preference_set("kitchen-v1")
    message = refused("--method", "dpo", "--preferences", "kitchen", "--from-run", str(run.pk),
                      "--base-model", str(other))  # fmt: skip
    expected = FROM_RUN_OTHER_BASE.format(id=run.pk, base=str(model_dir), given=str(other))
    assert message == expected


def test_dpo_on_a_dataset_that_is_not_a_preference_set_is_refused(model_dir, tmp_path):
    run = stored_run(model_dir, tmp_path)
    dataset = colour_dataset(name="plain")
    message = refused("--method", "dpo", "--dataset", "plain", "--from-run", str(run.pk))
    assert message == NOT_PREFERENCES.format(name=dataset.name, kind="examples")


def test_dpo_on_a_preference_set_without_pairs_is_refused(model_dir, tmp_path):
    run = stored_run(model_dir, tmp_path)
    preference_set("fixes-v1", pairs=False)
    message = refused("--method", "dpo", "--preferences", "fixes", "--from-run", str(run.pk))
    assert message == NO_PAIRS.format(name="fixes-v1")
