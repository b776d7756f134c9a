from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.vary import vary_on_headers

from evalhub.charts import loss_curve_svg
from evalhub.reports.render import run_settings, setting_rows
from evalhub.roles import manager_required
from evalhub.selectors.lineage import run_learned_from
from evalhub.selectors.run_tasks import run_task_list
from trainer.models import FineTuneRun, MetricKind, RunMetric, RunStatus
from trainer.selectors import runs as run_selectors
from trainer.selectors.runs import run_root
from trainer.services.run_queue import runs_check_orphans
from trainer.services.runs import RESUMABLE, RETRYABLE

TASKS_SHOWN = 10
ERROR_LINE_CHARS = 200  # of a failed run's error, in the status line at the top
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
        FineTuneRun.objects.select_related(
            "dataset", "base_model", "resumed_from", "retry_of", "from_run"
        ),
        pk=pk,
    )
    tasks = run_task_list(run_id=run.pk, limit=TASKS_SHOWN)
    metrics = list(run.metrics.all())
    train = [m for m in metrics if m.kind == MetricKind.TRAIN]
    validation = [m for m in metrics if m.kind == MetricKind.VALIDATION]
    environment = dict(run.environment)
    versions = environment.pop("versions", {})
    if "memory_plan" in environment:
        environment["memory_plan"] = describe_memory_plan(
            environment["memory_plan"], compute_dtype=environment.get("compute_dtype", "bfloat16")
        )
    percent = round(100 * run.step / run.total_steps) if run.total_steps else 0
    eta, wall = format_duration(run.eta_seconds), format_duration(run.wall_seconds)
    context = {
        "run": run,
        "status_line": status_line(run, percent=percent, eta=eta, wall=wall),
        "charts": training_charts(train, validation),
        "percent": percent,
        "eta": eta,
        "wall": wall,
        # Named and written as the report names them, in the order the engine lists them.
        **run_settings(run.hyperparameters, run.plan),
        "environment": setting_rows(dict(sorted(environment.items()))),
        "versions": sorted(versions.items()),
        "last_train": train[-1] if train else None,
        "share_percent": 100 * run.trainable_share if run.trainable_share else None,
        "tasks": tasks,
        "resumable": run.status in RESUMABLE and bool(run.checkpoint_path),
        "retryable": run.status in RETRYABLE,
        # Poll while the run trains or any of its tasks waits or runs: a failure shows at once.
        "live": run.is_active or any(task.pending for task in tasks),
    }
    # The lineage page of the dataset the chain began with shows this run in its place.
    context["lineage_root"] = run_root(run=run)
    context["learned_from"] = run_learned_from(run=run)
    if request.htmx:
        return render(request, "evalhub/run_detail.html#live", context)
    return render(request, "evalhub/run_detail.html", context)


def status_line(run: FineTuneRun, *, percent: int, eta: str, wall: str) -> str:
    """What the run is doing, in words, beside its status at the top of its page."""
    where = f"step {run.step} of {run.total_steps}"
    kept = "; its checkpoint is kept" if run.checkpoint_path else ""
    error = run.error.strip().splitlines()[0][:ERROR_LINE_CHARS] if run.error.strip() else ""
    match run.status:
        case RunStatus.QUEUED:
            return "waiting for a worker to take it"
        case RunStatus.RUNNING if run.cancel_requested:
            return "cancel requested: stops at the next step"
        case RunStatus.RUNNING if run.total_steps:
            left = f", about {eta} left" if run.eta_seconds is not None else ""
            return f"training: {where} ({percent} %){left}"
        case RunStatus.RUNNING:
            return "loading the model and the data"
        case RunStatus.SUCCEEDED:
            stopped = ", stopped early" if run.early_stopped else ""
            return f"finished at {where}{stopped} in {wall}"
        case RunStatus.CANCELLED:
            return f"cancelled at {where}{kept}"
        case _:  # failed or interrupted: the first line of what went wrong, if it is known
            return f"stopped at {where}: {error}" if error else f"stopped at {where}{kept}"


def training_charts(train: list[RunMetric], validation: list[RunMetric]) -> dict[str, str]:
    """The loss curves across the card, and the learning rate and gradient norm per step below
    them, half as wide each (so their SVG sizes keep the text the same size); a DPO run adds
    its reward accuracy and margin, on its training pairs and its held-out ones. None before
    the first point."""
    if not train and not validation:
        return {}
    return reward_charts(train, validation) | {
        "loss": loss_curve_svg(
            {
                "train loss": [(m.step, m.loss) for m in train],
                "validation loss": [(m.step, m.loss) for m in validation],
            },
            width=1080,
            height=300,
        ),
        "learning_rate": loss_curve_svg(
            {
                "learning rate": [
                    (m.step, m.learning_rate) for m in train if m.learning_rate is not None
                ]
            },
            y_label="learning rate",
            width=530,
            height=220,
        ),
        "grad_norm": loss_curve_svg(
            {"gradient norm": [(m.step, m.grad_norm) for m in train if m.grad_norm is not None]},
            y_label="gradient norm",
            width=530,
            height=220,
        ),
    }


def reward_charts(train: list[RunMetric], validation: list[RunMetric]) -> dict[str, str]:
    """DPO's reward accuracy and margin per step (train and validation); none for SFT."""
    charts = {}
    for field in ("reward_accuracy", "reward_margin"):
        label = field.replace("_", " ")
        # The axis names the figure; the legend only says which pairs (a legend that repeated
        # "reward accuracy" ran past the half-width chart's edge).
        series = {
            kind: [(m.step, getattr(m, field)) for m in points if getattr(m, field) is not None]
            for kind, points in (("training pairs", train), ("held-out pairs", validation))
        }
        if any(series.values()):
            charts[field] = loss_curve_svg(series, y_label=label, width=530, height=220)
    return charts


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
