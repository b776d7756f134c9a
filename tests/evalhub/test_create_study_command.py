import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from evalhub.management.commands import create_study as cmd
from evalhub.models import Assignment, Study
from evalhub.services.gold import ERROR_GOLD_LINE, GOLD_SAME
from evalhub.services.studies import ERROR_TOO_FEW_RATERS
from tests.evalhub.rating_fixtures import run_with_outputs
from tests.factories import ExpertFactory, OutputFactory, SystemFactory, UserFactory

pytestmark = pytest.mark.django_db


def create(*args: str) -> str:
    out = StringIO()
    call_command("create_study", *args, stdout=out)
    return out.getvalue()


def test_defaults_compare_the_runs_base_and_adapter_with_every_expert():
    outputs = run_with_outputs(prompts=5)
    alice, bob = ExpertFactory(username="alice"), ExpertFactory(username="bob")
    UserFactory(username="not-an-expert")
    out = create("--run", str(outputs.run.pk))
    study = Study.objects.get()
    assert set(study.systems.all()) == set(outputs.systems) and study.run == outputs.run
    assert study.status == "draft"
    assert out.splitlines() == [
        f"created study {study.pk} 'Study' (draft): 5 comparisons (0 gold), "
        "10 assignments to 2 raters",
        "  alice: 5 assignments",
        "  bob: 5 assignments",
    ]
    assert {a.rater for a in Assignment.objects.all()} == {alice, bob}


def test_split_feedback_makes_a_study_on_feedback_prompts():
    outputs = run_with_outputs(prompts=3, split="feedback")
    ExpertFactory(username="alice"), ExpertFactory(username="bob")
    create("--run", str(outputs.run.pk), "--split", "feedback", "--name", "Round two")
    study = Study.objects.get()
    assert set(study.comparisons.values_list("prompt__example__split", flat=True)) == {"feedback"}
    with pytest.raises(CommandError) as caught:
        create("--run", str(outputs.run.pk), "--name", "Final")
    assert caught.value.returncode == 2
    assert "No test prompt has an output" in str(caught.value)


def test_every_option_reaches_the_study(tmp_path):
    outputs = run_with_outputs(prompts=6)
    for name in ("ann", "ben", "cid"):
        ExpertFactory(username=name)
    guidelines = tmp_path / "guide.md"
    guidelines.write_text("# Be strict\nPrefer correct answers.")
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        json.dumps({"prompt": "p", "better": "b", "worse": "w", "reference": "r"}) + "\n"
    )
    out = create(
        "--run", str(outputs.run.pk),
        "--systems", "base,adapter",
        "--prompts", "4",
        "--raters", "ann,ben,cid",
        "--overlap", "3",
        "--criteria", "correctness, helpfulness,style",
        "--guidelines", str(guidelines),
        "--show-reference",
        "--gold", str(gold),
        "--name", "Spring review",
        "--seed", "9",
        "--open",
    )  # fmt: skip
    study = Study.objects.get(name="Spring review")
    assert (study.status, study.overlap, study.seed, study.show_reference) == ("open", 3, 9, True)
    assert study.criteria == ["correctness", "helpfulness", "style"]
    assert study.guidelines.startswith("# Be strict")
    assert study.comparisons.count() == 5 and study.comparisons.filter(is_gold=True).count() == 1
    assert "5 comparisons (1 gold), 15 assignments to 3 raters" in out


def test_named_systems_can_join_the_run_defaults():
    outputs = run_with_outputs(prompts=2)
    other = SystemFactory(name="imported-gpt")
    for prompt in outputs.prompts:
        OutputFactory(system=other, prompt=prompt)
    ExpertFactory(username="ann")
    ExpertFactory(username="ben")
    create("--run", str(outputs.run.pk), "--systems", "base,adapter,imported-gpt")
    assert Study.objects.get().comparisons.count() == 2 * 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--systems", "base,ghost"],
            cmd.ERROR_UNKNOWN_SYSTEMS.split(".")[0].format(names="ghost"),
        ),
        (["--raters", "ann,zed"], cmd.ERROR_UNKNOWN_RATERS.format(names="zed")),
        (["--prompts", "many"], cmd.ERROR_PROMPTS.format(value="many")),
        (["--overlap", "5"], ERROR_TOO_FEW_RATERS.format(overlap=5, count=1)),
        (["--guidelines", "/nonexistent/guide.md"], "Cannot read the guidelines file"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message_and_write_nothing(args, message):
    outputs = run_with_outputs(prompts=2)
    ExpertFactory(username="ann")
    with pytest.raises(CommandError) as err:
        create("--run", str(outputs.run.pk), "--raters", "ann", *args)
    assert err.value.returncode == 2
    assert message in str(err.value)
    assert not Study.objects.exists()


def test_an_unknown_run_exits_2():
    with pytest.raises(CommandError) as err:
        create("--run", "999999")
    assert err.value.returncode == 2 and str(err.value) == cmd.ERROR_UNKNOWN_RUN.format(
        run_id=999999
    )


def test_a_run_without_an_adapter_system_says_what_to_do():
    outputs = run_with_outputs(prompts=2)
    outputs.adapter.outputs.all().delete()
    outputs.adapter.delete()
    ExpertFactory(username="ann")
    with pytest.raises(CommandError) as err:
        create("--run", str(outputs.run.pk))
    assert str(err.value) == cmd.ERROR_NO_DEFAULT_SYSTEM.format(
        run_id=outputs.run.pk, kind="adapter"
    )


def test_a_bad_gold_file_names_its_line_and_creates_nothing(tmp_path):
    outputs = run_with_outputs(prompts=2)
    ExpertFactory()
    ExpertFactory()
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"prompt": "q", "better": "same", "worse": "same"}\n')
    with pytest.raises(CommandError) as error:
        create("--run", str(outputs.run.pk), "--gold", str(gold))
    assert str(error.value) == ERROR_GOLD_LINE.format(source=str(gold), line=1, problem=GOLD_SAME)
    assert not Study.objects.exists()


def test_an_adaptive_study_says_its_items_are_drawn_later_and_its_budget():
    outputs = run_with_outputs(prompts=5)
    ExpertFactory(username="alice"), ExpertFactory(username="bob"), ExpertFactory(username="cy")
    out = create("--run", str(outputs.run.pk), "--allocation", "adaptive", "--overlap", "2")
    study = Study.objects.get()
    assert out.splitlines() == [
        f"created study {study.pk} 'Study' (draft): 5 comparisons (0 gold), adaptive: each item "
        "drawn when a rater asks, at most 10 judgments from 3 raters"
    ]
    assert not Assignment.objects.exists()
