"""Automated metrics of an output against its reference: ROUGE-1/2/L and BERTScore, plus
bootstrap intervals for their means. Heavy libraries (rouge_score, bert_score, torch) are imported
only inside the functions that compute, so importing this package costs nothing."""

ROUGE_METRICS = ("rouge1", "rouge2", "rougeL")
BERTSCORE_METRICS = ("bertscore_precision", "bertscore_recall", "bertscore_f1")
METRICS = ROUGE_METRICS + BERTSCORE_METRICS
# How pages name each metric for people.
METRIC_LABELS = {
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "bertscore_precision": "BERTScore P",
    "bertscore_recall": "BERTScore R",
    "bertscore_f1": "BERTScore F1",
}
EMPTY_FLAG = "empty"
