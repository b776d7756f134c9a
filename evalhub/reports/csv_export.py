"""CSV of the raw judgments: one row per judgment, unblinded, with the prompt, both outputs'
texts and their lengths, scores and metric values, the reviewer's final call on the row's
comparison (``final_call``: a system's name, tie or both_bad; empty where none was made);
``counted`` says whether the verdict counts the judgment (its rater meets the study's gate,
it is no skip and no gold item) and ``rater_competence`` is its rater's estimated
competence (one-coin Dawid–Skene); ``correction`` is the rater's own better answer, if any.
Each model judge of the study adds two last columns, "judge <name>: call" (its call on the row's
comparison, a system's name or tie; empty until it judged both orders) and "judge <name>:
flipped" (its verdict changed with the order).

Columns that belong to a system are named by the system ("adapter-r16: output",
"adapter-r16: correctness", "base: rouge1"): one set per system of the study, empty where a
row's comparison does not involve that system. Texts are quoted by the csv module, so commas,
quotes and line breaks in prompts and outputs read back intact. A spreadsheet cell holds at most
32,767 characters (and Python's csv reader 131,072 by default), so a longer text is cut, saying
how much was left out; the JSON report carries every text whole.

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
TEXT_CELL_CHARS = 32_000
TEXT_CUT = " [… {more:,} more characters: the JSON report has the whole text]"

BASE_COLUMNS = [
    "judgment_id",
    "comparison_id",
    "prompt_id",
    "rater",
    "systems",
    "shown_left",
    "choice",
    "gold",
    "final_call",
    "prompt",
]
TAIL_COLUMNS = [
    "time_on_task_ms",
    "flagged",
    "counted",
    "rater_competence",
    "flag_reason",
    "comment",
    "correction",
    "revisions",
    "created_at",
    "updated_at",
    "length_unit",
]


def neutralise(value: Any) -> Any:
    """Make a text cell inert in spreadsheets; other values pass through."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _text_cell(text: str) -> str:
    if len(text) <= TEXT_CELL_CHARS:
        return text
    return text[:TEXT_CELL_CHARS] + TEXT_CUT.format(more=len(text) - TEXT_CELL_CHARS)


def _per_system(report: dict[str, Any]) -> list[str]:
    """What each system gets a column of, after its output text: length, scores, metrics."""
    return ["length", *report["study"]["criteria"], *METRICS]


def csv_columns(report: dict[str, Any]) -> list[str]:
    systems = report["systems_order"]
    outputs = [f"{s}: output" for s in systems]
    values = [f"{s}: {v}" for s in systems for v in _per_system(report)]
    judges = [f"judge {j['name']}: {v}" for j in report["judges"] for v in ("call", "flipped")]
    return BASE_COLUMNS + outputs + TAIL_COLUMNS + values + judges


def _system_cells(c: dict[str, Any], j: dict[str, Any], criteria: list[str]) -> dict[str, dict]:
    """system -> its output text and its values in this row, by the column's value name."""
    cells = {}
    for side in (A, B):
        values: dict[str, Any] = {
            "output": _text_cell(c[f"text_{side}"]),
            "length": c[f"length_{side}"],
        }
        values |= {k: j["scores"].get(k, {}).get(side) for k in criteria}
        values |= {m: c[f"metrics_{side}"].get(m) for m in METRICS}
        cells[c[f"system_{side}"]] = values
    return cells


def render_csv(report: dict[str, Any]) -> str:
    """``report`` must have been built with ``include_judgments=True``."""
    comparisons = {c["comparison"]: c for c in report["comparisons"]}
    final_calls = {f["comparison"]: f["choice"] for f in report["final_calls"]}
    competence = {r["rater"]: r["competence"] for r in report["rater_quality"]["raters"]}
    criteria, systems = report["study"]["criteria"], report["systems_order"]
    judged = {(v["judge"], v["comparison"]): v for v in report["judge_verdicts"]}
    judges = [j["name"] for j in report["judges"]]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(c) for c in csv_columns(report)])
    for j in report["judgments"]:
        c = comparisons[j["comparison"]]
        cells = _system_cells(c, j, criteria)
        row = [
            j["judgment"],
            j["comparison"],
            c["prompt"],
            j["rater"],
            f"{c['system_a']} vs {c['system_b']}",
            j["shown_left"],
            j["choice"],
            c["gold"],
            final_calls.get(j["comparison"]),
            _text_cell(c["prompt_text"]),
        ]
        row += [cells.get(s, {}).get("output") for s in systems]
        row += [
            j["time_on_task_ms"],
            j["flagged"],
            j["counted"],
            competence.get(j["rater"]),
            j["flag_reason"],
            j["comment"],
            j["correction"],
            j["revisions"],
            j["created_at"],
            j["updated_at"],
            c["length_unit"],
        ]
        row += [cells.get(s, {}).get(v) for s in systems for v in _per_system(report)]
        for name in judges:
            verdict = judged.get((name, j["comparison"]), {})
            row += [verdict.get("call"), verdict.get("flipped")]
        writer.writerow([neutralise(v) for v in row])
    return out.getvalue()
