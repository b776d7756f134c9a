"""The evaluation tasks are thin: they hand the run and the settings to the output services
(stood in for here; the services have their own tests) and return a JSON-able summary."""

import json

import pytest

from evalhub import tasks
from evalhub.services.outputs import GenerationReport
from evalhub.services.scores import ScoreReport
from tests.factories import FineTuneRunFactory


@pytest.fixture
def calls(monkeypatch):
    seen = []

    def generate(**kwargs):
        seen.append(("generate", kwargs))
        return [GenerationReport(system="adapter:run-1", generated=3, kept=1, seconds=0.5)]

    def score(**kwargs):
        seen.append(("score", kwargs))
        return ScoreReport(scored=8, empty=1, skipped=0, encoder="minilm")

    monkeypatch.setattr(tasks, "outputs_generate", generate)
    monkeypatch.setattr(tasks, "outputs_score", score)
    return seen


@pytest.mark.django_db
def test_evaluate_generates_then_scores_the_run_on_the_gpu_queue(calls):
    run = FineTuneRunFactory()
    result = tasks.evaluate.enqueue(run_id=run.pk, max_new_tokens=80)
    assert tasks.evaluate.queue_name == tasks.generate.queue_name == tasks.score.queue_name == "gpu"
    assert [name for name, _ in calls] == ["generate", "score"]
    generate = calls[0][1]
    assert generate["run"] == run and generate["split"] == "test"
    assert generate["decoding"].max_new_tokens == 80 and generate["decoding"].greedy
    assert generate["systems"] == ["base", "adapter"] and generate["overwrite"] is False
    assert calls[1][1] == {"run": run, "split": "test"}
    value = result.return_value
    assert json.loads(json.dumps(value)) == value
    assert value["generated"][0]["generated"] == 3 and value["scored"]["scored"] == 8


@pytest.mark.django_db
def test_generate_passes_its_decoding_settings(calls):
    run = FineTuneRunFactory()
    tasks.generate.enqueue(
        run_id=run.pk, temperature=0.7, top_p=0.9, seed=3, systems=["adapter"], overwrite=True
    )
    decoding = calls[0][1]["decoding"]
    assert (decoding.temperature, decoding.top_p, decoding.seed) == (0.7, 0.9, 3)
    assert calls[0][1]["systems"] == ["adapter"] and calls[0][1]["overwrite"] is True


@pytest.mark.django_db
def test_an_unknown_run_fails_the_task_with_the_services_message(calls):
    result = tasks.score.enqueue(run_id=424242)
    assert result.status == "FAILED"
    assert "run 424242 does not exist" in result.errors[0].traceback
    assert calls == []
