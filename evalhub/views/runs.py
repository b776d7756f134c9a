from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.vary import vary_on_headers

from evalhub.charts import loss_curve_svg
from evalhub.roles import manager_required
from evalhub.selectors.run_tasks import run_task_list
from trainer.models import FineTuneRun, MetricKind
from trainer.selectors import runs as run_selectors
from trainer.services.run_queue import runs_check_orphans
from trainer.services.runs import RESUMABLE

TASKS_SHOWN = 10
# How the environment's compute dtype (torch's name) reads on the page.
DTYPE_NAMES = {"bfloat16": "bf16", "float16": "fp16", "float32": "float32"}
OPTIMIZERS = {
    "adamw": "AdamW",
    "adamw_8bit": "AdamW with 8-bit states",
    "adamw_host": "AdamW in CPU memory (bf16 adapter on the device)",
}


@manager_required
def run_list(request: HttpRequest) -> HttpResponse:
    runs_check_orphans()
    return render(request, "evalhub/run_list.html", {"runs": run_selectors.run_list()})


@manager_required
@vary_on_headers("HX-Request")
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The run page; an htmx poll gets only its live part (status, tasks, progress), which
    stops polling once the run and its tasks have ended. Loading it is also where a run of a
    dead worker is noticed."""
    runs_check_orphans()
    run = get_object_or_404(
        FineTuneRun.objects.select_related("dataset", "base_model", "resumed_from"), pk=pk
    )
    tasks = run_task_list(run_id=run.pk, limit=TASKS_SHOWN)
    metrics = list(run.metrics.all())
    train = [m for m in metrics if m.kind == MetricKind.TRAIN]
    validation = [m for m in metrics if m.kind == MetricKind.VALIDATION]
    chart = loss_curve_svg(
        {
            "train loss": [(m.step, m.loss) for m in train],
            "validation loss": [(m.step, m.loss) for m in validation],
        }
    )
    environment = dict(run.environment)
    versions = environment.pop("versions", {})
    if "memory_plan" in environment:
        environment["memory_plan"] = describe_memory_plan(
            environment["memory_plan"], compute_dtype=environment.get("compute_dtype", "bfloat16")
        )
    context = {
        "run": run,
        "chart": chart,
        "percent": round(100 * run.step / run.total_steps) if run.total_steps else 0,
        "eta": format_duration(run.eta_seconds),
        "wall": format_duration(run.wall_seconds),
        "hyperparameters": sorted(run.hyperparameters.items()),
        "plan": sorted(run.plan.items()),
        "environment": sorted(environment.items()),
        "versions": sorted(versions.items()),
        "last_train": train[-1] if train else None,
        "share_percent": 100 * run.trainable_share if run.trainable_share else None,
        "tasks": tasks,
        "resumable": run.status in RESUMABLE and bool(run.checkpoint_path),
        # Poll while the run trains or any of its tasks waits or runs: a failure shows at once.
        "live": run.is_active or any(task.pending for task in tasks),
    }
    if request.htmx:
        return render(request, "evalhub/run_detail.html#live", context)
    return render(request, "evalhub/run_detail.html", context)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def describe_memory_plan(plan: dict[str, Any], *, compute_dtype: str) -> str:
    """One line for the run page from ``MemoryPlan.summary()``. The cached weight copies are
    the dequantised weights in the run's compute dtype (bf16 on a GPU, float32 on a CPU)."""
    if not plan:
        return "none"
    layers = plan["layers"]
    optimizer = OPTIMIZERS.get(plan["optimizer"], plan["optimizer"])
    parts = [
        f"layers: {layers['keep']} keep activations, {layers['recompute']} recompute, "
        f"{layers['offload']} offload to CPU",
        f"{plan['cached_layers']} with {DTYPE_NAMES.get(compute_dtype, compute_dtype)} "
        "weight copies",
        optimizer,
        f"loss in chunks of {plan['loss_chunk_tokens']} tokens",
    ]
    if plan["embeddings_on_cpu"]:
        parts.append("embedding table in CPU memory")
    parts.append(f"estimated peak {plan['estimated_peak_gib']} of {plan['budget_gib']} GiB")
    return "; ".join(parts)
