"""manage.py import_dataset and the dataset_import service: storage, refusals, exit codes."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.factories import DatasetFactory
from tests.trainer.datasets.helpers import chat, distinct_records, write_jsonl
from trainer.datasets import DatasetError, InvalidSplit, errors
from trainer.datasets.lint import MSG_SYSTEM_PROMPT
from trainer.management.commands.import_dataset import FILE_NOT_FOUND
from trainer.models import Dataset, Example
from trainer.selectors.datasets import dataset_split_counts
from trainer.services.datasets import (
    INVALID_NAME,
    NAME_TAKEN,
    REFUSED_ERRORS,
    REFUSED_STRICT,
    RESERVED_NAME,
    DatasetNameError,
    dataset_import,
)

NOISY = Path(__file__).resolve().parents[2] / "trainer" / "demo_data" / "noisy.jsonl"
pytestmark = pytest.mark.django_db


def rows() -> tuple[int, int]:
    return Dataset.objects.count(), Example.objects.count()


def run(*args: str) -> tuple[int, str, str]:
    """The exit status manage.py would give (Django exits with CommandError.returncode)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("import_dataset", *args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), err.getvalue()


@pytest.fixture
def clean_file(tmp_path):
    records = distinct_records(120)
    records[7]["messages"].insert(0, {"role": "system", "content": "Be brief."})  # one warning
    return write_jsonl(tmp_path / "clean.jsonl", records)


# The service.


def test_import_stores_the_dataset_and_every_example(clean_file, manager):
    result = dataset_import(path=clean_file, name="clean", seed=3, created_by=manager)
    assert result.imported
    dataset = Dataset.objects.get(name="clean")
    assert (dataset.format, dataset.seed, dataset.split_ratios) == ("messages", 3, [0.8, 0.1, 0.1])
    assert (dataset.source_filename, dataset.tokenizer, dataset.created_by) == (
        "clean.jsonl",
        "chars/4",
        manager,
    )
    assert (dataset.lint_errors, dataset.lint_warnings) == (0, 1)
    assert dataset.lint_report == result.report()["issues"]
    assert [i["code"] for i in dataset.lint_report] == [
        "inconsistent-system-prompt",
        "dataset-size",
    ]
    assert dataset.content_hash == result.prepared.content_hash
    stored = list(dataset.examples.order_by("index"))
    assert [e.index for e in stored] == list(range(120))
    assert [e.source_line for e in stored] == list(range(1, 121))
    assert stored[7].messages[0] == {"role": "system", "content": "Be brief."}
    assert [(e.split, e.content_hash, e.token_count) for e in stored] == [
        (p.split, p.content_hash, p.token_count) for p in result.prepared.examples
    ]
    assert dataset_split_counts(dataset=dataset) == {"train": 96, "validation": 12, "test": 12}


def test_lint_errors_refuse_the_import_and_store_nothing(tmp_path):
    records = distinct_records(10)
    records[4]["messages"][1]["content"] = " "
    before = rows()
    result = dataset_import(path=write_jsonl(tmp_path / "m.jsonl", records), name="bad")
    assert not result.imported
    assert result.refused == REFUSED_ERRORS.format(n=1)
    assert rows() == before


def test_strict_refuses_warnings(clean_file):
    result = dataset_import(path=clean_file, name="strict", strict=True)
    assert result.refused == REFUSED_STRICT.format(n=1)
    assert rows() == (0, 0)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("has space", INVALID_NAME.format(name="has space")),
        ("", INVALID_NAME.format(name="")),
        ("x" * 101, INVALID_NAME.format(name="x" * 101)),
        ("upload", RESERVED_NAME.format(name="upload")),
        ("taken", NAME_TAKEN.format(name="taken")),
    ],
)
def test_bad_names_are_refused_before_reading(clean_file, name, message):
    DatasetFactory(name="taken")
    with pytest.raises(DatasetNameError) as caught:
        dataset_import(path=clean_file, name=name)
    assert str(caught.value) == message
    assert rows() == (1, 0)


def test_malformed_files_store_nothing(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in distinct_records(50)) + "{broken\n")
    with pytest.raises(DatasetError) as caught:
        dataset_import(path=path, name="broken")
    assert caught.value.line == 51
    assert rows() == (0, 0)


def test_bad_ratios_raise(clean_file):
    with pytest.raises(InvalidSplit):
        dataset_import(path=clean_file, name="r", split=(0.5, 0.5, 0.5))


# The command.


def test_command_imports_and_prints_a_table(clean_file):
    code, out, _ = run(str(clean_file), "--name", "clean", "--seed", "1")
    assert code == 0
    assert "clean: 120 examples, format messages, split train 96 · validation 12 · test 12" in out
    assert "inconsistent-system-prompt" in out and "8" in out
    assert "imported 'clean'" in out
    assert rows() == (1, 120)


