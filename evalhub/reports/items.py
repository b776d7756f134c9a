"""One item (comparison) of a study, unblinded, for the analysis drill-down."""

from typing import Any

from evalhub.analysis.records import A, B
from evalhub.blinding import unblind_choice, unblind_scores
from evalhub.metrics import METRIC_LABELS, METRICS
from evalhub.models import Choice, Comparison, Judgment

# How the drill-down names a verdict that is no system's win.
CHOICE_WORDS = {Choice.TIE: "tie", Choice.BOTH_BAD: "both bad", Choice.SKIP: "skipped"}


def item_detail(comparison: Comparison) -> dict[str, Any]:
    """The prompt, both outputs with their systems and metric values, and every judgment with
    its verdict and scores in terms of systems, never of sides."""
    out_a, out_b = comparison.output_a, comparison.output_b
    names = {A: out_a.system.name, B: out_b.system.name}
    judgments = (
        Judgment.objects.filter(assignment__comparison=comparison)
        .select_related("assignment__rater", "assignment__comparison")
        .order_by("assignment__rater__username")
    )
    rows = []
    for j in judgments:
        left_is_a = j.assignment.left_is_a
        verdict = unblind_choice(j.choice, left_is_a=left_is_a)
        scores = unblind_scores(j.criterion_scores, left_is_a=left_is_a)
        rows.append(
            {
                "rater": j.assignment.rater.username,
                "shown_left": names[A] if left_is_a else names[B],
                "verdict": verdict,
                "choice": names.get(verdict) or CHOICE_WORDS.get(verdict, verdict),
                "scores": [{"criterion": k, "a": a, "b": b} for k, (a, b) in scores.items()],
                "time_on_task_ms": j.time_on_task_ms,
                "flagged": j.flagged,
                "flag_reason": j.flag_reason,
                "comment": j.comment,
                "correction": j.correction,
                "revisions": j.revisions,
                "updated_at": j.updated_at,
            }
        )
    metrics = [
        {"label": METRIC_LABELS[m], "a": out_a.metrics.get(m), "b": out_b.metrics.get(m)}
        for m in METRICS
        if m in out_a.metrics or m in out_b.metrics
    ]
    return {
        "comparison": comparison,
        "prompt": comparison.prompt,
        "gold": names.get(comparison.gold_answer, comparison.gold_answer) or None,
        "outputs": [
            {"side": A, "output": out_a, "system": names[A]},
            {"side": B, "output": out_b, "system": names[B]},
        ],
        "metrics": metrics,
        "encoders": sorted({o.metrics_encoder for o in (out_a, out_b) if o.metrics_encoder}),
        "judgments": rows,
    }
