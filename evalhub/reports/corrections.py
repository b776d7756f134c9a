"""The better answers raters wrote, as their own short list of the report.

A correction is a rater's own text, not a verdict: the report lists it apart from the numbers
and from the comments, one row per judgment that has one (item, rater, the prompt's first
characters, the answer whole), so that a lead reads what the experts would have written without
hunting through the judgments table. The HTML and PDF list the first ``CORRECTIONS_SHOWN`` by
item, so that a study rich in answers still gives a report one forwards; the JSON has every row,
and the JSON and CSV also carry each answer on its judgment.
"""

from typing import Any

from evalhub.models import Judgment, Prompt
from evalhub.reports.disagreements import PROMPT_EXCERPT_CHARS

CORRECTIONS_SHOWN = 50


def corrections_block(study_id: int) -> dict[str, Any]:
    """``total`` and ``rows``: every judgment of the study with a correction, by item then
    rater."""
    query = (
        Judgment.objects.filter(assignment__comparison__study_id=study_id)
        .exclude(correction="")
        .order_by("assignment__comparison_id", "assignment__rater__username")
        .values_list(
            "id",
            "assignment__comparison_id",
            "assignment__comparison__prompt_id",
            "assignment__rater__username",
            "correction",
        )
    )
    found = list(query.iterator(chunk_size=5000))
    prompts = {
        p.pk: p.text
        for p in Prompt.objects.filter(pk__in={row[2] for row in found}).only("messages")
    }
    rows = [
        {
            "judgment": jid,
            "item": cid,
            "rater": rater,
            "prompt_excerpt": prompts[prompt_id][:PROMPT_EXCERPT_CHARS],
            "correction": correction,
        }
        for jid, cid, prompt_id, rater, correction in found
    ]
    return {"total": len(rows), "rows": rows}
