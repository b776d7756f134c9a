"""The study page's "Verdict details" card: the monitored pair's tie-aware probabilities and
both-bad rate, its length-controlled win rate, and the raters' agreement, each the number the
report gives, from the same records (the report's, less the raters the gate leaves out)."""

import dataclasses

from django.core.cache import cache
from django.db.models import Count, Max

from evalhub.analysis.summary import verdict_details
from evalhub.models import Judgment, Study
from evalhub.reports.build import report_ratings
from evalhub.selectors.studies import RaterStats, study_monitored_pair

# The figures change only when a judgment comes, goes or is revised, or the gate or seed
# changes: the key holds those, so a reload costs one aggregate query
# (benchmarks/results/study_page_time.json).
CACHE_SECONDS = 24 * 60 * 60


def verdict_details_block(
    *, study: Study, rater_stats: list[RaterStats] | None = None
) -> dict | None:
    """The card's figures as a dict, or None when the study has no pair to follow;
    ``enough`` is false while every figure still lacks judgments. Managers only."""
    pair = study_monitored_pair(study=study)
    if pair is None:
        return None
    judged = Judgment.objects.filter(assignment__comparison__study=study).aggregate(
        count=Count("id"), last=Max("id"), revised=Max("updated_at")
    )
    key = "evalhub:verdict-details:" + ":".join(
        str(part)
        for part in (
            study.pk,
            judged["count"],
            judged["last"],
            judged["revised"] and judged["revised"].isoformat(),
            study.min_gold_accuracy,
            study.min_median_seconds,
            study.seed,
            pair[0].pk,
            pair[1].pk,
        )
    )
    block = cache.get(key)
    if block is None:
        block = _details(study, (pair[0].name, pair[1].name), rater_stats)
        cache.set(key, block, CACHE_SECONDS)
    return block


def _details(study: Study, pair: tuple[str, str], rater_stats: list[RaterStats] | None) -> dict:
    read = report_ratings(study, rater_stats=rater_stats)
    details = verdict_details(read.ratings, systems=read.order, pair=pair, seed=study.seed)
    figures = (details.ties, details.length, details.krippendorff_alpha, details.fleiss_kappa)
    return dataclasses.asdict(details) | {
        "enough": not all(getattr(f, "insufficient", False) for f in figures),
        "excluded": sorted(read.gated),
    }
