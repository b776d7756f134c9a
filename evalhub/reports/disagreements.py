"""One table of the items where an automated metric and the experts disagree most.

The analysis lists, per metric, the items whose metric-preferred output is not the experts'
majority choice. A lead reads them as one table: one row per item, the metrics that disagree on
it with both systems' values, who the experts preferred, and the texts to judge for oneself.
Comparisons arrive oriented (output a is the system listed first), so ``system`` is a's.
"""

from dataclasses import dataclass
from typing import Any

from evalhub.analysis.records import A

PROMPT_EXCERPT_CHARS = 240


@dataclass(frozen=True, slots=True)
class Texts:
    """A comparison's prompt (its last user turn) and its two outputs' texts."""

    prompt: str
    a: str
    b: str


def disagreeing_items(metrics: list[dict[str, Any]]) -> list[int]:
    """Every item listed as a disagreement by any metric, once."""
    return sorted({d["item"] for m in metrics for d in m["disagreements"]})


def disagreement_rows(
    metrics: list[dict[str, Any]],
    comparisons: dict[int, dict[str, Any]],
    texts: dict[int, Texts],
) -> list[dict[str, Any]]:
    """Rows ordered by how clearly the experts chose (then by how many metrics disagree)."""
    rows: dict[int, dict[str, Any]] = {}
    for m in metrics:
        for d in m["disagreements"]:
            c, item = comparisons[d["item"]], d["item"]
            experts = c["system_a"] if d["majority"] == A else c["system_b"]
            row = rows.setdefault(
                item,
                {
                    "item": item,
                    "system": c["system_a"],
                    "opponent": c["system_b"],
                    "experts_prefer": experts,
                    # The experts' mean outcome for the system they preferred (ties count ½).
                    "experts_support": 0.5 + abs(d["human"]),
                    "judgments": d["judgments"],
                    "prompt_excerpt": texts[item].prompt[:PROMPT_EXCERPT_CHARS],
                    "prompt": texts[item].prompt,
                    "outputs": [
                        {"system": c["system_a"], "text": texts[item].a},
                        {"system": c["system_b"], "text": texts[item].b},
                    ],
                    "metrics": [],
                },
            )
            row["metrics"].append(
                {
                    "metric": m["metric"],
                    "label": m["label"],
                    "system_value": d["metric_a"],
                    "opponent_value": d["metric_b"],
                    "prefers": c["system_b"] if experts == c["system_a"] else c["system_a"],
                }
            )
    return sorted(
        rows.values(), key=lambda r: (-r["experts_support"], -len(r["metrics"]), r["item"])
    )
