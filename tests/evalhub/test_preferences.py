import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from evalhub.analysis import preferences as rules
from evalhub.management.commands import build_preferences as cmd
from evalhub.models import Comparison, PreferenceSet, Study
from evalhub.services import preferences as svc
from evalhub.services.adjudication import adjudication_submit
from evalhub.services.preferences import PreferenceError, preference_set_build
from tests.evalhub.preference_fixtures import answer_of, feedback_study, judge
from tests.factories import DatasetFactory, ManagerFactory, ReviewerFactory
from trainer.models import Dataset, DatasetKind

pytestmark = pytest.mark.django_db


def comparisons(study: Study) -> list[Comparison]:
    return list(
        Comparison.objects.filter(study=study, is_gold=False)
        .select_related("prompt", "output_a__system", "output_b__system")
        .order_by("id")
    )


def left_out(preference_set: PreferenceSet) -> dict[str, int]:
    return {row["rule"]: row["count"] for row in preference_set.rules["left_out"]}


def test_a_majority_makes_a_pair_of_the_preferred_answer_and_corrections_make_sft_rows():
    study, (ann, ben, cid), _ = feedback_study(prompts=3, raters=3)
    first, second, third = comparisons(study)
    judge(first, ann, "adapter")
    judge(first, ben, "adapter", correction="  A better answer, by Ben.  ")
    judge(first, cid, "base")
    judge(second, ann, "base")
    judge(second, ben, "base")
    judge(second, cid, "tie")
    judge(third, ann, "tie")
    judge(third, ben, "both_bad")
    manager = ManagerFactory()

    built = preference_set_build(
        study=study, name="support", created_by=manager, correction_pairs=False
    )

    assert (built.name, built.version, built.pair_count, built.sft_count) == ("support", 1, 2, 1)
    dataset = built.dataset
    assert (dataset.name, dataset.kind, dataset.created_by) == (
        "support-v1",
        DatasetKind.PREFERENCES,
        manager,
    )
    rows = list(dataset.examples.order_by("index"))
    question = first.prompt.messages
    assert [(r.messages, r.rejected) for r in rows] == [
        (
            [*question, {"role": "assistant", "content": answer_of(first, "adapter")}],
            answer_of(first, "base"),
        ),
        (
            [*second.prompt.messages, {"role": "assistant", "content": answer_of(second, "base")}],
            answer_of(second, "adapter"),
        ),
        ([*question, {"role": "assistant", "content": "A better answer, by Ben."}], ""),
    ]
    # Rows of one prompt land on one side of the seeded train/validation split.
    assert rows[0].split == rows[2].split
    assert {r.split for r in rows} <= {"train", "validation"}
    assert len(dataset.content_hash) == 64
    assert left_out(built)[rules.NO_MAJORITY] == 1  # third: a tie against both bad
    assert built.rules["raters"] == sorted(u.username for u in (ann, ben, cid))
    assert built.judgments.count() == 6
    assert dataset.provenance["study"] == {"id": study.pk, "name": study.name}
    assert dataset.provenance["preference_set"] == {"name": "support", "version": 1}
    assert dataset.provenance["prompt_examples"] == sorted(
        c.prompt.example_id for c in (first, second, third)
    )


def test_a_correction_is_chosen_over_each_answer_its_rater_saw():
    study, (ann, ben), _ = feedback_study(prompts=2, raters=2)
    first, second = comparisons(study)
    judge(first, ann, "adapter", correction="The right answer.")
    judge(first, ben, "adapter")
    # A correction that repeats an answer shown makes no pair against it.
    judge(second, ann, "base", correction=answer_of(second, "base"))

    built = preference_set_build(study=study, name="fixed")

    # Two majority pairs, two from the first correction, one from the second.
    assert (built.pair_count, built.sft_count) == (2 + 2 + 1, 2)
    assert built.rules["correction_pairs"]["count"] == 3
    fixed = {
        (r.messages[-1]["content"], r.rejected)
        for r in built.dataset.examples.exclude(rejected="")
        if r.messages[-1]["content"] != answer_of(first, "adapter")
    }
    assert fixed == {
        ("The right answer.", answer_of(first, "adapter")),
        ("The right answer.", answer_of(first, "base")),
        (answer_of(second, "base"), answer_of(second, "adapter")),
    }


