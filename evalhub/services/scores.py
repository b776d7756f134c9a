"""Scoring a run's outputs against the references: ROUGE and BERTScore stored on each output."""

from dataclasses import dataclass

from django.db import transaction

from evalhub.metrics import EMPTY_FLAG
from evalhub.metrics.bertscore import Encoder, default_encoder
from evalhub.metrics.scoring import PairScore, score_pairs
from evalhub.models import Output
from evalhub.selectors.outputs import run_outputs
from trainer.models import FineTuneRun, Split


@dataclass(frozen=True)
class ScoreReport:
    scored: int
    empty: int
    skipped: int  # outputs whose prompt has no reference
    encoder: str


def outputs_score(
    *,
    run: FineTuneRun,
    split: str = Split.TEST,
    encoder: Encoder | None = None,
    batch_size: int = 64,
) -> ScoreReport:
    """ROUGE and BERTScore of every output on the run's prompts, stored on each output.

    Computed outside the transaction (it takes a while); an output whose text changed in the
    meantime keeps no metrics rather than metrics of the old text.
    """
    encoder = encoder or default_encoder()
    outputs = list(run_outputs(run=run, split=split))
    with_reference = [o for o in outputs if o.prompt.reference.strip()]
    scores = score_pairs(
        [o.text for o in with_reference],
        [o.prompt.reference for o in with_reference],
        encoder=encoder,
        batch_size=batch_size,
    )
    skipped = [o for o in outputs if not o.prompt.reference.strip()]
    _store_scores(with_reference, scores, skipped, encoder.identity)
    return ScoreReport(
        scored=len(with_reference),
        empty=sum(s.empty for s in scores),
        skipped=len(skipped),
        encoder=encoder.identity,
    )


@transaction.atomic
def _store_scores(
    outputs: list[Output], scores: list[PairScore], skipped: list[Output], encoder: str
) -> None:
    current = {
        o.pk: o.text
        for o in Output.objects.select_for_update().filter(pk__in=[o.pk for o in outputs + skipped])
    }
    changed = []
    for output, score in zip(outputs, scores, strict=True):
        if current.get(output.pk) != output.text:
            continue
        flags = [f for f in output.flags if f != EMPTY_FLAG]
        output.flags = [*flags, EMPTY_FLAG] if score.empty else flags
        output.metrics, output.metrics_encoder = score.metrics, encoder
        changed.append(output)
    for output in skipped:
        output.metrics, output.metrics_encoder = {}, ""
        changed.append(output)
    Output.objects.bulk_update(changed, ["metrics", "metrics_encoder", "flags"], batch_size=500)
