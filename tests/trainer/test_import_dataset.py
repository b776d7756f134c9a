"""manage.py import_dataset and the dataset_import service: storage, refusals, exit codes."""

import json
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.factories import DatasetFactory
from tests.trainer.datasets.helpers import (
    chat,
    distinct_records,
    write_jsonl,
    write_parquet,
    write_saved_dataset,
)
from trainer.datasets import DatasetError, InvalidSplit, errors, hub
from trainer.datasets.errors import MISSING_TABLE_COLUMN
from trainer.datasets.lint import MSG_SYSTEM_PROMPT
from trainer.management.commands.import_dataset import FILE_NOT_FOUND, SPLIT_NAME_NEEDS_HUB
from trainer.models import Dataset, Example
from trainer.selectors.datasets import dataset_split_counts
from trainer.services.datasets import (
    INVALID_NAME,
    NAME_TAKEN,
    REFUSED_ERRORS,
    REFUSED_STRICT,
    RESERVED_NAME,
    DatasetNameError,
    ImportSpec,
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
    result = dataset_import(
        path=clean_file, name="clean", spec=ImportSpec(seed=3), created_by=manager
    )
    assert result.imported
    dataset = Dataset.objects.get(name="clean")
    assert (dataset.format, dataset.seed, dataset.split_ratios) == (
        "messages",
        3,
        [0.8, 0.1, 0.0, 0.1],
    )
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
    assert dataset_split_counts(dataset=dataset) == {
        "train": 96,
        "validation": 12,
        "feedback": 0,
        "test": 12,
    }


def test_lint_errors_refuse_the_import_and_store_nothing(tmp_path):
    records = distinct_records(10)
    records[4]["messages"][1]["content"] = " "
    before = rows()
    result = dataset_import(path=write_jsonl(tmp_path / "m.jsonl", records), name="bad")
    assert not result.imported
    assert result.refused == REFUSED_ERRORS.format(n=1)
    assert rows() == before


def test_strict_refuses_warnings(clean_file):
    result = dataset_import(path=clean_file, name="strict", spec=ImportSpec(strict=True))
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
        dataset_import(path=clean_file, name="r", spec=ImportSpec(split=(0.5, 0.5, 0.5)))


# The command.


def test_command_imports_and_prints_a_table(clean_file):
    code, out, _ = run(str(clean_file), "--name", "clean", "--seed", "1")
    assert code == 0
    assert (
        "clean: 120 examples, format messages, split train 96 · validation 12 · feedback 0 · "
        "test 12" in out
    )
    assert "inconsistent-system-prompt" in out and "8" in out
    assert "imported 'clean'" in out
    assert rows() == (1, 120)


def test_command_splits_off_feedback_prompts_with_four_shares(clean_file):
    code, out, _ = run(str(clean_file), "--name", "loop", "--split", "0.7,0.1,0.1,0.1", "--json")
    assert code == 0
    assert json.loads(out)["counts"] == {"train": 84, "validation": 12, "feedback": 12, "test": 12}
    dataset = Dataset.objects.get(name="loop")
    assert dataset.split_ratios == [0.7, 0.1, 0.1, 0.1]
    assert dataset_split_counts(dataset=dataset)["feedback"] == 12


def test_command_json_report_has_exactly_the_documented_shape(clean_file):
    code, out, _ = run(str(clean_file), "--name", "clean", "--json", "--split", "0.5,0.25,0.25")
    assert code == 0
    report = json.loads(out)
    assert set(report) == {"dataset", "counts", "issues"}
    assert report["dataset"] == "clean"
    assert report["counts"] == {"train": 60, "validation": 30, "feedback": 0, "test": 30}
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


# The layouts of issue 15 through the command, and hub datasets.

HH_CHOSEN = "\n\nHuman: Q{n}?\n\nAssistant: good {n}"
HH_REJECTED = "\n\nHuman: Q{n}?\n\nAssistant: bad {n}"


def pair_columns(count: int) -> dict[str, list[str]]:
    return {
        "chosen": [HH_CHOSEN.format(n=n) for n in range(count)],
        "rejected": [HH_REJECTED.format(n=n) for n in range(count)],
    }


def test_command_imports_hh_pairs_and_stores_the_rejected_answers(tmp_path):
    columns = pair_columns(4)
    records = [{"chosen": c, "rejected": r} for c, r in zip(*columns.values(), strict=True)]
    code, out, _ = run(str(write_jsonl(tmp_path / "hh.jsonl", records)), "--name", "hh")
    assert code == 0 and "4 preference pairs" in out
    example = Example.objects.get(dataset__name="hh", index=2)
    assert example.messages[-1]["content"] == "good 2" and example.rejected == "bad 2"


def test_command_reads_parquet_with_named_fields(tmp_path):
    path = write_parquet(tmp_path / "q.parquet", {"q": ["1 oz?", "1 lb?"], "a": ["28 g", "454 g"]})
    code, _, _ = run(str(path), "--name", "pq", "--prompt-field", "q", "--response-field", "a")
    assert code == 0
    assert Dataset.objects.get(name="pq").format == "parquet/fields"


def test_command_refuses_parquet_without_the_named_columns_and_stores_nothing(tmp_path):
    path = write_parquet(tmp_path / "q.parquet", {"q": ["1 oz?"], "a": ["28 g"]})
    code, _, message = run(str(path), "--name", "pq", "--prompt-field", "question")
    assert code == 2 and rows() == (0, 0)
    detail = MISSING_TABLE_COLUMN.format(column="question", columns=["q", "a"])
    assert message == f"{path}: row 1: {detail}"


def test_command_imports_a_save_to_disk_folder(tmp_path):
    folder = write_saved_dataset(tmp_path / "saved", pair_columns(3))
    code, _, _ = run(str(folder), "--name", "saved", "--format", "arrow")
    assert code == 0
    assert Dataset.objects.get(name="saved").format == "arrow/pairs"


@pytest.fixture
def local_hub(tmp_path, monkeypatch):
    """hub:OWNER/NAME served from a local save_to_disk folder: the load function is replaced,
    so nothing is downloaded; every other step (saving, reading) is the real one."""
    import datasets

    folder = write_saved_dataset(tmp_path / "hub-copy", pair_columns(3))
    asked = []

    def load(repo: str, split: str):
        asked.append((repo, split))
        return datasets.load_from_disk(str(folder))

    monkeypatch.setattr(hub, "load_hub_split", load)
    return asked


def test_command_imports_a_hub_dataset_by_name(local_hub):
    code, _, _ = run("hub:someone/hh-small", "--name", "from-hub", "--split", "test")
    assert code == 0
    assert local_hub == [("someone/hh-small", "test")]
    dataset = Dataset.objects.get(name="from-hub")
    assert (dataset.source_filename, dataset.format) == (
        "hub:someone/hh-small (test)",
        "arrow/pairs",
    )
    assert Example.objects.filter(dataset=dataset).exclude(rejected="").count() == 3


def test_a_hub_dataset_takes_split_shares_too(local_hub):
    code, _, _ = run("hub:someone/hh-small", "--name", "from-hub", "--split", "0.6,0.2,0.2")
    assert code == 0 and local_hub == [("someone/hh-small", "train")]


def test_a_split_name_without_a_hub_dataset_exits_2(clean_file):
    code, _, message = run(str(clean_file), "--name", "x", "--split", "train")
    assert code == 2 and message == SPLIT_NAME_NEEDS_HUB.format(value="train")


def test_the_hub_without_the_datasets_library_exits_2_saying_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets raises ImportError
    code, _, message = run("hub:someone/hh-small", "--name", "from-hub")
    assert (code, message) == (2, hub.HUB_NEEDS_DATASETS)
    assert rows() == (0, 0)


def test_the_hub_without_a_network_exits_2_naming_the_dataset(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    code, _, message = run("hub:someone/hh-small", "--name", "from-hub")
    detail = hub.HUB_LOAD_FAILED.format(
        split="train", repo="someone/hh-small", detail="Couldn't reach the hub"
    )
    assert (code, message) == (2, f"hub:someone/hh-small: {detail}")
    assert rows() == (0, 0)


def test_a_malformed_hub_name_exits_2():
    code, _, message = run("hub:just-a-name", "--name", "x")
    assert (code, message) == (2, hub.HUB_BAD_NAME.format(name="hub:just-a-name"))
