"""``report_build``: the one place that reads the database for a report.

It turns every comparison so that its output a belongs to the system listed first in
``systems_order`` (the adapter before the base, so metric differences and preferences read
"adapter − base" on every item), unblinds every judgment (a rater's "A" is the output the
assignment showed on the left), hands plain records to ``evalhub.analysis`` and gathers the
provenance a reader needs to trust the numbers: study, run and hyperparameters, dataset and its
content hash, base model, BERTScore encoder, software versions and when the report was made.
Reads use ``values_list`` and iterators, never per-row model access, so a study of 100,000
judgments stays fast.
"""

import dataclasses
from collections import defaultdict
from collections.abc import Collection
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.db.models.functions import Length
from django.utils import timezone

from evalhub import blinding
from evalhub.analysis.adjudication import adjudication_summary
from evalhub.analysis.base import BOOTSTRAP_RESAMPLES, MODEL_RESAMPLES, THRESHOLDS
from evalhub.analysis.ranking import BT_RESAMPLES
from evalhub.analysis.raters import rater_summaries
from evalhub.analysis.records import A, B, Rating
from evalhub.analysis.summary import analyse_study
from evalhub.metrics import METRIC_LABELS, METRICS
from evalhub.models import (
    Adjudication,
    Assignment,
    Choice,
    Comparison,
    Judgment,
    Output,
    Prompt,
    Study,
)
from evalhub.reports.conclusion import conclusion
from evalhub.reports.corrections import corrections_block
from evalhub.reports.disagreements import Texts, disagreeing_items, disagreement_rows
from evalhub.selectors.judges import judge_verdict_rows, judges_block
from evalhub.selectors.lineage import study_leakage
from evalhub.selectors.rater_quality import rater_quality_block
from evalhub.selectors.recognisability import recognisability_block
from evalhub.selectors.studies import (
    KIND_ORDER,
    RaterStats,
    ppi_block,
    sequential_block,
    study_gated_raters,
    study_rater_stats,
)
from trainer.engine.environment import library_versions
from trainer.models import FineTuneRun, RunMetric
from trainer.selectors.runs import evaluation_dataset

SCHEMA = "evalhub.report/1"
SOFTWARE = ("django", "numpy", "scipy", "statsmodels", "krippendorff", "choix", "ppi-python")


