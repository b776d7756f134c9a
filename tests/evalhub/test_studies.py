import json
from collections import Counter, defaultdict

import pytest

from evalhub.models import (
    GOLD_KINDS,
    Assignment,
    Comparison,
    Study,
    StudyStatus,
    System,
    SystemKind,
)
from evalhub.services import gold as gold_module
from evalhub.services import studies as svc
from evalhub.services.studies import (
    StudyError,
    study_add_raters,
    study_create,
    study_set_status,
)
from tests.evalhub.rating_fixtures import run_with_outputs
from tests.factories import (
    ExampleFactory,
    ExpertFactory,
    OutputFactory,
    PromptFactory,
    SystemFactory,
)
from trainer.models import Split

pytestmark = pytest.mark.django_db


def gold_lines(count: int = 3, reference: bool = False) -> list[str]:
    lines = []
    for i in range(count):
        record = {"prompt": f"Gold question {i}", "better": f"right {i}", "worse": f"wrong {i}"}
        if reference:
            record["reference"] = f"reference {i}"
        lines.append(json.dumps(record))
    return lines


def gold_items(count: int = 3, reference: bool = False) -> list[gold_module.GoldItem]:
    return gold_module.gold_read(gold_lines(count, reference))


def test_every_pair_of_systems_on_every_prompt_becomes_a_comparison():
    outputs = run_with_outputs(prompts=4)
    third = SystemFactory(name="third")
    for prompt in outputs.prompts:
        OutputFactory(system=third, prompt=prompt)
    study = study_create(name="s", systems=[*outputs.systems, third])

    pairs = Counter(
        (c.prompt_id, frozenset((c.output_a.system_id, c.output_b.system_id)))
        for c in Comparison.objects.filter(study=study).select_related("output_a", "output_b")
    )
    assert len(pairs) == 4 * 3 and set(pairs.values()) == {1}
    for c in Comparison.objects.filter(study=study):
        assert c.output_a.prompt_id == c.output_b.prompt_id == c.prompt_id
    assert set(study.systems.all()) == {*outputs.systems, third}


def test_only_prompts_answered_by_every_system_are_used():
    outputs = run_with_outputs(prompts=3)
    lonely = PromptFactory(dataset=outputs.run.dataset)
    OutputFactory(system=outputs.base, prompt=lonely)
    study = study_create(name="s", systems=outputs.systems)
    assert set(study.comparisons.values_list("prompt_id", flat=True)) == {
        p.pk for p in outputs.prompts
    }


def _with_test_prompts(outputs, count: int) -> list:
    """Add ``count`` test-split prompts, answered by both systems, beside the fixture's."""
    made = []
    for i in range(count):
        example = ExampleFactory(dataset=outputs.run.dataset, split=Split.TEST)
        prompt = PromptFactory(dataset=outputs.run.dataset, example=example)
        for system in outputs.systems:
            OutputFactory(system=system, prompt=prompt, text=f"{system.name} test answer {i}")
        made.append(prompt)
    return made


def test_a_study_is_on_one_splits_prompts_test_by_default():
    outputs = run_with_outputs(prompts=3, split=Split.FEEDBACK)
    tests = _with_test_prompts(outputs, 2)
    untraced = PromptFactory(dataset=outputs.run.dataset)  # no example: counts as test
    for system in outputs.systems:
        OutputFactory(system=system, prompt=untraced)
    decides = study_create(name="decides", systems=outputs.systems)
    learns = study_create(name="learns", systems=outputs.systems, split=Split.FEEDBACK)
    assert set(decides.comparisons.values_list("prompt_id", flat=True)) == {
        *(p.pk for p in tests),
        untraced.pk,
    }
    assert set(learns.comparisons.values_list("prompt_id", flat=True)) == {
        p.pk for p in outputs.prompts
    }


def test_a_split_without_answered_prompts_or_unknown_is_refused():
    outputs = run_with_outputs(prompts=2, split=Split.TEST)
    with pytest.raises(StudyError) as err:
        study_create(name="s", systems=outputs.systems, split=Split.FEEDBACK)
    names = ", ".join(s.name for s in sorted(outputs.systems, key=lambda s: s.pk))
    assert str(err.value) == svc.ERROR_NO_PROMPTS.format(split="feedback", systems=names)
    with pytest.raises(StudyError) as err:
        study_create(name="s", systems=outputs.systems, split="holdout")
    assert str(err.value) == svc.ERROR_SPLIT.format(split="holdout")


