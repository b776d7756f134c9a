"""The study page's "Verdict details" card: the monitored pair's tie-aware probabilities and
both-bad rate, its length-controlled win rate, and the raters' agreement, each the number the
report gives, from the same records (the report's, less the raters the gate leaves out)."""

import dataclasses

from evalhub.analysis.summary import verdict_details
from evalhub.models import Study
from evalhub.reports.build import report_ratings
from evalhub.selectors.studies import RaterStats, study_monitored_pair


def verdict_details_block(
    *, study: Study, rater_stats: list[RaterStats] | None = None
) -> dict | None:
    """The card's figures as a dict, or None when the study has no pair to follow;
    ``enough`` is false while every figure still lacks judgments. Managers only."""
    pair = study_monitored_pair(study=study)
    if pair is None:
        return None
    read = report_ratings(study, rater_stats=rater_stats)
    details = verdict_details(
        read.ratings, systems=read.order, pair=(pair[0].name, pair[1].name), seed=study.seed
    )
    block = dataclasses.asdict(details)
    figures = (details.ties, details.length, details.krippendorff_alpha, details.fleiss_kappa)
    block["enough"] = not all(getattr(f, "insufficient", False) for f in figures)
    block["excluded"] = sorted(read.gated)
    return block
