"""outputs_generate end to end with a tiny random Llama and LoRA adapter made in the test."""

import pytest

from evalhub.models import Output
from evalhub.selectors.outputs import OutputsError, evaluation_prompts, run_systems
from evalhub.services import outputs as svc
from tests.factories import (
    BaseModelFactory,
    ComparisonFactory,
    FineTuneRunFactory,
    held_out_questions,
)
from trainer.engine import generate as generation
from trainer.engine.generate import DecodingConfig
from trainer.models import Split

pytestmark = pytest.mark.django_db
QUESTIONS = ["what is the cat", "where is the big dog", "who sat on the mat", "one two three"]
GREEDY = DecodingConfig(max_new_tokens=6)


@pytest.fixture
def run(tiny):
    model_dir, adapter_dir = tiny
    run = FineTuneRunFactory(
        base_model=BaseModelFactory(name="tiny-llama", source=str(model_dir)),
        adapter_path=str(adapter_dir),
    )
    held_out_questions(run.dataset, QUESTIONS)
    return run


def stored(run, kind):
    system = run_systems(run=run)[kind]
    return {o.prompt_id: o for o in Output.objects.filter(system=system)}


def test_base_and_adapter_answer_every_held_out_prompt(run):
    reports = svc.outputs_generate(run=run, decoding=GREEDY, batch_size=3)

    assert [(r.generated, r.kept) for r in reports] == [(4, 0), (4, 0)]
    base, adapter = stored(run, "base"), stored(run, "adapter")
    assert len(base) == len(adapter) == 4
    assert {o.text for o in base.values()} != {o.text for o in adapter.values()}
    for output in [*base.values(), *adapter.values()]:
        assert 0 <= output.token_count <= 6 and output.latency_ms > 0
    systems = run_systems(run=run)
    recorded = {**GREEDY.as_dict(), "quantization": "none", "dtype": "float32"}
    assert systems["base"].decoding == systems["adapter"].decoding == recorded


def test_stored_outputs_equal_direct_generation_on_the_same_prompts(run, tiny):
    svc.outputs_generate(run=run, decoding=GREEDY, systems=["adapter"])
    prompts = list(evaluation_prompts(dataset=run.dataset))
    loaded = generation.load_model(tiny[0], adapter_dir=tiny[1], device="cpu")
    direct = generation.generate(
        loaded, [p.messages for p in prompts], decoding=GREEDY, use_adapter=True
    )
    adapter = stored(run, "adapter")
    assert [adapter[p.pk].text for p in prompts] == [d.text for d in direct]


def test_a_second_run_generates_nothing_and_loads_no_model(run, monkeypatch):
    svc.outputs_generate(run=run, decoding=GREEDY)
    before = {o.pk: o.text for o in Output.objects.all()}

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded although every output exists")

    monkeypatch.setattr(generation, "load_model", refuse)
    reports = svc.outputs_generate(run=run, decoding=GREEDY)
    assert [(r.generated, r.kept) for r in reports] == [(0, 4), (0, 4)]
    assert {o.pk: o.text for o in Output.objects.all()} == before


def test_only_missing_outputs_are_generated(run):
    svc.outputs_generate(run=run, decoding=GREEDY)
    missing = Output.objects.filter(system=run_systems(run=run)["adapter"]).first()
    kept = set(Output.objects.exclude(pk=missing.pk).values_list("pk", flat=True))
    missing.delete()
    reports = svc.outputs_generate(run=run, decoding=GREEDY)
    assert [(r.generated, r.kept) for r in reports] == [(0, 4), (1, 3)]
    assert kept < set(Output.objects.values_list("pk", flat=True))