def test_a_prompt_count_samples_that_many_prompts_reproducibly():
    outputs = run_with_outputs(prompts=10)
    first = study_create(name="a", systems=outputs.systems, prompts=4, seed=3)
    again = study_create(name="b", systems=outputs.systems, prompts=4, seed=3)
    chosen = set(first.comparisons.values_list("prompt_id", flat=True))
    assert len(chosen) == 4
    assert chosen == set(again.comparisons.values_list("prompt_id", flat=True))


def test_asking_for_more_prompts_than_exist_is_refused():
    outputs = run_with_outputs(prompts=2)
    with pytest.raises(StudyError) as err:
        study_create(name="s", systems=outputs.systems, prompts=5)
    assert str(err.value) == svc.ERROR_NOT_ENOUGH_PROMPTS.format(available=2, count=5)


def test_each_comparison_goes_to_overlap_raters_and_loads_are_balanced():
    outputs = run_with_outputs(prompts=9)
    raters = [ExpertFactory() for _ in range(4)]
    study = study_create(name="s", systems=outputs.systems, raters=raters, overlap=3)

    per_comparison = Counter(
        Assignment.objects.filter(comparison__study=study).values_list("comparison", flat=True)
    )
    assert set(per_comparison.values()) == {3} and len(per_comparison) == 9
    loads = Counter(
        Assignment.objects.filter(comparison__study=study).values_list("rater", flat=True)
    )
    assert max(loads.values()) - min(loads.values()) <= 1 and sum(loads.values()) == 27


def test_each_rater_sees_each_system_on_the_left_half_the_time():
    outputs = run_with_outputs(prompts=11)
    raters = [ExpertFactory() for _ in range(2)]
    study = study_create(name="s", systems=outputs.systems, raters=raters, overlap=2)
    left = defaultdict(Counter)
    for a in Assignment.objects.filter(comparison__study=study).select_related("left_output"):
        assert a.left_output_id in (a.comparison.output_a_id, a.comparison.output_b_id)
        left[a.rater_id][a.left_output.system_id] += 1
    for counts in left.values():
        assert sum(counts.values()) == 11
        assert abs(counts[outputs.base.pk] - counts[outputs.adapter.pk]) == 1


def test_tokens_are_unique_and_not_made_of_ids():
    outputs = run_with_outputs(prompts=5)
    study = study_create(
        name="s", systems=outputs.systems, raters=[ExpertFactory(), ExpertFactory()]
    )
    mine = Assignment.objects.filter(comparison__study=study)
    tokens = list(mine.values_list("token", flat=True))
    assert len(set(tokens)) == len(tokens) == 10
    assert all(len(t) == 43 for t in tokens)


def test_gold_items_reach_every_rater_under_reserved_systems():
    outputs = run_with_outputs(prompts=4)
    raters = [ExpertFactory() for _ in range(3)]
    study = study_create(
        name="s", systems=outputs.systems, raters=raters, overlap=1, gold=gold_items(3)
    )
    gold = list(Comparison.objects.filter(study=study, is_gold=True))
    assert len(gold) == 3
    for comparison in gold:
        better = comparison.output_a if comparison.gold_answer == "a" else comparison.output_b
        assert better.text.startswith("right") and better.system.kind == SystemKind.GOLD_BETTER
        assert comparison.prompt.dataset_id == outputs.run.dataset_id
        assert comparison.prompt.example_id is None
        assert comparison.assignments.count() == 3
    assert not study.systems.filter(kind__in=GOLD_KINDS).exists()


def test_gold_answers_are_not_always_stored_first():
    outputs = run_with_outputs(prompts=2)
    study = study_create(name="s", systems=outputs.systems, gold=gold_items(40), seed=1)
    answers = Counter(study.comparisons.filter(is_gold=True).values_list("gold_answer", flat=True))
    assert answers["a"] > 5 and answers["b"] > 5


