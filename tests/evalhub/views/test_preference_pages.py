"""The preference-set pages: the list, one set, its downloads, and building one from a study."""

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils.html import escape

from evalhub.analysis import preferences as rules
from evalhub.models import PreferenceSet
from evalhub.selectors.preferences import BAD_LAYOUT
from evalhub.services import preferences as svc
from evalhub.services.preferences import preference_set_build
from tests.evalhub.preference_fixtures import answer_of, feedback_study, judge
from trainer.models import Dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def built():
    """support v1: two pairs (the adapter preferred on the first prompt, the base on the
    second), one correction, one comparison left out as a tie."""
    study, (ann, ben), _ = feedback_study(prompts=3, raters=2)
    first, second, third = study.comparisons.order_by("id")
    judge(first, ann, "adapter")
    judge(first, ben, "adapter", correction="Ben's own answer.")
    judge(second, ann, "base")
    judge(third, ann, "tie")
    return preference_set_build(study=study, name="support", correction_pairs=False)


def lines(response) -> list[dict]:
    return [json.loads(line) for line in response.content.decode().splitlines()]


def test_the_list_links_each_set_to_its_page_and_study(manager_client, built):
    page = manager_client.get(reverse("preference_list")).content.decode()
    assert reverse("preference_detail", args=["support", 1]) in page
    assert reverse("study_detail", args=[built.study_id]) in page
    assert escape(built.study.name) in page


def test_the_page_shows_provenance_rules_counts_and_a_preview(manager_client, built):
    page = manager_client.get(reverse("preference_detail", args=["support", 1])).content.decode()
    assert reverse("study_detail", args=[built.study_id]) in page
    assert reverse("dataset_detail", args=["support-v1"]) in page
    assert '<td class="pair-count">2' in page and '<td class="sft-count">1' in page
    assert f'<td class="rule-{rules.TIED}">1</td>' in page
    assert f'<td class="rule-{rules.NO_MAJORITY}">0</td>' in page
    assert escape(rules.RULES[rules.TIED][1]) in page
    assert escape(svc.MAJORITY.capitalize()) in page  # the rules' sentence starts as one
    assert re.search(r"<td>\d+, by 2 raters</td>", page)
    assert escape("Ben's own answer.") in page
    first = built.study.comparisons.order_by("id").first()
    assert escape(answer_of(first, "adapter")) in page


def test_the_sets_dataset_page_says_where_it_comes_from(manager_client, built):
    page = manager_client.get(reverse("dataset_detail", args=["support-v1"])).content.decode()
    assert reverse("preference_detail", args=["support", 1]) in page
    assert "train / validation / feedback / test" in page


def test_an_unknown_set_is_a_404(manager_client, built):
    assert manager_client.get(reverse("preference_detail", args=["support", 2])).status_code == 404


def test_the_messages_download_holds_every_chosen_conversation_and_correction(
    manager_client, built
):
    response = manager_client.get(
        reverse("preference_download", args=["support", 1]) + "?layout=messages"
    )
    assert response["Content-Disposition"] == 'attachment; filename="support-v1-messages.jsonl"'
    rows = lines(response)
    assert rows == [{"messages": e.messages} for e in built.dataset.examples.order_by("index")]
    assert [r["messages"][-1]["content"] for r in rows][-1] == "Ben's own answer."


def test_a_bad_layout_is_a_400_naming_it(manager_client, built):
    response = manager_client.get(reverse("preference_download", args=["support", 1]) + "?layout=x")
    assert response.status_code == 400
    assert response.content.decode() == BAD_LAYOUT.format(layout="x")


def test_the_pairs_download_round_trips_through_import_dataset(manager_client, built, tmp_path):
    response = manager_client.get(reverse("preference_download", args=["support", 1]))
    rows = lines(response)
    assert set(rows[0]) == {"prompt", "chosen", "rejected"}
    assert [r["chosen"][0]["role"] for r in rows] == ["assistant", "assistant"]
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(response.content)
    call_command("import_dataset", str(path), "--name", "reimported", stdout=StringIO())
    again = Dataset.objects.get(name="reimported")
    stored = built.dataset.examples.exclude(rejected="").order_by("index")
    assert [(e.messages, e.rejected) for e in again.examples.order_by("index")] == [
        (e.messages, e.rejected) for e in stored
    ]
    assert again.format == "pairs"


def test_the_study_page_offers_the_build_form(manager_client, built):
    page = manager_client.get(reverse("study_detail", args=[built.study_id])).content.decode()
    assert f'action="{reverse("preference_build", args=[built.study_id])}"' in page
    # DPO skips corrections (rows without a rejected answer): the form says which trains on what
    assert "<code>finetune --method dpo</code> trains on pairs" in page
    assert "without <code>--method</code> trains on every chosen answer" in page
    assert reverse("preference_detail", args=["support", 1]) in page


def test_building_from_the_form_makes_the_next_version(manager_client, built):
    response = manager_client.post(
        reverse("preference_build", args=[built.study_id]),
        {"name": "support", "validation_share": "0.2", "seed": "4"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("preference_detail", args=["support", 2])
    second = PreferenceSet.objects.get(name="support", version=2)
    assert (second.rules["validation_share"], second.rules["seed"]) == (0.2, 4)


def test_a_refused_build_is_a_form_error_and_stores_nothing(manager_client):
    study, (ann, _), _ = feedback_study(prompts=1, raters=2, split="test")
    judge(study.comparisons.get(), ann, "base")
    response = manager_client.post(
        reverse("preference_build", args=[study.pk]),
        {"name": "leak", "validation_share": "0.1", "seed": "0"},
    )
    assert response.status_code == 422
    assert escape(svc.ERROR_TEST_PROMPTS) in response.content.decode()
    assert not PreferenceSet.objects.exists()