def test_each_build_is_the_next_version_of_its_name():
    study, (ann, *_), _ = feedback_study(prompts=2, raters=3)
    for comparison in comparisons(study):
        judge(comparison, ann, "adapter")
    one = preference_set_build(study=study, name="support")
    two = preference_set_build(study=study, name="support")
    other = preference_set_build(study=study, name="other", validation_share=0.5, seed=3)
    assert [(s.name, s.version) for s in (one, two, other)] == [
        ("support", 1),
        ("support", 2),
        ("other", 1),
    ]
    assert two.dataset.name == "support-v2"
    assert one.dataset.content_hash == two.dataset.content_hash
    assert other.rules["validation_share"] == 0.5


def test_a_final_call_overrides_the_raters():
    study, (ann, ben, _), _ = feedback_study(prompts=1, raters=3)
    (only,) = comparisons(study)
    judge(only, ann, "adapter")
    judge(only, ben, "adapter")
    # The reviewer saw output_b as A and called A better: output_b wins.
    adjudication_submit(comparison=only, reviewer=ReviewerFactory(), choice="a", left_is_a=False)
    built = preference_set_build(study=study, name="called")
    (row,) = built.dataset.examples.all()
    assert row.messages[-1]["content"] == only.output_b.text
    assert row.rejected == only.output_a.text
    assert built.rules["adjudicated"] == 1


def test_raters_the_gate_leaves_out_neither_vote_nor_correct():
    study, (ann, ben, cid), _ = feedback_study(prompts=2, raters=3)
    first, second = comparisons(study)
    # cid answers in half a second: the default gate (3 s median) leaves cid out.
    for comparison in (first, second):
        judge(comparison, ann, "adapter", time_on_task_ms=9000)
        judge(comparison, ben, "base", time_on_task_ms=9000)
        judge(comparison, cid, "base", time_on_task_ms=500, correction="Fast answer.")
    with pytest.raises(PreferenceError) as caught:
        preference_set_build(study=study, name="gated")
    assert str(caught.value).startswith(
        svc.ERROR_NO_PAIR.format(study=study.name, reasons="").split("(")[0]
    )
    assert f"{rules.NO_MAJORITY} 2" in str(caught.value)
    assert f"{rules.GATED} 2" in str(caught.value)
    assert f"{rules.CORRECTION_GATED} 2" in str(caught.value)


def test_gold_skips_and_unjudged_comparisons_are_counted_out():
    study, (ann, ben), _ = feedback_study(prompts=3, raters=2)
    first, second, _ = comparisons(study)
    judge(first, ann, "adapter")
    judge(first, ben, "skip")
    judge(second, ann, "skip")
    built = preference_set_build(study=study, name="few")
    assert built.pair_count == 1
    counts = left_out(built)
    assert (counts[rules.SKIPPED], counts[rules.NO_JUDGMENT], counts[rules.GOLD]) == (2, 2, 0)


@pytest.mark.parametrize(
    ("split", "message"),
    [("test", svc.ERROR_TEST_PROMPTS), ("validation", svc.ERROR_VALIDATION_PROMPTS)],
)
def test_studies_on_prompts_that_never_train_are_refused(split, message):
    study, (ann, _), _ = feedback_study(prompts=1, raters=2, split=split)
    (only,) = comparisons(study)
    judge(only, ann, "adapter")
    with pytest.raises(PreferenceError) as caught:
        preference_set_build(study=study, name="leak")
    assert str(caught.value) == message
    assert not PreferenceSet.objects.exists() and not Dataset.objects.filter(kind="preferences")


def test_a_study_on_training_prompts_may_build_a_set():
    study, (ann, _), _ = feedback_study(prompts=1, raters=2, split="train")
    (only,) = comparisons(study)
    judge(only, ann, "base")
    assert preference_set_build(study=study, name="seen").rules["prompt_splits"] == ["train"]


@pytest.mark.parametrize("name", ["", "has space", "x" * 81, "slash/name"])
def test_a_bad_name_is_refused(name):
    study, _, _ = feedback_study(prompts=1, raters=2)
    with pytest.raises(PreferenceError) as caught:
        preference_set_build(study=study, name=name)
    assert str(caught.value) == svc.ERROR_NAME.format(name=name)


