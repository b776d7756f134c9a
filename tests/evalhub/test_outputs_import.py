"""Importing outputs from a JSONL file: all lines or nothing, errors naming the line."""

import json

import pytest

from evalhub.models import Output, Prompt, System, SystemKind
from evalhub.selectors.outputs import OutputsError, evaluation_prompts
from evalhub.services.output_import import outputs_import
from evalhub.services.prompts import prompts_create_from_split
from tests.factories import ComparisonFactory, DatasetFactory, ExampleFactory, SystemFactory
from trainer.models import Split

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset():
    dataset = DatasetFactory(name="qa")
    for question in ["what colour is the sky", "name a fruit", "what colour is the sky"]:
        ExampleFactory(
            dataset=dataset,
            split=Split.TEST,
            messages=[
                {"role": "user", "content": question},
                {"role": "assistant", "content": "reference"},
            ],
        )
    ExampleFactory(dataset=dataset, split=Split.TRAIN)
    return dataset


def write(tmp_path, *records, raw=()):
    path = tmp_path / "outputs.jsonl"
    lines = [json.dumps(r) for r in records] + list(raw)
    path.write_text("\n".join(lines) + "\n")
    return path


def prompts(dataset):
    prompts_create_from_split(dataset=dataset)
    return list(evaluation_prompts(dataset=dataset))


def test_import_by_prompt_id_and_by_prompt_text(dataset, tmp_path):
    sky, fruit, sky_again = prompts(dataset)
    path = write(
        tmp_path,
        {"prompt_id": sky.pk, "output": "blue", "token_count": 1, "latency_ms": 3.5},
        {"prompt": "  name a fruit ", "output": "an apple"},
        {"prompt_id": sky_again.pk, "output": ""},
    )
    report = outputs_import(path=path, system_name="gpt-x", dataset_name="qa")

    assert (report.created, report.updated, report.unchanged) == (3, 0, 0)
    system = System.objects.get(name="gpt-x")
    assert system.kind == SystemKind.IMPORTED
    texts = {o.prompt_id: o for o in system.outputs.all()}
    assert texts[sky.pk].text == "blue" and texts[sky.pk].token_count == 1
    assert texts[sky.pk].latency_ms == 3.5
    assert texts[fruit.pk].text == "an apple"
    assert texts[sky_again.pk].flags == ["empty"]


def test_reimporting_the_same_file_changes_nothing_and_a_changed_text_replaces(dataset, tmp_path):
    sky, _, _ = prompts(dataset)
    outputs_import(
        path=write(tmp_path, {"prompt_id": sky.pk, "output": "blue"}),
        system_name="gpt-x",
        dataset_name="qa",
    )
    Output.objects.update(metrics={"rouge1": 1.0})
    again = outputs_import(
        path=write(tmp_path, {"prompt_id": sky.pk, "output": "blue"}),
        system_name="gpt-x",
        dataset_name="qa",
    )
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    assert Output.objects.get().metrics == {"rouge1": 1.0}
    changed = outputs_import(
        path=write(tmp_path, {"prompt_id": sky.pk, "output": "grey"}),
        system_name="gpt-x",
        dataset_name="qa",
    )
    assert changed.updated == 1
    assert (Output.objects.get().text, Output.objects.get().metrics) == ("grey", {})


def test_every_bad_line_is_reported_and_nothing_is_written(dataset, tmp_path):
    path = write(
        tmp_path,
        {"prompt": "name a fruit", "output": "ok"},
        {"prompt": "name a fruit"},
        {"output": "no prompt"},
        {"prompt_id": 10**9, "output": "x"},
        {"prompt": "what is unknown", "output": "x"},
        {"prompt": "what colour is the sky", "output": "x"},
        {"prompt": "name a fruit", "output": "x", "token_count": -3},
        {"prompt": "name a fruit", "output": "y"},
        raw=["{not json", "[1, 2]"],
    )
    with pytest.raises(OutputsError) as error:
        outputs_import(path=path, system_name="gpt-x", dataset_name="qa")
    message = str(error.value)
    for expected in [
        "line 2: 'output' is missing",
        "line 3: give 'prompt_id' or 'prompt'",
        "line 4: prompt_id 1000000000 is not a test prompt of 'qa'",
        "line 5: no test prompt of 'qa' has this text",
        "line 6: 2 prompts have this text; use prompt_id",
        "line 7: 'token_count' must be a non-negative number",
        "line 9: not valid JSON",
        "line 10: expected a JSON object",
    ]:
        assert expected in message
    assert not System.objects.exists()
    assert not Output.objects.exists()
    assert not Prompt.objects.exists()


def test_a_prompt_given_twice_names_both_lines(dataset, tmp_path):
    _, fruit, _ = prompts(dataset)
    path = write(
        tmp_path,
        {"prompt_id": fruit.pk, "output": "a"},
        {"prompt": "name a fruit", "output": "b"},
    )
    with pytest.raises(
        OutputsError, match=f"line 2: prompt {fruit.pk} was already given on line 1"
    ):
        outputs_import(path=path, system_name="gpt-x", dataset_name="qa")


def test_an_unreadable_file_is_reported(dataset, tmp_path):
    with pytest.raises(OutputsError, match="cannot read"):
        outputs_import(path=tmp_path / "missing.jsonl", system_name="s", dataset_name="qa")
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(OutputsError, match="cannot read"):
        outputs_import(path=binary, system_name="s", dataset_name="qa")


def test_an_empty_file_and_an_unknown_dataset_are_errors(dataset, tmp_path):
    with pytest.raises(OutputsError, match="has no outputs"):
        outputs_import(path=write(tmp_path), system_name="s", dataset_name="qa")
    with pytest.raises(OutputsError, match="dataset 'nope' does not exist"):
        outputs_import(path=write(tmp_path), system_name="s", dataset_name="nope")


def test_outputs_cannot_be_imported_into_a_base_or_adapter_system(dataset, tmp_path):
    sky, _, _ = prompts(dataset)
    SystemFactory(name="adapter:run-1", kind=SystemKind.REFERENCE)
    with pytest.raises(OutputsError, match="of kind 'reference'"):
        outputs_import(
            path=write(tmp_path, {"prompt_id": sky.pk, "output": "x"}),
            system_name="adapter:run-1",
            dataset_name="qa",
        )


def test_an_output_in_a_study_is_not_replaced(dataset, tmp_path):
    sky, _, _ = prompts(dataset)
    outputs_import(
        path=write(tmp_path, {"prompt_id": sky.pk, "output": "blue"}),
        system_name="gpt-x",
        dataset_name="qa",
    )
    ComparisonFactory(prompt=sky, output_a=Output.objects.get())
    with pytest.raises(OutputsError, match="part of a study"):
        outputs_import(
            path=write(tmp_path, {"prompt_id": sky.pk, "output": "grey"}),
            system_name="gpt-x",
            dataset_name="qa",
        )
    assert Output.objects.get(system__name="gpt-x").text == "blue"