def test_an_interrupted_run_keeps_finished_batches_and_resumes(run, monkeypatch):
    real_store, calls = svc.outputs_store, []

    def store_then_fail(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_store(**kwargs)

    monkeypatch.setattr(svc, "outputs_store", store_then_fail)
    with pytest.raises(KeyboardInterrupt):
        svc.outputs_generate(run=run, decoding=GREEDY, systems=["base"], batch_size=2)
    assert Output.objects.count() == 2
    monkeypatch.setattr(svc, "outputs_store", real_store)
    [report] = svc.outputs_generate(run=run, decoding=GREEDY, systems=["base"], batch_size=2)
    assert (report.generated, report.kept) == (2, 2)


def test_overwrite_regenerates_every_output(run):
    svc.outputs_generate(run=run, decoding=GREEDY)
    reports = svc.outputs_generate(run=run, decoding=GREEDY, overwrite=True)
    assert [(r.generated, r.kept) for r in reports] == [(4, 0), (4, 0)]
    assert Output.objects.count() == 8


def test_other_decoding_settings_need_overwrite(run):
    svc.outputs_generate(run=run, decoding=GREEDY, systems=["base"])
    longer = DecodingConfig(max_new_tokens=9)
    with pytest.raises(OutputsError, match="already has outputs generated with"):
        svc.outputs_generate(run=run, decoding=longer, systems=["base"])
    svc.outputs_generate(run=run, decoding=longer, systems=["base"], overwrite=True)
    assert run_systems(run=run)["base"].decoding["max_new_tokens"] == 9


def test_another_precision_needs_overwrite_too(run):
    svc.outputs_generate(run=run, decoding=GREEDY, systems=["base"])
    with pytest.raises(OutputsError, match="quantization 'none' → 'nf4'"):
        svc.outputs_generate(run=run, decoding=GREEDY, systems=["base"], quantization="nf4")


def test_outputs_in_a_study_are_not_overwritten(run):
    svc.outputs_generate(run=run, decoding=GREEDY)
    base = stored(run, "base")
    adapter = stored(run, "adapter")
    prompt_id = next(iter(base))
    ComparisonFactory(prompt_id=prompt_id, output_a=base[prompt_id], output_b=adapter[prompt_id])
    with pytest.raises(OutputsError, match="part of a study"):
        svc.outputs_generate(run=run, decoding=GREEDY, overwrite=True)
    assert {o.pk: o.text for o in stored(run, "base").values()} == {
        o.pk: o.text for o in base.values()
    }


def test_base_alone_needs_no_adapter(run):
    run.adapter_path = ""
    run.save()
    [report] = svc.outputs_generate(run=run, decoding=GREEDY, systems=["base"])
    assert report.generated == 4
    with pytest.raises(OutputsError, match="has no adapter yet"):
        svc.outputs_generate(run=run, decoding=GREEDY)


def test_unknown_system_kinds_are_refused(run):
    with pytest.raises(OutputsError, match="subset of base, adapter"):
        svc.outputs_generate(run=run, decoding=GREEDY, systems=["base", "reference"])


def test_a_dataset_without_held_out_prompts_is_an_error(run):
    run.dataset.examples.filter(split=Split.TEST).delete()
    with pytest.raises(OutputsError, match="has no test examples"):
        svc.outputs_generate(run=run, decoding=GREEDY)


def test_a_base_model_that_cannot_be_found_is_reported(run, tmp_path):
    run.base_model.source = str(tmp_path / "no-such-model")
    run.base_model.save()
    with pytest.raises(OutputsError, match="neither a packaged model"):
        svc.outputs_generate(run=run, decoding=GREEDY)


def test_the_fast_path_is_recorded_and_answers_like_the_plain_one(run, monkeypatch):
    """On CUDA the engine picks the fast path itself; here it is made to, on CPU."""
    svc.outputs_generate(run=run, decoding=GREEDY)
    plain = {
        kind: {k: o.text for k, o in stored(run, kind).items()} for kind in ("base", "adapter")
    }
    resolve = generation.resolve_precision
    monkeypatch.setattr(
        generation,
        "resolve_precision",
        lambda *args, **kwargs: resolve(*args, **{**kwargs, "lora": "merged"}),
    )
    with pytest.raises(OutputsError, match="lora None → 'merged'"):
        svc.outputs_generate(run=run, decoding=GREEDY)
    svc.outputs_generate(run=run, decoding=GREEDY, overwrite=True)
    systems = run_systems(run=run)
    recorded = {**GREEDY.as_dict(), "quantization": "none", "dtype": "float32", "lora": "merged"}
    assert systems["base"].decoding == systems["adapter"].decoding == recorded
    for kind in ("base", "adapter"):
        assert {k: o.text for k, o in stored(run, kind).items()} == plain[kind]