def report_build(
    study: Study,
    *,
    include_judgments: bool = True,
    resamples: int = BOOTSTRAP_RESAMPLES,
    bt_resamples: int = BT_RESAMPLES,
    model_resamples: int = MODEL_RESAMPLES,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Everything a report shows, as a JSON-serialisable dict.

    ``include_judgments`` adds the raw, unblinded ``comparisons`` and ``judgments`` tables (the
    CSV and JSON exports need them; the analysis page does not)."""
    read = report_ratings(study, with_rows=include_judgments)
    systems, comparisons, order = read.systems, read.comparisons, read.order
    rater_stats, gated, every_rating = read.rater_stats, read.gated, read.every_rating
    ratings = read.ratings
    analysis = analyse_study(
        ratings,
        systems=order,
        criteria=list(study.criteria or []),
        item_metrics=_item_metrics(comparisons),
        seed=study.seed,
        resamples=resamples,
        bt_resamples=bt_resamples,
        model_resamples=model_resamples,
    )
    result = dataclasses.asdict(analysis)
    if gated:  # the per-rater table describes the raters the gate leaves out of the verdict too
        result["raters"] = [dataclasses.asdict(r) for r in rater_summaries(every_rating)]
    for m in result["metrics"]:
        m["label"] = METRIC_LABELS.get(m["metric"], m["metric"])
    final_calls, final_call_rows = _final_calls(study, comparisons)
    pairs = [(p["system"], p["opponent"]) for p in result["pairs"]]
    run = study.run or next((s.run for s in systems if s.run_id), None)
    sequential = sequential_block(study=study, ratings=ratings, excluded=gated)
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "generated_at": (now or timezone.now()).isoformat(timespec="seconds"),
        "study": _study_block(study, systems, comparisons, len(every_rating)),
        "run": _run_block(run) if run else None,
        "dataset": _dataset_block(run, comparisons),
        "base_model": _base_model_block(run, systems),
        "bertscore_encoders": _encoders(study),
        "metrics_available": [m["metric"] for m in result["metrics"]],
        "systems_order": order,
        "thresholds": dict(
            THRESHOLDS, bradley_terry_resamples=bt_resamples, model_resamples=model_resamples
        ),
        "software": library_versions(SOFTWARE),
        "conclusion": conclusion(sequential=sequential, analysis=result, systems=order),
        "analysis": result,
        # Where the automated metrics and the experts disagree most, one row per item.
        "disagreements": disagreement_rows(
            result["metrics"],
            comparisons,
            _texts(comparisons, disagreeing_items(result["metrics"])),
        ),
        # The always-valid interval and verdict for the monitored pair (adapter vs base).
        "sequential": sequential,
        # Beside it, not instead of it: the win rate with the automated signal's help.
        "ppi": ppi_block(study=study, ratings=ratings, excluded=gated),
        # Whether raters may tell the systems apart, or the gold items from real ones, by form.
        "recognisability": recognisability_block(study=study),
        # The reviewers' final calls as the labels of the comparisons they settled.
        "adjudication": dataclasses.asdict(adjudication_summary(ratings, final_calls, pairs)),
        # Each rater's competence, the gate and whom it leaves out, the verdict with and without.
        "rater_quality": rater_quality_block(
            study=study, ratings=every_rating, rater_stats=rater_stats
        ),
        # Which of the study's prompts any run of its systems, or an ancestor, trained on.
        "leakage": study_leakage(study=study).as_json(),
        # Each model judge against the experts: may it stand in for them on this study?
        "judges": judges_block(
            study=study,
            comparisons=comparisons,
            experts=ratings,
            final_calls=final_calls,
            resamples=model_resamples,
        ),
        # The better answers raters wrote, apart from the numbers: text, not a verdict.
        "corrections": corrections_block(study.pk),
    }
    if include_judgments:
        texts = _texts(comparisons, list(comparisons))
        report["comparisons"] = [
            _public_comparison(c, texts[cid]) for cid, c in comparisons.items()
        ]
        report["judgments"] = read.judgment_rows
        report["final_calls"] = final_call_rows
        report["judge_verdicts"] = judge_verdict_rows(study=study, comparisons=comparisons)
    return report


@dataclasses.dataclass(frozen=True)
class ReportRatings:
    """What the report's statistics read: the study's systems, its comparisons (oriented so
    output a is the system earlier in ``order``), every rater's unblinded judgment, and
    ``ratings``, those the study's gate counts in the verdict."""

    systems: list
    comparisons: dict[int, dict[str, Any]]
    order: list[str]
    rater_stats: list[RaterStats]
    gated: dict[str, list[str]]
    every_rating: list[Rating]
    ratings: list[Rating]
    judgment_rows: list[dict[str, Any]]


def report_ratings(
    study: Study, *, with_rows: bool = False, rater_stats: list[RaterStats] | None = None
) -> ReportRatings:
    """The report's records of ``study``; the study page reads the same ones, so its figures
    are the report's. ``with_rows`` adds the export table's rows; ``rater_stats`` is read when
    not given."""
    systems = list(study.systems.select_related("base_model", "run").order_by("name"))
    comparisons = _comparisons(study)
    _attach_outputs(comparisons, _outputs(study))
    evaluated = [c for c in comparisons.values() if not c["is_gold"]]
    order = sorted(
        {c["system_a"] for c in evaluated}
        | {c["system_b"] for c in evaluated}
        | {s.name for s in systems},
        key=lambda name: (KIND_ORDER.get(_kind(systems, name), 3), name),
    )
    _orient(comparisons, order)
    if rater_stats is None:
        rater_stats = study_rater_stats(study=study)
    gated = study_gated_raters(study=study, rater_stats=rater_stats)
    every_rating, rows = _judgments(study, comparisons, with_rows=with_rows, gated=gated)
    return ReportRatings(
        systems=systems,
        comparisons=comparisons,
        order=order,
        rater_stats=rater_stats,
        gated=gated,
        every_rating=every_rating,
        # The verdict counts the judgments of raters who meet the study's gate;
        # ``rater_quality`` shows the win rate and verdict with the others too.
        ratings=[r for r in every_rating if r.rater not in gated],
        judgment_rows=rows,
    )


def _kind(systems: list, name: str) -> str | None:
    return next((s.kind for s in systems if s.name == name), None)


def _comparisons(study: Study) -> dict[int, dict[str, Any]]:
    rows = Comparison.objects.filter(study=study).order_by("id")
    return {
        cid: {
            "comparison": cid,
            "prompt": prompt_id,
            "output_a": a,
            "output_b": b,
            "is_gold": is_gold,
            "gold_answer": gold or None,
        }
        for cid, prompt_id, a, b, is_gold, gold in rows.values_list(
            "id", "prompt_id", "output_a_id", "output_b_id", "is_gold", "gold_answer"
        ).iterator(chunk_size=5000)
    }


def _outputs(study: Study) -> dict[int, dict[str, Any]]:
    comparisons = Comparison.objects.filter(study=study)
    query = (
        Output.objects.filter(
            Q(pk__in=comparisons.values("output_a")) | Q(pk__in=comparisons.values("output_b"))
        )
        .annotate(chars=Length("text"))
        .values_list("id", "system__name", "token_count", "chars", "metrics")
    )
    return {
        oid: {"system": system, "tokens": tokens, "chars": chars, "metrics": _numeric(metrics)}
        for oid, system, tokens, chars, metrics in query.iterator(chunk_size=5000)
    }


def _encoders(study: Study) -> list[str]:
    """The BERTScore encoders recorded on the study's outputs (more than one is a warning
    sign: the scores were not computed alike)."""
    comparisons = Comparison.objects.filter(study=study)
    return sorted(
        Output.objects.filter(
            Q(pk__in=comparisons.values("output_a")) | Q(pk__in=comparisons.values("output_b"))
        )
        .exclude(metrics_encoder="")
        .order_by("metrics_encoder")
        .values_list("metrics_encoder", flat=True)
        .distinct()
    )


def _numeric(metrics: Any) -> dict[str, float]:
    if not isinstance(metrics, dict):
        return {}
    return {
        k: float(v)
        for k, v in metrics.items()
        if k in METRICS and isinstance(v, int | float) and not isinstance(v, bool)
    }


def _attach_outputs(
    comparisons: dict[int, dict[str, Any]], outputs: dict[int, dict[str, Any]]
) -> None:
    """Give each comparison its systems, metric values, lengths and gold answer by system."""
    for c in comparisons.values():
        out_a, out_b = outputs[c["output_a"]], outputs[c["output_b"]]
        c["system_a"], c["system_b"] = out_a["system"], out_b["system"]
        c["metrics_a"], c["metrics_b"] = out_a["metrics"], out_b["metrics"]
        # Token counts when both are known, so both lengths are in the same unit.
        use_tokens = out_a["tokens"] is not None and out_b["tokens"] is not None
        c["length_unit"] = "tokens" if use_tokens else "characters"
        c["length_a"] = out_a["tokens"] if use_tokens else out_a["chars"]
        c["length_b"] = out_b["tokens"] if use_tokens else out_b["chars"]
        gold = c["gold_answer"]
        c["gold"] = {A: c["system_a"], B: c["system_b"]}.get(gold, gold)


def _orient(comparisons: dict[int, dict[str, Any]], order: list[str]) -> None:
    """Swap the sides of every evaluated comparison whose output a belongs to the system listed
    later in ``order``, so a is always the earlier one. Unblinding compares ``left_output`` with
    the swapped ``output_a``, so verdicts, scores and the left side swap with it. Gold
    comparisons (reserved systems, outside ``order``) keep their stored sides."""
    rank = {name: i for i, name in enumerate(order)}
    for c in comparisons.values():
        if c["is_gold"] or rank[c["system_a"]] <= rank[c["system_b"]]:
            continue
        for key in ("output", "system", "metrics", "length"):
            c[f"{key}_a"], c[f"{key}_b"] = c[f"{key}_b"], c[f"{key}_a"]
        c["gold_answer"] = {A: B, B: A}.get(c["gold_answer"], c["gold_answer"])


ANALYSIS_COLUMNS = (
    "id",
    "assignment__comparison_id",
    "assignment__left_output_id",
    "assignment__rater__username",
    "choice",
    "criterion_scores",
    "time_on_task_ms",
    "flagged",
)
EXPORT_COLUMNS = (
    "flag_reason",
    "comment",
    "correction",
    "revisions",
    "created_at",
    "updated_at",
)


def _judgments(
    study: Study,
    comparisons: dict[int, dict[str, Any]],
    *,
    with_rows: bool,
    gated: Collection[str],
) -> tuple[list[Rating], list[dict[str, Any]]]:
    """Unblinded records of every rater and, ``with_rows``, the export table's rows (the page
    skips the columns only the export needs); a row's ``counted`` says whether the verdict
    counts it (its rater is not among the ``gated``, it is no skip and no gold item)."""
    columns = ANALYSIS_COLUMNS + (EXPORT_COLUMNS if with_rows else ())
    query = (
        Judgment.objects.filter(assignment__comparison__study=study)
        .order_by("id")
        .values_list(*columns)
    )
    ratings: list[Rating] = []
    rows: list[dict[str, Any]] = []
    for values in query.iterator(chunk_size=5000):
        jid, cid, left_id, rater, choice, scores, time_ms, flagged = values[:8]
        c = comparisons[cid]
        left_is_a = blinding.left_is_a(left_output=left_id, output_a=c["output_a"])
        verdict = blinding.unblind_choice(choice, left_is_a=left_is_a)
        pairs = blinding.unblind_scores(scores, left_is_a=left_is_a)
        if choice != Choice.SKIP:  # a skip names no verdict: it is in the rows only
            ratings.append(
                Rating(
                    item=cid,
                    rater=rater,
                    system_a=c["system_a"],
                    system_b=c["system_b"],
                    verdict=verdict,
                    left=A if left_is_a else B,
                    scores=pairs,
                    time_ms=time_ms,
                    length_a=c["length_a"],
                    length_b=c["length_b"],
                    gold=c["gold_answer"],
                    flagged=flagged,
                    prompt=c["prompt"],
                )
            )
        if not with_rows:
            continue
        reason, comment, correction, revisions, created, updated = values[8:]
        rows.append(
            {
                "judgment": jid,
                "comparison": cid,
                "rater": rater,
                "shown_left": c["system_a"] if left_is_a else c["system_b"],
                "verdict": verdict,
                "choice": {A: c["system_a"], B: c["system_b"]}.get(verdict, verdict),
                "scores": {k: {A: a, B: b} for k, (a, b) in pairs.items()},
                "time_on_task_ms": time_ms,
                "flagged": flagged,
                "counted": rater not in gated and choice != Choice.SKIP and not c["is_gold"],
                "flag_reason": reason,
                "comment": comment,
                "correction": correction,
                "revisions": revisions,
                "created_at": created.isoformat(),
                "updated_at": updated.isoformat(),
            }
        )
    return ratings, rows


def _final_calls(
    study: Study, comparisons: dict[int, dict[str, Any]]
) -> tuple[list[Rating], list[dict[str, Any]]]:
    """The reviewers' final calls as one record per settled comparison, and as export rows."""
    query = (
        Adjudication.objects.filter(comparison__study=study)
        .order_by("comparison_id")
        .values_list(
            "comparison_id",
            "comparison__output_a_id",
            "verdict",
            "reviewer__username",
            "note",
            "revisions",
            "updated_at",
        )
    )
    calls: list[Rating] = []
    rows: list[dict[str, Any]] = []
    for cid, stored_a, verdict, reviewer, note, revisions, updated in query.iterator():
        c = comparisons[cid]
        # The verdict names the stored output_a better or worse; ``_orient`` may have swapped
        # the sides, and the same translation as a rater's left side follows the swap.
        same = blinding.left_is_a(left_output=stored_a, output_a=c["output_a"])
        verdict = blinding.unblind_choice(verdict, left_is_a=same)
        calls.append(
            Rating(
                item=cid,
                rater=reviewer,
                system_a=c["system_a"],
                system_b=c["system_b"],
                verdict=verdict,
                gold=c["gold_answer"],
            )
        )
        rows.append(
            {
                "comparison": cid,
                "verdict": verdict,
                "choice": {A: c["system_a"], B: c["system_b"]}.get(verdict, verdict),
                "reviewer": reviewer,
                "note": note,
                "revisions": revisions,
                "updated_at": updated.isoformat(),
            }
        )
    return calls, rows


def _item_metrics(
    comparisons: dict[int, dict[str, Any]],
) -> dict[str, dict[int, tuple[float | None, float | None]]]:
    values: dict[str, dict[int, tuple[float | None, float | None]]] = defaultdict(dict)
    for cid, c in comparisons.items():
        for metric in METRICS:
            a, b = c["metrics_a"].get(metric), c["metrics_b"].get(metric)
            if a is not None or b is not None:
                values[metric][cid] = (a, b)
    return {m: values[m] for m in METRICS if m in values}


def _texts(comparisons: dict[int, dict[str, Any]], ids: list[int]) -> dict[int, Texts]:
    """The prompt (its last user turn, as raters read it) and both outputs' texts of the
    comparisons ``ids``, read in chunks."""
    chosen = [comparisons[cid] for cid in ids]
    outputs = {c[f"output_{side}"] for c in chosen for side in (A, B)}
    prompts = {c["prompt"] for c in chosen}
    output_texts = dict(
        Output.objects.filter(pk__in=outputs).values_list("id", "text").iterator(chunk_size=5000)
    )
    prompt_texts = {
        p.pk: p.text
        for p in Prompt.objects.filter(pk__in=prompts).only("messages").iterator(chunk_size=5000)
    }
    return {
        c["comparison"]: Texts(
            prompt=prompt_texts[c["prompt"]],
            a=output_texts[c["output_a"]],
            b=output_texts[c["output_b"]],
        )
        for c in chosen
    }


def _public_comparison(c: dict[str, Any], texts: Texts) -> dict[str, Any]:
    keys = ("comparison", "prompt", "system_a", "system_b", "output_a", "output_b", "is_gold")
    return {
        **{k: c[k] for k in keys},
        "gold": c["gold"],
        "length_unit": c["length_unit"],
        "length_a": c["length_a"],
        "length_b": c["length_b"],
        "metrics_a": c["metrics_a"],
        "metrics_b": c["metrics_b"],
        "prompt_text": texts.prompt,
        "text_a": texts.a,
        "text_b": texts.b,
    }


def _study_block(
    study: Study, systems: list, comparisons: dict[int, dict[str, Any]], judgments: int
) -> dict[str, Any]:
    assignments = Assignment.objects.filter(comparison__study=study).count()
    return {
        "id": study.pk,
        "name": study.name,
        "status": study.status,
        "criteria": list(study.criteria or []),
        "overlap": study.overlap,
        "seed": study.seed,
        "created_at": study.created_at.isoformat(timespec="seconds"),
        "systems": [
            {
                "name": s.name,
                "kind": s.kind,
                "base_model": s.base_model.name if s.base_model else None,
                "run": s.run_id,
                "decoding": s.decoding,
            }
            for s in systems
        ],
        "comparisons": len(comparisons),
        "gold_comparisons": sum(c["is_gold"] for c in comparisons.values()),
        "assignments": assignments,
        "judgments": judgments,
        "completion": judgments / assignments if assignments else None,
    }


def _run_block(run: FineTuneRun) -> dict[str, Any]:
    curves: dict[str, list[list[float]]] = {"train": [], "validation": []}
    points = RunMetric.objects.filter(run=run).order_by("step").values_list("kind", "step", "loss")
    for kind, step, loss in points:
        curves.setdefault(kind, []).append([step, loss])
    return {
        "id": run.pk,
        "name": run.name,
        "status": run.status,
        "hyperparameters": run.hyperparameters,
        "plan": run.plan,
        "dataset_hash": run.dataset_hash,
        "steps": run.step,
        "total_steps": run.total_steps,
        "best_val_loss": run.best_val_loss,
        "best_step": run.best_step,
        "early_stopped": run.early_stopped,
        "wall_seconds": run.wall_seconds,
        "trainable_params": run.trainable_params,
        "total_params": run.total_params,
        "environment": run.environment,
        "loss_curves": curves,
    }


def _dataset_block(run: FineTuneRun | None, comparisons: dict[int, dict[str, Any]]) -> Any:
    if run is not None:
        dataset = evaluation_dataset(run=run)
    else:
        first = next(iter(comparisons.values()), None)
        if first is None:
            return None
        dataset = Prompt.objects.select_related("dataset").get(pk=first["prompt"]).dataset
    return {"id": dataset.pk, "name": dataset.name, "content_hash": dataset.content_hash}


def _base_model_block(run: FineTuneRun | None, systems: list) -> dict[str, Any] | None:
    model = run.base_model if run else next((s.base_model for s in systems if s.base_model), None)
    if model is None:
        return None
    return {"name": model.name, "source": model.source, "parameters": model.parameter_count}
