"""Every metric for a list of (output, reference) pairs, with empty outputs scored 0."""

from collections.abc import Sequence
from dataclasses import dataclass

from evalhub.metrics import METRICS
from evalhub.metrics.bertscore import Encoder, bertscore_scores
from evalhub.metrics.rouge import rouge_scores

EMPTY_REFERENCE = "reference {index} is empty; pairs without a reference are skipped, not scored"


@dataclass(frozen=True)
class PairScore:
    metrics: dict[str, float]
    empty: bool  # the output was empty or whitespace only, and every metric is 0


def score_pairs(
    outputs: Sequence[str],
    references: Sequence[str],
    *,
    encoder: Encoder,
    batch_size: int = 64,
) -> list[PairScore]:
    """ROUGE-1/2/L and BERTScore P/R/F1 of each output against its reference, batched.

    An empty output is not an error: it answered nothing, which scores 0 on every metric, and is
    marked so the caller can flag it. A missing reference is an error: the caller skips those.
    """
    if len(outputs) != len(references):
        raise ValueError("outputs and references differ in length")
    for index, reference in enumerate(references):
        if not reference.strip():
            raise ValueError(EMPTY_REFERENCE.format(index=index))
    scored = [i for i, text in enumerate(outputs) if text.strip()]
    candidates = [outputs[i] for i in scored]
    targets = [references[i] for i in scored]
    rouge = rouge_scores(candidates, targets)
    bert = bertscore_scores(candidates, targets, encoder=encoder, batch_size=batch_size)

    results = [PairScore(metrics=dict.fromkeys(METRICS, 0.0), empty=True) for _ in outputs]
    for position, index in enumerate(scored):
        results[index] = PairScore(metrics={**rouge[position], **bert[position]}, empty=False)
    return results