@pytest.mark.parametrize("share", [-0.1, 0.6])
def test_a_bad_validation_share_is_refused(share):
    study, _, _ = feedback_study(prompts=1, raters=2)
    with pytest.raises(PreferenceError) as caught:
        preference_set_build(study=study, name="ok", validation_share=share)
    assert str(caught.value) == svc.ERROR_SHARE.format(share=share)


def test_a_study_with_no_decided_pair_stores_nothing():
    study, (ann, ben), _ = feedback_study(prompts=1, raters=2)
    (only,) = comparisons(study)
    judge(only, ann, "adapter")
    judge(only, ben, "base")
    with pytest.raises(PreferenceError) as caught:
        preference_set_build(study=study, name="split")
    assert str(caught.value) == svc.ERROR_NO_PAIR.format(
        study=study.name, reasons=f"{rules.NO_MAJORITY} 1"
    )
    assert not PreferenceSet.objects.exists() and not Dataset.objects.filter(kind="preferences")


def test_a_dataset_name_taken_by_an_import_is_refused_naming_it():
    study, (ann, _), _ = feedback_study(prompts=1, raters=2)
    (only,) = comparisons(study)
    judge(only, ann, "base")
    DatasetFactory(name="taken-v1")
    with pytest.raises(PreferenceError) as caught:
        preference_set_build(study=study, name="taken")
    assert "taken-v1" in str(caught.value)
    assert not PreferenceSet.objects.exists()


# The command.


def build(*args: str) -> str:
    out = StringIO()
    call_command("build_preferences", *args, stdout=out)
    return out.getvalue()


def test_the_command_builds_and_prints_the_counts_and_what_was_left_out():
    study, (ann, ben), _ = feedback_study(prompts=2, raters=2)
    first, second = comparisons(study)
    judge(first, ann, "adapter")
    judge(first, ben, "adapter", correction="Mine.")
    judge(second, ann, "tie")
    out = build("--study", str(study.pk), "--name", "support")
    assert out.splitlines() == [
        "built support v1 (dataset support-v1) from study "
        f"{study.pk}: 3 pairs (2 of them a correction over an answer shown), 1 SFT rows from "
        "corrections, 0 of them held out for validation; "
        "2 judgments of 2 raters",
        f"  left out 1 comparisons {rules.RULES[rules.TIED][1]}",
    ]


def test_the_command_json_has_the_rules():
    study, (ann, _), _ = feedback_study(prompts=2, raters=2)
    for comparison in comparisons(study):
        judge(comparison, ann, "base")
    report = json.loads(build("--study", str(study.pk), "--name", "s", "--json"))
    assert set(report) == {
        "name", "version", "dataset", "study", "pairs", "sft_rows", "judgments", "rules"
    }  # fmt: skip
    assert (report["pairs"], report["sft_rows"], report["dataset"]) == (2, 0, "s-v1")
    assert [r["rule"] for r in report["rules"]["left_out"]] == list(rules.RULES)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--study", "999", "--name", "x"], cmd.ERROR_UNKNOWN_STUDY.format(study_id=999)),
        (["--name", "bad name"], svc.ERROR_NAME.format(name="bad name")),
        (["--name", "x", "--validation-share", "0.9"], svc.ERROR_SHARE.format(share=0.9)),
    ],
)
def test_the_command_exits_2_with_the_reason(args, message):
    study, _, _ = feedback_study(prompts=1, raters=2)
    if "--study" not in args:
        args = ["--study", str(study.pk), *args]
    with pytest.raises(CommandError) as caught:
        build(*args)
    assert caught.value.returncode == 2
    assert str(caught.value) == message


def test_the_command_refuses_a_test_study():
    study, (ann, _), _ = feedback_study(prompts=1, raters=2, split="test")
    judge(comparisons(study)[0], ann, "base")
    with pytest.raises(CommandError) as caught:
        build("--study", str(study.pk), "--name", "leak")
    assert (caught.value.returncode, str(caught.value)) == (2, svc.ERROR_TEST_PROMPTS)
