"""What managers read: datasets, runs with loss curves, systems with metric means, comparisons
and judgments unblinded."""

import pytest

from evalhub import models as ev
from tests import factories as f
from trainer.models import MetricKind, Split


def test_dataset_detail_counts_examples_per_split_and_carries_the_lint_report(manager, login):
    dataset = f.DatasetFactory(lint_report=[{"rule": "empty_turn", "line": 3}], lint_warnings=1)
    for split in (Split.TRAIN, Split.TRAIN, Split.TRAIN, Split.VALIDATION, Split.TEST):
        f.ExampleFactory(dataset=dataset, split=split)
    data = login(manager).get(f"/api/datasets/{dataset.id}/").json()
    assert (data["example_count"], data["train_count"], data["validation_count"]) == (5, 3, 1)
    assert data["test_count"] == 1
    assert data["lint_report"] == [{"rule": "empty_turn", "line": 3}]


def test_run_detail_carries_the_loss_curves_in_step_order(manager, login):
    run = f.FineTuneRunFactory(name="curve-run", total_steps=20, step=20)
    for step, loss in ((10, 1.5), (5, 2.0), (20, 1.1)):
        run.metrics.create(kind=MetricKind.TRAIN, step=step, loss=loss)
    run.metrics.create(kind=MetricKind.VALIDATION, step=20, loss=1.3)
    data = login(manager).get(f"/api/runs/{run.id}/").json()
    curve = [(m["kind"], m["step"], m["loss"]) for m in data["metrics"]]
    assert curve == [
        ("train", 5, 2.0),
        ("train", 10, 1.5),
        ("train", 20, 1.1),
        ("validation", 20, 1.3),
    ]
    assert data["hyperparameters"]["rank"] == 16
    listed = login(manager).get("/api/runs/").json()["results"]
    assert "metrics" not in listed[0]


def test_run_detail_carries_the_resolved_plan_beside_the_hyperparameters(manager, login):
    run = f.FineTuneRunFactory(plan={"total_steps": 24, "eval_every": 8})
    data = login(manager).get(f"/api/runs/{run.id}/").json()
    assert data["plan"] == {"total_steps": 24, "eval_every": 8}
    assert data["hyperparameters"] == {"rank": 16, "alpha": 32, "learning_rate": 2e-4}


def test_run_detail_names_the_runs_it_resumes_or_retries(manager, login):
    first = f.FineTuneRunFactory()
    resumed = f.FineTuneRunFactory(resumed_from=first)
    retry = f.FineTuneRunFactory(retry_of=first)
    client = login(manager)
    for run, fields in ((resumed, (first.pk, None)), (retry, (None, first.pk))):
        data = client.get(f"/api/runs/{run.id}/").json()
        assert (data["resumed_from"], data["retry_of"]) == fields


def test_system_detail_averages_each_metric_over_scored_outputs(manager, login):
    system = f.SystemFactory(name="averaged")
    f.OutputFactory(system=system, metrics={"rouge1": 0.2, "bertscore_f1": 0.9})
    f.OutputFactory(system=system, metrics={"rouge1": 0.6})
    f.OutputFactory(system=system, metrics={})  # not scored yet: counts for nothing
    data = login(manager).get(f"/api/systems/{system.id}/").json()
    assert data["output_count"] == 3
    assert data["metric_means"] == pytest.approx({"rouge1": 0.4, "bertscore_f1": 0.9})


def test_comparison_shows_systems_gold_and_every_raters_assignment(world, login):
    data = login(world.manager).get(f"/api/comparisons/{world.gold.id}/").json()
    assert data["is_gold"] is True and data["gold_answer"] == "b"
    assert data["output_a"]["system"]["name"] == "zebra-base-system"
    assert data["output_b"]["system"]["name"] == "quokka-adapter-system"
    assert [a["rater"] for a in data["assignments"]] == [world.expert.username]


def test_comparisons_filter_by_study(world, login):
    f.ComparisonFactory()  # another study's
    client = login(world.manager)
    assert client.get("/api/comparisons/").json()["count"] == 3
    results = client.get(f"/api/comparisons/?study={world.study.id}").json()["results"]
    assert {c["id"] for c in results} == {world.comparison.id, world.gold.id}


@pytest.mark.parametrize(
    ("left", "choice", "preferred"),
    [
        ("output_a", ev.Choice.A, "zebra-base-system"),
        ("output_a", ev.Choice.B, "quokka-adapter-system"),
        ("output_b", ev.Choice.A, "quokka-adapter-system"),
        ("output_b", ev.Choice.B, "zebra-base-system"),
        ("output_b", ev.Choice.TIE, None),
        ("output_a", ev.Choice.BOTH_BAD, None),
    ],
)
def test_judgment_is_unblinded_from_what_the_rater_saw(world, login, left, choice, preferred):
    world.mine.left_output = getattr(world.comparison, left)
    world.mine.save()
    judgment = f.JudgmentFactory(assignment=world.mine, choice=choice)
    data = login(world.manager).get(f"/api/judgments/{judgment.id}/").json()
    assert data["left_system"] == getattr(world.comparison, left).system.name
    assert data["preferred_system"] == preferred
    assert data["rater"] == world.expert.username
    assert data["study"] == world.study.id


def test_judgments_filter_by_study(world, login):
    f.JudgmentFactory()  # another study's
    client = login(world.manager)
    assert client.get("/api/judgments/").json()["count"] == 2
    results = client.get(f"/api/judgments/?study={world.study.id}").json()["results"]
    assert [j["id"] for j in results] == [world.judgment.id]
