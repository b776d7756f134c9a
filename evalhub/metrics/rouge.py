"""ROUGE-1, ROUGE-2 and ROUGE-L F-measures through Google's ``rouge_score`` with Porter stemming.

rouge_score's default tokenizer lowercases and keeps only ASCII letters and digits, so text in
other scripts scores 0 here; BERTScore is the metric to read for such data.
"""

from collections.abc import Sequence

from evalhub.metrics import ROUGE_METRICS


def rouge_scores(candidates: Sequence[str], references: Sequence[str]) -> list[dict[str, float]]:
    """F-measure of each candidate against the reference at the same position."""
    from rouge_score import rouge_scorer

    if len(candidates) != len(references):
        raise ValueError("candidates and references differ in length")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_METRICS), use_stemmer=True)
    results = []
    for candidate, reference in zip(candidates, references, strict=True):
        scores = scorer.score(reference, candidate)  # rouge_score takes (target, prediction)
        results.append({key: float(scores[key].fmeasure) for key in ROUGE_METRICS})
    return results
