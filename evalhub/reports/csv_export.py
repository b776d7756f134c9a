"""CSV of the raw judgments: one row per judgment, unblinded, with both outputs' metric values.

Spreadsheets execute cells that start with = + - @ (and tab or carriage return, which some strip
before looking), so every text cell that starts with one gets a leading apostrophe. Numbers are
written as numbers and left alone.
"""

import csv
import io
from typing import Any

from evalhub.analysis.records import A, B
from evalhub.metrics import METRICS

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

BASE_COLUMNS = [
    "judgment_id",
    "comparison_id",
    "prompt_id",
    "rater",
    "system_a",
    "system_b",
    "shown_left",
    "choice",
    "gold",
]
TAIL_COLUMNS = [
    "time_on_task_ms",
    "flagged",
    "flag_reason",
    "comment",
    "revisions",
    "created_at",
    "updated_at",
    "length_unit",
    "length_a",
    "length_b",
]


def neutralise(value: Any) -> Any:
    """Make a text cell inert in spreadsheets; other values pass through."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_columns(report: dict[str, Any]) -> list[str]:
    criteria = report["study"]["criteria"]
    scores = [f"{c}_{side}" for c in criteria for side in (A, B)]
    metrics = [f"{side}_{m}" for side in (A, B) for m in METRICS]
    return BASE_COLUMNS + scores + TAIL_COLUMNS + metrics


def render_csv(report: dict[str, Any]) -> str:
    """``report`` must have been built with ``include_judgments=True``."""
    comparisons = {c["comparison"]: c for c in report["comparisons"]}
    criteria = report["study"]["criteria"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(c) for c in csv_columns(report)])
    for j in report["judgments"]:
        c = comparisons[j["comparison"]]
        row = [
            j["judgment"],
            j["comparison"],
            c["prompt"],
            j["rater"],
            c["system_a"],
            c["system_b"],
            j["shown_left"],
            j["choice"],
            c["gold"],
        ]
        for criterion in criteria:
            pair = j["scores"].get(criterion, {})
            row += [pair.get(A), pair.get(B)]
        row += [
            j["time_on_task_ms"],
            j["flagged"],
            j["flag_reason"],
            j["comment"],
            j["revisions"],
            j["created_at"],
            j["updated_at"],
            c["length_unit"],
            c["length_a"],
            c["length_b"],
        ]
        row += [c["metrics_a"].get(m) for m in METRICS]
        row += [c["metrics_b"].get(m) for m in METRICS]
        writer.writerow([neutralise(v) for v in row])
    return out.getvalue()
