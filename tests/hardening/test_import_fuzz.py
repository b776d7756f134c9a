"""Hostile files through the doors a user has: the upload page, `import_dataset` and
`import_outputs`. Each answers with a 4xx page or a non-zero exit and a message, never a 500 or
a traceback, and a refused file leaves no row and no file behind."""

import io
import itertools
import json
import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalhub.models import Output, System
from evalhub.selectors.outputs import OutputsError, evaluation_prompts
from evalhub.services.output_import import outputs_import
from evalhub.services.prompts import prompts_create_from_split
from tests.factories import DatasetFactory, ExampleFactory
from trainer.models import Dataset, Example, Split

pytestmark = pytest.mark.django_db
FEW = settings(
    max_examples=int(os.environ.get("EVALHUB_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
NAMES = (f"fuzz-{n}" for n in itertools.count())
CHAR = st.characters(codec=None, exclude_categories=())
RECORD = st.one_of(
    st.fixed_dictionaries({"instruction": st.text(CHAR), "output": st.text(CHAR)}),
    st.fixed_dictionaries(
        {"messages": st.lists(st.fixed_dictionaries({"role": st.text(), "content": st.text()}))}
    ),
    st.dictionaries(st.text(max_size=8), st.none() | st.integers() | st.text(), max_size=3),
)


def _small_parquet() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = pa.BufferOutputStream()
    pq.write_table(pa.table({"prompt": ["Hi?", "Bye?"], "response": ["Hello.", "Bye."]}), buffer)
    return buffer.getvalue().to_pybytes()


_PARQUET = _small_parquet()
FILES = st.one_of(
    st.binary(max_size=300),
    st.lists(RECORD, min_size=1, max_size=4).map(
        lambda rs: "\n".join(json.dumps(r) for r in rs).encode("utf-8", "surrogatepass")
    ),
    st.lists(st.text(CHAR, max_size=30), max_size=6).map(
        lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass")
    ),
)
FILES = FILES | st.tuples(FILES, st.integers(min_value=0, max_value=60)).map(
    # Parquet-looking files: the magic bytes, then anything; or a real file cut short.
    lambda pair: b"PAR1" + pair[0] + (_PARQUET[: pair[1] * len(_PARQUET) // 60])
)
SUFFIX = st.sampled_from(
    ["data.jsonl", "data.csv", "data.tsv", "data.txt", "data.parquet", "../../etc/passwd", ""]
)


def _stored() -> tuple[int, int]:
    return Dataset.objects.count(), Example.objects.count()


def _leftovers() -> list[Path]:
    incoming = Path(django_settings.MEDIA_ROOT) / "datasets" / ".incoming"
    return list(incoming.iterdir()) if incoming.exists() else []


@FEW
@given(data=FILES, filename=SUFFIX, fmt=st.sampled_from(["auto", "csv", "text", "alpaca"]))
def test_any_upload_is_imported_or_answered_with_a_4xx_and_nothing_kept(
    manager_client, data, filename, fmt
):
    name = next(NAMES)
    before = _stored()
    upload = SimpleUploadedFile(filename or "noname", data)
    response = manager_client.post(
        "/datasets/upload/",
        {"file": upload, "name": name, "format": fmt, "split": "0.8,0.1,0.1", "seed": 0}
        | {"prompt_column": "prompt", "response_column": "response"},
    )
    assert response.status_code in (302, 400, 422), response.status_code
    if response.status_code == 302:
        assert Dataset.objects.filter(name=name).exists()
        kept = list((Path(django_settings.MEDIA_ROOT) / "datasets" / name).iterdir())
        assert len(kept) == 1 and kept[0].parent.name == name  # never outside its folder
    else:
        assert _stored() == before
        assert not (Path(django_settings.MEDIA_ROOT) / "datasets" / name).exists()
    assert _leftovers() == []


@FEW
@given(data=FILES, suffix=st.sampled_from([".jsonl", ".csv", ".txt", ".parquet"]))
def test_import_dataset_exits_0_1_or_2_with_a_message_and_stores_nothing_when_refused(
    tmp_path_factory, data, suffix
):
    path = tmp_path_factory.mktemp("in") / f"data{suffix}"
    path.write_bytes(data)
    before = _stored()
    try:
        call_command("import_dataset", str(path), name=next(NAMES), stdout=io.StringIO())
    except CommandError as error:
        assert error.returncode in (1, 2) and str(error)
        assert _stored() == before


@pytest.fixture
def test_prompts(db):
    dataset = DatasetFactory(name="outputs-fuzz")
    for i in range(3):
        ExampleFactory(
            dataset=dataset,
            split=Split.TEST,
            messages=[
                {"role": "user", "content": f"Question {i}?"},
                {"role": "assistant", "content": f"Answer {i}."},
            ],
        )
    prompts_create_from_split(dataset=dataset)
    return dataset, [p.pk for p in evaluation_prompts(dataset=dataset)]


OUTPUT_VALUE = st.none() | st.booleans() | st.integers() | st.floats() | st.text(CHAR, max_size=20)


@FEW
@given(
    lines=st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {"output": OUTPUT_VALUE},
                optional={
                    "prompt_id": OUTPUT_VALUE | st.sampled_from([1, 2, 3, 10**30]),
                    "prompt": st.sampled_from(["Question 0?", "Question 1?", "nope"]),
                    "token_count": OUTPUT_VALUE,
                    "latency_ms": OUTPUT_VALUE,
                },
            ).map(json.dumps),
            st.text(CHAR, max_size=30),
            st.sampled_from(["[]", "null", "{", '"x"', "1e999"]),
        ),
        max_size=6,
    )
)
def test_import_outputs_imports_all_or_names_the_lines_and_writes_nothing(
    test_prompts, tmp_path_factory, lines
):
    dataset, prompt_ids = test_prompts
    # Line numbers that name real prompts half the time.
    text = "\n".join(lines).replace('"prompt_id": 1,', f'"prompt_id": {prompt_ids[0]},')
    path = tmp_path_factory.mktemp("out") / "outputs.jsonl"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    before = (Output.objects.count(), System.objects.count())
    try:
        report = outputs_import(path=path, system_name="fuzzed", dataset_name=dataset.name)
    except OutputsError as error:
        assert str(error)
        assert (Output.objects.count(), System.objects.count()) == before
    else:
        assert report.created + report.updated + report.unchanged >= 1


def test_import_outputs_command_exits_2_on_a_binary_file(test_prompts, tmp_path):
    dataset, _ = test_prompts
    path = tmp_path / "outputs.jsonl"
    path.write_bytes(b"\x00\xff\xfe" * 100)
    with pytest.raises(CommandError) as caught:
        call_command("import_outputs", str(path), system="fuzzed", dataset=dataset.name)
    assert caught.value.returncode == 2
    assert not System.objects.filter(name="fuzzed").exists()
