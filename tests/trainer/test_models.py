"""A conversation row's ``prompt_hash`` follows its messages however rows are written: the
leakage check trusts the stored hash."""

import re

import pytest
from django.db import connection

from evalhub.models import Prompt
from tests.factories import DatasetFactory, ExampleFactory, PromptFactory
from trainer.datasets.normalise import content_hash
from trainer.models import MESSAGES_UPDATE, Example, prompt_hashes_fill

pytestmark = pytest.mark.django_db

QUESTION = [{"role": "user", "content": "how long to boil an egg?"}]
ANSWERED = [*QUESTION, {"role": "assistant", "content": "nine minutes"}]


def test_a_saved_row_holds_the_hash_of_its_prompt_and_empty_without_a_user_turn():
    assert ExampleFactory(messages=ANSWERED).prompt_hash == content_hash(QUESTION)
    assert ExampleFactory(messages=[{"role": "assistant", "content": "x"}]).prompt_hash == ""
    assert PromptFactory(messages=QUESTION).prompt_hash == content_hash(QUESTION)


def test_bulk_created_rows_hold_the_hash_of_their_prompt():
    dataset = DatasetFactory()
    Example.objects.bulk_create(
        [
            Example(dataset=dataset, index=0, source_line=1, messages=ANSWERED, split="train"),
            Example(dataset=dataset, index=1, source_line=2, messages=[], split="train"),
        ]
    )
    Prompt.objects.bulk_create([Prompt(dataset=dataset, messages=QUESTION)])
    stored = Example.objects.filter(dataset=dataset).order_by("index")
    assert list(stored.values_list("prompt_hash", flat=True)) == [content_hash(QUESTION), ""]
    assert Prompt.objects.get(dataset=dataset).prompt_hash == content_hash(QUESTION)


def test_saving_or_bulk_updating_the_messages_rehashes():
    first, second = ExampleFactory(), ExampleFactory()
    first.messages = ANSWERED
    first.save(update_fields=["messages"])
    second.messages = QUESTION
    Example.objects.bulk_update([second], ["messages"])
    for row in (first, second):
        row.refresh_from_db()
        assert row.prompt_hash == content_hash(QUESTION)


def test_an_update_of_the_messages_in_sql_is_refused():
    ExampleFactory()
    with pytest.raises(TypeError, match=re.escape(MESSAGES_UPDATE)):
        Example.objects.update(messages=QUESTION)


def test_the_fill_hashes_every_row_across_batches():
    rows = [ExampleFactory(messages=[{"role": "user", "content": f"q{i}"}]) for i in range(5)]
    Example.objects.update(prompt_hash="")
    prompt_hashes_fill(Example, connection, batch_size=2)
    stored = Example.objects.order_by("pk").values_list("prompt_hash", flat=True)
    assert list(stored) == [content_hash(r.messages) for r in rows]
