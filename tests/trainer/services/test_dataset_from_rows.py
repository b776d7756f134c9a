"""dataset_create_from_rows: canonical rows made elsewhere stored as a dataset."""

import pytest

from tests.factories import DatasetFactory
from trainer.datasets import EmptyDataset
from trainer.datasets.normalise import content_hash
from trainer.datasets.pipeline import Row
from trainer.models import Dataset, DatasetKind
from trainer.services.datasets import NAME_TAKEN, DatasetNameError, dataset_create_from_rows

pytestmark = pytest.mark.django_db


def conversation(question: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def rows(prompts: int) -> list[Row]:
    """Per prompt: a pair and a correction (an SFT row) asking the same."""
    made = []
    for i in range(prompts):
        question = f"How do I look after plant number {i} through a {i * 7 % 12 + 1} week frost?"
        made.append(Row(conversation(question, f"Wrap it in fleece, week {i}."), f"Ignore it {i}."))
        made.append(Row(conversation(question, f"Bring it indoors before frost {i}.")))
    return made


def test_rows_are_stored_in_order_with_kind_provenance_and_hash():
    made = rows(30)
    dataset = dataset_create_from_rows(
        name="prefs-v1", rows=made, provenance={"study": {"id": 3}}, validation_share=0.2, seed=1
    )
    assert (dataset.kind, dataset.provenance, dataset.format) == (
        DatasetKind.PREFERENCES,
        {"study": {"id": 3}},
        "preferences",
    )
    assert dataset.split_ratios == [0.8, 0.2, 0.0, 0.0]
    stored = list(dataset.examples.order_by("index"))
    assert [(e.messages, e.rejected) for e in stored] == [
        (r.messages, r.rejected or "") for r in made
    ]
    assert [e.content_hash for e in stored] == [content_hash(r.messages) for r in made]
    # A prompt's pair and its correction land on one side; about a fifth are held out.
    for pair, correction in zip(stored[::2], stored[1::2], strict=True):
        assert pair.split == correction.split
    held_out = sum(e.split == "validation" for e in stored)
    assert held_out == 12
    assert {e.split for e in stored} == {"train", "validation"}


def test_the_same_rows_and_seed_give_the_same_split_and_hash():
    first = dataset_create_from_rows(name="a", rows=rows(20), provenance={}, validation_share=0.1)
    again = dataset_create_from_rows(name="b", rows=rows(20), provenance={}, validation_share=0.1)
    assert first.content_hash == again.content_hash
    assert list(first.examples.order_by("index").values_list("split", flat=True)) == list(
        again.examples.order_by("index").values_list("split", flat=True)
    )


def test_a_pairs_hash_covers_its_rejected_answer():
    question = conversation("Which fleece?", "The thick one.")
    one = dataset_create_from_rows(
        name="one", rows=[Row(question, "The thin one.")], provenance={}, validation_share=0
    )
    two = dataset_create_from_rows(
        name="two", rows=[Row(question, "No fleece.")], provenance={}, validation_share=0
    )
    assert one.content_hash != two.content_hash


def test_a_taken_name_or_no_rows_store_nothing():
    DatasetFactory(name="taken")
    with pytest.raises(DatasetNameError) as caught:
        dataset_create_from_rows(name="taken", rows=rows(2), provenance={}, validation_share=0.1)
    assert str(caught.value) == NAME_TAKEN.format(name="taken")
    with pytest.raises(EmptyDataset):
        dataset_create_from_rows(name="empty", rows=[], provenance={}, validation_share=0.1)
    assert list(Dataset.objects.values_list("name", flat=True)) == ["taken"]