def test_command_json_report_has_exactly_the_documented_shape(clean_file):
    code, out, _ = run(str(clean_file), "--name", "clean", "--json", "--split", "0.5,0.25,0.25")
    assert code == 0
    report = json.loads(out)
    assert set(report) == {"dataset", "counts", "issues"}
    assert report["dataset"] == "clean"
    assert report["counts"] == {"train": 60, "validation": 30, "test": 30}
    assert report["issues"][0] == {
        "code": "inconsistent-system-prompt",
        "severity": "warning",
        "message": MSG_SYSTEM_PROMPT.format(with_system=1, without=119),
        "lines": [8],
    }
    assert all(set(i) == {"code", "severity", "message", "lines"} for i in report["issues"])


def test_command_exits_1_when_lint_refuses_and_stores_nothing():
    code, out, message = run(str(NOISY), "--name", "noisy", "--json")
    assert code == 1
    assert message == REFUSED_ERRORS.format(n=5)
    report = json.loads(out)
    assert {"split-leakage", "empty-turn", "too-long"} <= {i["code"] for i in report["issues"]}
    assert rows() == (0, 0)


def test_command_exits_1_on_warnings_with_strict(clean_file):
    code, _, message = run(str(clean_file), "--name", "clean", "--strict")
    assert (code, message) == (1, REFUSED_STRICT.format(n=1))
    assert rows() == (0, 0)


@pytest.mark.parametrize(
    ("content", "args", "expected"),
    [
        ('{"messages": []}\n{"messages": [\n', (), "line 2: broken JSON"),
        (
            '{"instruction": "a"}\n',
            (),
            errors.MISSING_FIELD.format(field="output", format="alpaca"),
        ),
        ("", (), errors.EMPTY_FILE),
        ("just some words\n", (), "cannot tell the dataset format"),
        ('{"instruction": "a", "output": "b"}\n', ("--format", "yaml"), "unknown format 'yaml'"),
        ('{"instruction": "a", "output": "b"}\n', ("--split", "0.9,0.2"), "split ratios must"),
    ],
)
def test_command_exits_2_on_unusable_input(tmp_path, content, args, expected):
    path = tmp_path / "input.jsonl"
    path.write_text(content)
    code, _, message = run(str(path), "--name", "x", *args)
    assert code == 2
    assert expected in message
    assert rows() == (0, 0)


def test_command_exits_2_on_binary_files_missing_files_and_taken_names(tmp_path, clean_file):
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert run(str(binary), "--name", "x")[0] == 2
    assert run(str(tmp_path / "nowhere.jsonl"), "--name", "x")[:3:2] == (
        2,
        FILE_NOT_FOUND.format(path=tmp_path / "nowhere.jsonl"),
    )
    DatasetFactory(name="taken")
    assert run(str(clean_file), "--name", "taken")[2] == NAME_TAKEN.format(name="taken")
    assert rows() == (1, 0)


def test_command_reads_csv_with_custom_columns(tmp_path):
    path = tmp_path / "qa.csv"
    lines = [
        f"{r['messages'][0]['content']},{r['messages'][1]['content']}" for r in distinct_records(5)
    ]
    path.write_text("question,answer\n" + "\n".join(lines) + "\n")
    args = ("--prompt-column", "question", "--response-column", "answer", "--json")
    code, out, _ = run(str(path), "--name", "qa", "--format", "csv", *args)
    assert code == 0
    assert sum(json.loads(out)["counts"].values()) == 5
    assert Dataset.objects.get(name="qa").format == "csv"


def tiny_tokenizer_dir(path: Path) -> Path:
    """A word-level tokenizer saved as a model directory: one token per whitespace word."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(vocab={"[UNK]": 0}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]").save_pretrained(path)
    (path / "model.safetensors").write_bytes(b"")  # resolve_model_dir wants weights beside it
    return path


def test_command_counts_tokens_with_the_given_tokenizer(tmp_path):
    model_dir = tiny_tokenizer_dir(tmp_path / "model")
    records = [chat("one two three", "four five"), chat("a " * 30, "b")]
    path = write_jsonl(tmp_path / "m.jsonl", records)
    code, _, _ = run(
        str(path), "--name", "tok", "--tokenizer", str(model_dir), "--max-tokens", "20"
    )
    assert code == 0
    dataset = Dataset.objects.get(name="tok")
    assert dataset.tokenizer == str(model_dir)
    # Words plus four tokens of chat framing per turn.
    assert [e.token_count for e in dataset.examples.order_by("index")] == [3 + 2 + 8, 30 + 1 + 8]
    assert [i["lines"] for i in dataset.lint_report if i["code"] == "too-long"] == [[2]]


def test_command_exits_2_when_the_tokenizer_cannot_be_found(clean_file, tmp_path):
    code, _, message = run(str(clean_file), "--name", "x", "--tokenizer", str(tmp_path / "none"))
    assert code == 2
    assert "cannot load the tokenizer" in message