def test_gold_file_errors_name_the_line(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text(gold_lines(1)[0] + "\n\n" + '{"prompt": "q", "better": "x"}\n')
    with pytest.raises(gold_module.GoldError) as err:
        gold_module.gold_load(path)
    assert str(err.value) == gold_module.ERROR_GOLD_LINE.format(
        source=str(path), line=3, problem=gold_module.GOLD_FIELD.format(field="worse")
    )


def test_gold_needs_references_when_the_study_shows_them():
    outputs = run_with_outputs(prompts=2)
    with pytest.raises(StudyError) as err:
        study_create(name="s", systems=outputs.systems, show_reference=True, gold=gold_items(1))
    assert gold_module.GOLD_NEEDS_REFERENCE in str(err.value)
    study = study_create(
        name="s", systems=outputs.systems, show_reference=True, gold=gold_items(1, reference=True)
    )
    assert study.comparisons.filter(is_gold=True, prompt__reference="reference 0").exists()


def test_a_missing_gold_file_is_a_clear_error(tmp_path):
    with pytest.raises(gold_module.GoldError) as err:
        gold_module.gold_load(tmp_path / "nope.jsonl")
    assert str(err.value).startswith("Cannot read the gold file")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"systems": "one"}, svc.ERROR_TOO_FEW_SYSTEMS.format(count=1)),
        ({"overlap": 0}, svc.ERROR_OVERLAP.format(overlap=0)),
        ({"prompts": 0}, svc.ERROR_PROMPT_COUNT.format(count=0)),
        ({"name": "  "}, svc.ERROR_NAME_EMPTY),
        ({"criteria": ["style", "Style"]}, svc.ERROR_CRITERION.format(name="Style")),
        ({"raters": 1}, svc.ERROR_TOO_FEW_RATERS.format(overlap=2, count=1)),
        ({"name": "zebra-run vs base"}, svc.ERROR_NAME_REVEALS.format(found="zebra-run")),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_written(kwargs, message):
    outputs = run_with_outputs(prompts=2)
    args = {"name": "s", "systems": outputs.systems, "run": outputs.run}
    args.update(kwargs)
    if kwargs.get("systems") == "one":
        args["systems"] = [outputs.base]
    if "raters" in kwargs:
        args["raters"] = [ExpertFactory() for _ in range(kwargs["raters"])]
    with pytest.raises(StudyError) as err:
        study_create(**args)
    assert str(err.value) == message
    assert not Study.objects.exists() and not Assignment.objects.exists()


def test_a_taken_name_is_refused():
    outputs = run_with_outputs(prompts=2)
    study_create(name="same", systems=outputs.systems)
    with pytest.raises(StudyError) as err:
        study_create(name="same", systems=outputs.systems)
    assert str(err.value) == svc.ERROR_NAME_TAKEN.format(name="same")


def test_gold_systems_cannot_be_compared():
    outputs = run_with_outputs(prompts=2)
    study_create(name="g", systems=outputs.systems, gold=gold_items(1))
    gold_system = System.objects.get(kind=SystemKind.GOLD_BETTER)
    with pytest.raises(StudyError):
        study_create(name="s", systems=[outputs.base, gold_system])


def test_added_raters_fill_gaps_and_existing_assignments_stay():
    outputs = run_with_outputs(prompts=6)
    first = [ExpertFactory(), ExpertFactory()]
    study = study_create(name="s", systems=outputs.systems, raters=first, gold=gold_items(2))
    fields = ("token", "rater", "left_output", "position")
    before = set(Assignment.objects.values_list(*fields))

    newcomer = ExpertFactory()
    created = study_add_raters(study=study, raters=[newcomer])
    # Every comparison already has two raters: the newcomer gets the gold items only.
    assert {a.comparison.is_gold for a in created} == {True} and len(created) == 2
    assert before <= set(Assignment.objects.values_list(*fields))

    more = study_add_raters(study=study, raters=[], overlap=3)
    assert len(more) == 6 and {a.rater_id for a in more} == {newcomer.pk}
    study.refresh_from_db()
    assert study.overlap == 3
    positions = sorted(newcomer.assignments.values_list("position", flat=True))
    assert positions == list(range(8))


def test_the_overlap_cannot_be_lowered_and_closed_studies_take_no_raters():
    outputs = run_with_outputs(prompts=2)
    study = study_create(name="s", systems=outputs.systems, raters=[ExpertFactory()], overlap=1)
    with pytest.raises(StudyError):
        study_add_raters(study=study, raters=[], overlap=0)
    study_set_status(study=study, status=StudyStatus.CLOSED)
    with pytest.raises(StudyError) as err:
        study_add_raters(study=study, raters=[ExpertFactory()])
    assert str(err.value) == svc.ERROR_STUDY_CLOSED.format(name="s")


def test_status_moves_through_open_pause_close():
    outputs = run_with_outputs(prompts=2)
    study = study_create(name="s", systems=outputs.systems, raters=[ExpertFactory()], overlap=1)
    for status in ("open", "paused", "open", "closed", "open"):
        study = study_set_status(study=study, status=status)
        assert Study.objects.get(pk=study.pk).status == status


def test_impossible_status_moves_are_refused():
    outputs = run_with_outputs(prompts=2)
    study = study_create(name="s", systems=outputs.systems)
    with pytest.raises(StudyError) as err:
        study_set_status(study=study, status="open")
    assert str(err.value) == svc.ERROR_OPEN_WITHOUT_RATERS
    with pytest.raises(StudyError) as err:
        study_set_status(study=study, status="paused")
    assert str(err.value) == svc.ERROR_STATUS_TRANSITION.format(current="draft", target="paused")
    with pytest.raises(StudyError):
        study_set_status(study=study, status="archived")
