"""What managers read about the raters' quality: each rater's competence (one-coin
Dawid–Skene, gold items anchored), the study's gate and whom it leaves out, and the monitored
pair's win rate and verdict counted three ways: as the verdict counts (gate applied), weighted
by competence, and with every rater. Managers only: raters never see any of it."""

import dataclasses

from evalhub.analysis.rater_quality import (
    FAR_BELOW,
    WeightedWinRate,
    competences,
    weighted_win_rate,
)
from evalhub.analysis.records import Rating
from evalhub.analysis.winrate import PairSummary, pair_summary
from evalhub.models import Study
from evalhub.selectors.studies import (
    RaterStats,
    pair_ratings,
    study_gate,
    study_gated_raters,
    study_monitored_pair,
    study_rater_stats,
    study_sequential,
)

MODEL = "one-coin Dawid–Skene (Dawid & Skene 1979), gold items anchored to their answer"


def rater_quality_block(
    *,
    study: Study,
    ratings: list[Rating] | None = None,
    rater_stats: list[RaterStats] | None = None,
) -> dict:
    """The study page's, the report's (``rater_quality``) and the API's rater-quality section.
    ``ratings`` are every rater's unblinded judgments, gold items included (read when not
    given); ``rater_stats`` those of :func:`study_rater_stats` (read when not given)."""
    if ratings is None:
        ratings = pair_ratings(study=study, excluded=(), gold=True)
    if rater_stats is None:
        rater_stats = study_rater_stats(study=study)
    gated = study_gated_raters(study=study, rater_stats=rater_stats)
    fitted = {c.rater: c for c in competences(ratings)}
    rows = []
    for row in sorted(rater_stats, key=lambda r: r.rater.get_username()):
        name = row.rater.get_username()
        quality = fitted.get(name)
        rows.append(
            {
                "rater": name,
                "judgments": row.done,
                "gold_judged": row.gold_judged,
                "gold_correct": row.gold_correct,
                "gold_accuracy": row.gold_accuracy,
                "median_seconds": row.median_time_s,
                "competence": quality.competence if quality else None,
                "weight": quality.weight if quality else None,
                "far_below": quality.far_below if quality else False,
                "excluded": name in gated,
                "reasons": gated.get(name, []),
            }
        )
    gate = study_gate(study=study)
    return {
        "model": MODEL,
        "far_below_margin": FAR_BELOW,
        "gate": {
            "min_gold_accuracy": gate.min_gold_accuracy,
            "min_gold_judged": gate.min_gold_judged,
            "min_median_seconds": gate.min_median_seconds,
        },
        "raters": rows,
        "excluded": sorted(gated),
        "far_below": sorted(r["rater"] for r in rows if r["far_below"]),
        "pair": _pair_block(study, ratings, set(gated), {n: c.weight for n, c in fitted.items()}),
    }


def _pair_block(
    study: Study, ratings: list[Rating], gated: set[str], weights: dict[str, float]
) -> dict | None:
    """The monitored pair's win rate counted as the verdict counts, weighted by competence
    (same judgments), and with every rater; and the sequential verdict with and without the
    gated raters."""
    pair = study_monitored_pair(study=study)
    if pair is None:
        return None
    adapter, base = pair[0].name, pair[1].name
    seed = study.seed
    counted = [r for r in ratings if r.rater not in gated]
    with_all = study_sequential(study=study, ratings=ratings, excluded=())
    every = _win_rate(pair_summary(ratings, adapter, base, seed=seed))
    # With nobody left out, the verdict and win rate as counted are those with everyone.
    without = study_sequential(study=study, ratings=counted, excluded=gated) if gated else with_all
    return {
        "adapter": adapter,
        "base": base,
        "counted": _win_rate(pair_summary(counted, adapter, base, seed=seed)) if gated else every,
        "weighted": _win_rate(weighted_win_rate(counted, weights, adapter, base, seed=seed)),
        "all": every,
        "verdict_counted": without.verdict,
        "verdict_all": with_all.verdict,
    }


def _win_rate(summary: PairSummary | WeightedWinRate) -> dict:
    """The judgments, the win rate and its item-clustered bootstrap interval (or why none)."""
    return {
        "judgments": summary.n,
        "win_rate": summary.win_rate,
        "interval": dataclasses.asdict(summary.bootstrap),
    }
