import pytest
from django.test import Client

from tests.factories import FineTuneRunFactory
from trainer.models import MetricKind, RunMetric, RunStatus


def make_run(**fields):
    fields.setdefault("environment", {"device": "cpu", "versions": {"torch": "2.13.0"}})
    fields.setdefault("plan", {"eval_every": 10})
    run = FineTuneRunFactory(
        name="support-r16",
        status=RunStatus.RUNNING,
        step=30,
        total_steps=120,
        eta_seconds=200,
        hyperparameters={"rank": 16, "alpha": 32},
        trainable_params=4_884_480,
        total_params=139_399_488,
        adapter_size_bytes=19_545_000,
        adapter_path="/data/runs/run-1/adapter",
        best_val_loss=1.2345,
        best_step=20,
        **fields,
    )
    for step, loss in ((10, 2.0), (20, 1.5), (30, 1.4)):
        RunMetric.objects.create(run=run, kind=MetricKind.TRAIN, step=step, loss=loss)
    for step, loss in ((10, 1.9), (20, 1.2345), (30, 1.3)):
        RunMetric.objects.create(run=run, kind=MetricKind.VALIDATION, step=step, loss=loss)
    return run


def test_the_run_page_shows_progress_curves_settings_and_adapter(manager_client):
    run = make_run()
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    assert "30 / 120 (25 %)" in html and 'style="width: 25%"' in html
    assert "3 min 20 s" in html  # ETA
    assert 'data-series="train loss"' in html and 'data-series="validation loss"' in html
    assert "1.2345 at step 20" in html
    assert "4884480 of 139399488 (3.50 %)" in html
    assert "19545000 bytes" in html and "/data/runs/run-1/adapter" in html
    assert "<th>rank</th><td>16</td>" in html
    plan = html.split("<h3>Training plan", 1)[1]  # the plan as resolved, below the settings
    assert "<th>eval every</th><td>10</td>" in plan
    assert "<th>device</th><td>cpu</td>" in html and "<th>torch</th><td>2.13.0</td>" in html


def test_learning_rate_and_gradient_norm_are_plotted_per_step_below_the_loss(manager_client):
    run = FineTuneRunFactory()
    for step, rate, norm in ((1, 1e-4, 4.0), (2, 2e-4, 2.5), (3, 1.5e-4, 1.0)):
        RunMetric.objects.create(
            run=run, kind=MetricKind.TRAIN, step=step, loss=2.0, learning_rate=rate, grad_norm=norm
        )
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    curves = html.split('class="card run-curves"', 1)[1].split("</section>", 1)[0]
    charts = curves.split('<div class="chart">')[1:]
    assert [c.split('data-series="', 1)[1].split('"', 1)[0] for c in charts] == [
        "train loss",
        "learning rate",
        "gradient norm",
    ]
    titles = [
        c.split('class="axis-title-y"', 1)[1].split(">", 1)[1].split("<", 1)[0] for c in charts
    ]
    assert titles == ["loss", "learning rate", "gradient norm"]
    assert ">2.0e-4</text>" in charts[1] and ">4</text>" in charts[2]


def test_a_run_without_points_says_so_instead_of_drawing_empty_charts(manager_client):
    run = FineTuneRunFactory(status=RunStatus.QUEUED)
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    curves = html.split('class="card run-curves"', 1)[1].split("</section>", 1)[0]
    assert "No points yet: loss, learning rate and gradient norm" in curves
    assert "<svg" not in curves


def test_the_memory_plan_reads_as_a_sentence(manager_client):
    plan = {
        "cached_layers": 10,
        "embeddings_on_cpu": True,
        "optimizer": "adamw_8bit",
        "loss_chunk_tokens": 128,
        "budget_bytes": 7_559_142_440,
        "estimated_peak_bytes": 7_549_364_224,
        "layers": {"keep": 0, "recompute": 3, "offload": 29},
        "budget_gib": 7.04,
        "estimated_peak_gib": 7.03,
    }
    run = make_run(
        environment={"device": "cuda:0", "compute_dtype": "bfloat16", "memory_plan": plan}
    )
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    assert (
        "<th>memory plan</th><td>layers: 0 keep activations, 3 recompute, 29 offload to CPU; "
        "10 with bf16 weight copies; AdamW with 8-bit states; loss in chunks of 128 tokens; "
        "embedding table in CPU memory; estimated peak 7.03 of 7.04 GiB</td>"
    ) in html
    # On a CPU the copies are in float32, the compute dtype there, and the page says so.
    cpu = make_run(environment={"device": "cpu", "compute_dtype": "float32", "memory_plan": plan})
    html = manager_client.get(f"/runs/{cpu.pk}/").content.decode()
    assert "10 with float32 weight copies" in html and "bf16" not in html


def test_the_run_page_says_how_the_run_packed_its_examples(manager_client):
    packing = "on (varlen attention): 13 rows of up to 16,384 tokens per epoch, 39.4 examples"
    run = make_run(plan={"padding_share": 0.0, "packing": packing})
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    assert f"<th>packing</th><td>{packing}</td>" in html.split("<h3>Training plan", 1)[1]


def test_errors_are_shown_in_full_and_escaped(manager_client):
    error = "training crashed:\nTraceback (most recent call last):\n  <frame>\nValueError: boom"
    run = make_run(error=error)
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    assert "Traceback (most recent call last):\n  &lt;frame&gt;\nValueError: boom" in html


def test_the_run_list_links_each_run_to_its_page(manager_client):
    run = make_run()
    html = manager_client.get("/runs/").content.decode()
    assert f'href="/runs/{run.pk}/"' in html


@pytest.mark.django_db
def test_the_run_page_is_for_managers_only(expert_client):
    run = make_run()
    assert Client().get(f"/runs/{run.pk}/").status_code == 302
    assert expert_client.get(f"/runs/{run.pk}/").status_code == 403


def test_a_missing_run_is_404(manager_client):
    assert manager_client.get("/runs/999999/").status_code == 404


def test_an_sft_run_page_leaves_out_the_dpo_only_beta(manager_client):
    run = make_run()
    run.hyperparameters = {"method": "sft", "beta": 0.1, "packing": "auto", "rank": 16}
    run.save(update_fields=["hyperparameters"])
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    assert "<th>packing</th><td>auto</td>" in html and "<th>rank</th><td>16</td>" in html
    assert "<th>beta</th>" not in html
