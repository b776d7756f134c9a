"""Migrations move what users stored: a database made before systems were known by their
fields keeps every system, output and comparison, with each one's identity in its fields;
draws made before adaptive allocation calibrated the metric keep the prediction they used;
prompts made before their hash was stored gain it."""

from evalhub.models import Allocation, Comparison
from evalhub.services.allocation import allocation_next
from tests.evalhub.rating_fixtures import open_study
from tests.factories import PromptFactory
from trainer.datasets.normalise import content_hash

# trainer too: the historical models used here must match the tables they write to.
BEFORE = [("evalhub", "0001_initial"), ("trainer", "0001_initial")]
AFTER = [("evalhub", "0002_systems_known_by_fields")]


def test_systems_named_by_the_old_conventions_keep_their_rows_and_gain_their_identity(
    migrate_to,
):
    apps = migrate_to(BEFORE)
    BaseModel = apps.get_model("trainer", "BaseModel")
    Dataset = apps.get_model("trainer", "Dataset")
    FineTuneRun = apps.get_model("trainer", "FineTuneRun")
    System = apps.get_model("evalhub", "System")
    Prompt = apps.get_model("evalhub", "Prompt")
    Output = apps.get_model("evalhub", "Output")

    model = BaseModel.objects.create(name="smollm2-135m", source="smollm2-135m")
    dataset = Dataset.objects.create(name="kitchen", content_hash="h")
    first, second = (
        FineTuneRun.objects.create(name=n, dataset=dataset, base_model=model) for n in "ab"
    )
    base = System.objects.create(
        name=f"base:smollm2-135m:run-{second.pk}", kind="base", run=second, base_model=model
    )
    adapter = System.objects.create(name=f"adapter:run-{second.pk}", kind="adapter", run=second)
    # Two base systems of one run, possible before the constraint: neither may be lost.
    stray = System.objects.create(name="base:old", kind="base", run=first, base_model=model)
    kept = System.objects.create(
        name=f"base:smollm2-135m:run-{first.pk}", kind="base", run=first, base_model=model
    )
    better = System.objects.create(name="gold:better", kind="reference")
    worse = System.objects.create(name="gold:worse", kind="reference")
    references = System.objects.create(name="references", kind="reference")
    prompt = Prompt.objects.create(dataset=dataset, messages=[{"role": "user", "content": "q"}])
    for system in (base, adapter, stray, kept, better, worse, references):
        Output.objects.create(system=system, prompt=prompt, text=system.name)

    apps = migrate_to(AFTER)
    System = apps.get_model("evalhub", "System")
    kinds = dict(System.objects.values_list("name", "kind"))
    assert kinds == {
        base.name: "base",
        adapter.name: "adapter",
        kept.name: "base",
        stray.name: "imported",
        "gold:better": "gold_better",
        "gold:worse": "gold_worse",
        "references": "reference",
    }
    assert System.objects.get(pk=stray.pk).run_id == first.pk
    assert "second base system of run" in System.objects.get(pk=stray.pk).description
    Output = apps.get_model("evalhub", "Output")
    assert sorted(Output.objects.values_list("text", flat=True)) == sorted(kinds)

    # And back: gold kinds become the reference systems they were.
    apps = migrate_to(BEFORE)
    System = apps.get_model("evalhub", "System")
    assert System.objects.get(name="gold:better").kind == "reference"


def test_draws_made_before_calibration_keep_the_metric_prediction_they_were_made_with(
    migrate_to,
):
    study, (ada, bob), _ = open_study(prompts=4, allocation=Allocation.ADAPTIVE)
    comparisons = list(Comparison.objects.filter(study=study, is_gold=False).order_by("pk"))
    for comparison, prediction in zip(comparisons, (0.2, None, 0.7, 0.9), strict=True):
        comparison.prediction = prediction
        comparison.save()
    allocation_next(study=study, rater=ada)
    allocation_next(study=study, rater=bob)

    migrate_to([("evalhub", "0011_study_signal")])
    apps = migrate_to([("evalhub", "0012_draw_calibrated_prediction")])
    Draw = apps.get_model("evalhub", "Draw")
    expected = {c.pk: p for c, p in zip(comparisons, (0.2, 0.5, 0.7, 0.9), strict=True)}
    draws = Draw.objects.filter(study_id=study.pk).values_list(
        "assignment__comparison_id", "prediction", "centre"
    )
    assert draws
    for comparison, prediction, centre in draws:
        assert prediction == expected[comparison]
        assert centre == (0.2 + 0.5 + 0.7 + 0.9) / 4


def test_prompts_made_before_the_stored_hash_gain_the_hash_of_their_conversation(migrate_to):
    asked = PromptFactory(messages=[{"role": "user", "content": "how long to boil an egg?"}])
    no_user = PromptFactory(messages=[{"role": "system", "content": "a system turn alone"}])

    migrate_to([("evalhub", "0013_judge_run_heartbeat")])
    Prompt = migrate_to([("evalhub", "0014_prompt_hash")]).get_model("evalhub", "Prompt")
    stored = dict(Prompt.objects.values_list("pk", "prompt_hash"))
    assert stored == {asked.pk: content_hash(asked.messages), no_user.pk: ""}
