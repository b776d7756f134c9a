"""Automated metrics of an output against its reference: ROUGE-1/2/L and BERTScore, plus
bootstrap intervals for their means. Heavy libraries (rouge_score, bert_score, torch) are imported
only inside the functions that compute, so importing this package costs nothing."""

ROUGE_METRICS = ("rouge1", "rouge2", "rougeL")
BERTSCORE_METRICS = ("bertscore_precision", "bertscore_recall", "bertscore_f1")
METRICS = ROUGE_METRICS + BERTSCORE_METRICS
EMPTY_FLAG = "empty"
