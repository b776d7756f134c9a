"""What managers read about a study: counts, per-rater progress, gold accuracy, time, flags,
the monitored pair, its sequential verdict and prediction-powered interval, and the
correlations that plan the next one."""

import bisect
import dataclasses
import statistics
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, QuerySet

from evalhub import blinding
from evalhub.analysis import allocation, planning, ppi
from evalhub.analysis.rater_quality import GATE_MIN_GOLD_JUDGED, Gate, gate_reasons
from evalhub.analysis.records import Rating
from evalhub.analysis.sequential import Sequential, monitor, pair_outcomes
from evalhub.blinding import unblind_choice
from evalhub.models import (
    Allocation,
    Assignment,
    Choice,
    Comparison,
    Draw,
    Judgment,
    Study,
    System,
    SystemKind,
)
from evalhub.roles import EXPERT_GROUP
from evalhub.selectors.judges import judge_predictions, judge_signal_name
from evalhub.selectors.outputs import run_systems
from trainer.selectors.runs import run_root

# Pairs read "adapter vs base": the newer kind of system is the one whose win rate is shown.
KIND_ORDER = {SystemKind.ADAPTER: 0, SystemKind.IMPORTED: 1, SystemKind.BASE: 2}


@dataclass(frozen=True)
class StudyCounts:
    comparisons: int
    gold: int
    assignments: int
    judged: int
    raters: int


@dataclass(frozen=True)
class RaterStats:
    rater: AbstractBaseUser
    assigned: int
    done: int
    gold_judged: int
    gold_correct: int
    median_time_ms: float | None
    flagged: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.assigned) if self.assigned else 0

    @property
    def median_time_s(self) -> float | None:
        return self.median_time_ms / 1000 if self.median_time_ms is not None else None

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_judged if self.gold_judged else None


def gold_is_correct(*, choice: str, left_is_a: bool, gold_answer: str) -> bool:
    """Whether a rater's choice on a gold comparison names the known better answer."""
    return unblind_choice(choice, left_is_a=left_is_a) == gold_answer


def study_counts(*, study: Study) -> StudyCounts:
    comparisons = Comparison.objects.filter(study=study).aggregate(
        total=Count("id"), gold=Count("id", filter=Q(is_gold=True))
    )
    assignments = Assignment.objects.filter(comparison__study=study).aggregate(
        total=Count("id"),
        judged=Count("id", filter=Q(judgment__isnull=False)),
        raters=Count("rater", distinct=True),
    )
    return StudyCounts(
        comparisons=comparisons["total"],
        gold=comparisons["gold"],
        assignments=assignments["total"],
        judged=assignments["judged"],
        raters=assignments["raters"],
    )


def study_rater_stats(*, study: Study) -> list[RaterStats]:
    """One row per rater: progress, gold accuracy and median time on task. One read of plain
    values and one of the raters, so a study of 100,000 judgments stays quick."""
    rows_read = (
        Assignment.objects.filter(comparison__study=study)
        .order_by("rater__username", "position")
        .values_list(
            "rater_id",
            "left_output_id",
            "comparison__output_a_id",
            "comparison__is_gold",
            "comparison__gold_answer",
            "judgment__id",
            "judgment__choice",
            "judgment__flagged",
            "judgment__time_on_task_ms",
        )
    )
    rows: dict[int, dict] = {}
    times: dict[int, list[int]] = defaultdict(list)
    for (
        rater_id,
        left,
        output_a,
        is_gold,
        answer,
        judged,
        choice,
        flagged,
        time_ms,
    ) in rows_read.iterator(chunk_size=5000):
        row = rows.setdefault(
            rater_id,
            {"assigned": 0, "done": 0, "gold_judged": 0, "gold_correct": 0, "flagged": 0},
        )
        row["assigned"] += 1
        if judged is None:
            continue
        row["done"] += 1
        row["flagged"] += flagged
        if time_ms is not None:
            times[rater_id].append(time_ms)
        if is_gold and choice != Choice.SKIP:  # a skip is no answer
            row["gold_judged"] += 1
            row["gold_correct"] += gold_is_correct(
                choice=choice,
                left_is_a=blinding.left_is_a(left_output=left, output_a=output_a),
                gold_answer=answer,
            )
    users = get_user_model().objects.in_bulk(list(rows))
    return [
        RaterStats(
            rater=users[rater_id],
            **row,
            median_time_ms=statistics.median(times[rater_id]) if times[rater_id] else None,
        )
        for rater_id, row in rows.items()
    ]


def study_flagged(*, study: Study) -> QuerySet[Judgment]:
    return (
        Judgment.objects.filter(assignment__comparison__study=study, flagged=True)
        .select_related("assignment__rater", "assignment__comparison__prompt")
        .order_by("-updated_at")
    )


def study_raters(*, study: Study) -> QuerySet[AbstractBaseUser]:
    return (
        get_user_model()
        .objects.filter(assignments__comparison__study=study)
        .distinct()
        .order_by("username")
    )


def study_candidate_raters(*, study: Study | None = None) -> QuerySet[AbstractBaseUser]:
    """Active accounts that could rate (not yet in ``study``), experts first."""
    users = get_user_model().objects.filter(is_active=True)
    if study is not None:
        users = users.exclude(assignments__comparison__study=study)
    return users.annotate(
        expert=Count("groups", filter=Q(groups__name=EXPERT_GROUP)),
    ).order_by("-expert", "username")


def study_list() -> QuerySet[Study]:
    """Every study, newest first, with its systems and ``comparison_count``,
    ``assignment_count`` and ``judgment_count`` annotated."""
    return (
        Study.objects.select_related("run", "created_by")
        .prefetch_related("systems")
        .annotate(
            comparison_count=Count("comparisons", distinct=True),
            assignment_count=Count("comparisons__assignments", distinct=True),
            judgment_count=Count("comparisons__assignments__judgment", distinct=True),
        )
        .order_by("-created_at", "-id")
    )


def study_systems_in_order(*, study: Study) -> list[System]:
    """The study's systems, adapters first, then imported, then base models, by name."""
    systems = study.systems.select_related("base_model", "run")
    return sorted(systems, key=lambda s: (KIND_ORDER.get(s.kind, 3), s.name))


def study_monitored_pair(*, study: Study) -> tuple[System, System] | None:
    """The two systems whose win rate the sequential verdict follows, as (adapter, base):
    the study run's adapter and base, found by (run, kind), when both are in the study (the
    base of the first run of its ``from_run`` chain when the run has none of its own);
    otherwise the first two systems in :func:`study_systems_in_order`. None with fewer."""
    systems = study_systems_in_order(study=study)
    if study.run_id:
        adapter = run_systems(run=study.run)[SystemKind.ADAPTER]
        # A run that improves another's adapter shares its base model: the first run's base
        # system is its base when the run has none of its own in the study (base, v1, v2).
        bases = [run_systems(run=r)[SystemKind.BASE] for r in (study.run, run_root(run=study.run))]
        base = next((b for b in bases if b in systems), None)
        if adapter in systems and base is not None:
            return adapter, base
    return (systems[0], systems[1]) if len(systems) >= 2 else None


def study_gate(*, study: Study) -> Gate:
    return Gate(
        min_gold_accuracy=study.min_gold_accuracy,
        min_gold_judged=GATE_MIN_GOLD_JUDGED,
        min_median_seconds=study.min_median_seconds,
    )


def study_gated_raters(
    *, study: Study, rater_stats: list[RaterStats] | None = None
) -> dict[str, list[str]]:
    """The raters the study's gate leaves out of the verdict, by username, with the reasons in
    words; computed from :func:`study_rater_stats` (given, or read)."""
    gate = study_gate(study=study)
    if rater_stats is None:
        rater_stats = study_rater_stats(study=study)
    failed = {
        row.rater.get_username(): gate_reasons(
            gate,
            gold_judged=row.gold_judged,
            gold_correct=row.gold_correct,
            median_time_ms=row.median_time_ms,
        )
        for row in rater_stats
    }
    return {rater: reasons for rater, reasons in failed.items() if reasons}


def _pair_ratings(
    studies: QuerySet[Study] | list[Study],
    *,
    excluded: Mapping[int, Collection[str]] | None = None,
    gold: bool = False,
) -> dict[int, list[Rating]]:
    """Unblinded judgments of each study, in the order they were made; skips name no verdict
    and are left out, and so are the judgments of the raters ``excluded[study id]`` (by
    default those each study's gate leaves out: the verdict counts no others). ``gold``: gold
    items come too, with their answer."""
    studies = list(studies)
    if excluded is None:
        excluded = {s.pk: study_gated_raters(study=s) for s in studies}
    rows = Judgment.objects.filter(assignment__comparison__study__in=studies)
    if not gold:
        rows = rows.filter(assignment__comparison__is_gold=False)
    rows = (
        rows.exclude(choice=Choice.SKIP)
        .order_by("id")
        .values_list(
            "assignment__comparison__study_id",
            "assignment__comparison_id",
            "assignment__rater__username",
            "assignment__left_output_id",
            "assignment__comparison__output_a_id",
            "assignment__comparison__output_a__system__name",
            "assignment__comparison__output_b__system__name",
            "assignment__comparison__gold_answer",
            "choice",
        )
    )
    ratings: dict[int, list[Rating]] = defaultdict(list)
    for study_id, item, rater, left, output_a, system_a, system_b, answer, choice in rows.iterator(
        chunk_size=5000
    ):
        if rater in excluded[study_id]:
            continue
        left_is_a = blinding.left_is_a(left_output=left, output_a=output_a)
        verdict = blinding.unblind_choice(choice, left_is_a=left_is_a)
        ratings[study_id].append(
            Rating(item, rater, system_a, system_b, verdict, gold=answer or None)
        )
    return ratings


def pair_ratings(
    *, study: Study, excluded: Collection[str] | None = None, gold: bool = False
) -> list[Rating]:
    """The study's unblinded judgments, in the order they were made, less those of the raters
    ``excluded`` (by default, those the study's gate leaves out; see :func:`_pair_ratings`)."""
    by_study = None if excluded is None else {study.pk: excluded}
    return _pair_ratings([study], excluded=by_study, gold=gold)[study.pk]


def study_sequential(
    *,
    study: Study,
    ratings: list[Rating] | None = None,
    excluded: Collection[str] | None = None,
) -> Sequential | None:
    """The always-valid interval and verdict for the monitored pair; None without a pair.
    ``excluded`` raters count for nothing (by default, those the study's gate leaves out);
    ``ratings`` (unblinded, in judgment order, without theirs) are read when not given. In a
    uniform study a comparison counts once it has a judgment for each of its assignments but
    theirs; in an adaptive one each draw counts once its judgment is in
    (:func:`_adaptive_sequential`)."""
    pair = study_monitored_pair(study=study)
    if pair is None:
        return None
    if excluded is None:
        excluded = study_gated_raters(study=study)
    if ratings is None:
        ratings = pair_ratings(study=study, excluded=excluded)
    outcomes = pair_outcomes(ratings, pair[0].name, pair[1].name)
    if study.allocation == Allocation.ADAPTIVE:
        return _adaptive_sequential(study, outcomes)
    return monitor(
        outcomes,
        required=_required(study, excluded=excluded),
        margin=study.equivalence_margin,
        raters_at_large=study.raters_at_large,
    )


def _adaptive_sequential(study: Study, outcomes: list) -> Sequential:
    """The draws whose judgments are in, in the order they completed: a draw completes when
    its assignment is judged, or when it is made if that assignment was judged before (a
    reused cell). A skipped cell brings no outcome: its draws never complete."""
    predictions = dict(
        Comparison.objects.filter(study=study, is_gold=False).values_list("id", "prediction")
    )
    predictions = {k: 0.5 if v is None else v for k, v in predictions.items()}
    value = {(o.item, o.rater): o.value for o in outcomes}
    judged_at = sorted(
        Judgment.objects.filter(
            assignment__comparison__study=study, assignment__comparison__is_gold=False
        )
        .exclude(choice=Choice.SKIP)
        .values_list("created_at", flat=True)
    )
    rows = Draw.objects.filter(study=study, assignment__judgment__isnull=False).values_list(
        "number",
        "created_at",
        "weight",
        "prediction",
        "centre",
        "low",
        "high",
        "assignment__comparison_id",
        "assignment__rater__username",
        "assignment__judgment__created_at",
    )
    completed = []
    for number, made, weight, prediction, centre, low, high, item, rater, judged in rows:
        if (item, rater) not in value:
            continue
        at = max(made, judged)
        draw = allocation.Draw(
            item=item,
            rater=rater,
            weight=weight,
            prediction=prediction,
            centre=centre,
            low=low,
            high=high,
        )
        completed.append((at, number, draw, value[(item, rater)]))
    completed.sort(key=lambda row: (row[0], row[1]))
    judgments = [bisect.bisect_right(judged_at, at) for at, *_ in completed]
    return allocation.monitor(
        [
            allocation.Completed(draw, outcome, count)
            for (_, _, draw, outcome), count in zip(completed, judgments, strict=True)
        ],
        predictions,
        judged=[o.value for o in outcomes],
        margin=study.equivalence_margin,
    )


def _required(study: Study, *, excluded: Collection[str]) -> dict[int, int]:
    """The judgments that complete each non-gold comparison: its assignments less its skips,
    which bring no outcome, and less those of the ``excluded`` raters. A comparison that needs
    none is left out."""
    assignments = Assignment.objects.filter(
        comparison__study=study, comparison__is_gold=False
    ).exclude(rater__username__in=list(excluded))
    rows = (
        assignments.values("comparison_id")
        .annotate(
            assignments=Count("id"), skips=Count("id", filter=Q(judgment__choice=Choice.SKIP))
        )
        .values_list("comparison_id", "assignments", "skips")
    )
    return {item: total - skips for item, total, skips in rows if total > skips}


def sequential_block(
    *,
    study: Study,
    ratings: list[Rating] | None = None,
    excluded: Collection[str] | None = None,
) -> dict | None:
    """What the study page, the report (``sequential``) and the API show: the monitored pair
    by name, the verdict and interval, and the study's stopping settings. Managers only."""
    if excluded is None:
        excluded = study_gated_raters(study=study)
    state = study_sequential(study=study, ratings=ratings, excluded=excluded)
    if state is None:
        return None
    adapter, base = study_monitored_pair(study=study)
    left = study_judgments_left(study=study, pair=(adapter, base), excluded=excluded)
    return {
        "adapter": adapter.name,
        "base": base.name,
        **dataclasses.asdict(state),
        "judgments_left": left,
        "interval": {"low": state.interval[0], "high": state.interval[1], "method": state.method},
        "stop_when_decided": study.stop_when_decided,
        "stopped_at": study.stopped_at,
        "allocation": study.allocation,
    }


def allocation_budget(*, study: Study) -> int:
    """The most expert judgments an adaptive study asks for: what the uniform design would,
    every comparison to ``overlap`` raters. It usually stops far earlier, when decided."""
    return study.comparisons.filter(is_gold=False).count() * study.overlap


def study_judgments_left(
    *, study: Study, pair: tuple[System, System], excluded: Collection[str]
) -> int:
    """The judgments the study can still get towards its verdict on ``pair``: an adaptive
    study's budget less the judgments (skips too) it has had; a uniform study's assignments of
    the pair still unjudged, less those of the ``excluded`` raters, who count for nothing."""
    regular = Assignment.objects.filter(comparison__study=study, comparison__is_gold=False)
    if study.allocation == Allocation.ADAPTIVE:
        spent = regular.filter(judgment__isnull=False).count()
        return max(allocation_budget(study=study) - spent, 0)
    systems = [s.pk for s in pair]
    return (
        regular.filter(
            judgment__isnull=True,
            comparison__output_a__system__in=systems,
            comparison__output_b__system__in=systems,
        )
        .exclude(rater__username__in=list(excluded))
        .count()
    )


# The automated metrics a prediction-powered interval may use, best first: the first that
# covers the most comparisons of the pair is taken, unless the study names a judge instead.
SIGNAL_METRICS = ("bertscore_f1", "rougeL")
SIGNAL_METRIC = "metric"
REASON_ADAPTIVE = (
    "an adaptive study already combines its signal with the experts in its verdict's interval; "
    "its judgments are not a random sample, which this interval needs"
)
REASON_NO_SIGNAL = "no automated metric is scored on both outputs of the pair's comparisons"
REASON_NO_JUDGE_VERDICTS = "the judge has judged none of the pair's comparisons in both orders"


def study_signal(*, study: Study, pair: tuple[System, System]) -> tuple[str, dict[int, float]]:
    """(signal name, comparison -> predicted outcome for the adapter in [0, 1]) for the
    study's non-gold comparisons of ``pair``. The study's ``signal`` chooses: "judge:<name>",
    that judge's call on each comparison it judged in both orders (1, ½, 0); otherwise the
    metric difference adapter − base mapped by :func:`ppi.metric_predictions`. An empty
    mapping when the signal covers no comparison."""
    judge = judge_signal_name(study.signal)
    if judge is not None:
        return study.signal, judge_predictions(study=study, judge=judge, pair=pair)
    adapter = pair[0]
    rows = Comparison.objects.filter(
        study=study,
        is_gold=False,
        output_a__system__in=pair,
        output_b__system__in=pair,
    ).values_list("id", "output_a__system_id", "output_a__metrics", "output_b__metrics")
    differences: dict[str, dict[int, float]] = {m: {} for m in SIGNAL_METRICS}
    for comparison, system_a, metrics_a, metrics_b in rows.iterator(chunk_size=5000):
        ours, theirs = (metrics_a, metrics_b) if system_a == adapter.pk else (metrics_b, metrics_a)
        for metric in SIGNAL_METRICS:
            if ours.get(metric) is not None and theirs.get(metric) is not None:
                differences[metric][comparison] = ours[metric] - theirs[metric]
    metric = max(SIGNAL_METRICS, key=lambda m: len(differences[m]))
    return metric, ppi.metric_predictions(differences[metric])


def ppi_block(
    *,
    study: Study,
    ratings: list[Rating] | None = None,
    excluded: Collection[str] | None = None,
) -> dict | None:
    """What the study page, the report (``ppi``) and the API show beside the verdict: the
    prediction-powered interval for the monitored pair's win rate and the experts' alone over
    the same complete comparisons, or why there is none. Managers only; None without a pair."""
    pair = study_monitored_pair(study=study)
    if pair is None:
        return None
    if excluded is None:
        excluded = study_gated_raters(study=study)
    if ratings is None:
        ratings = pair_ratings(study=study, excluded=excluded)
    labels = ppi.complete_comparisons(
        pair_outcomes(ratings, pair[0].name, pair[1].name), _required(study, excluded=excluded)
    )
    signal, predictions = study_signal(study=study, pair=pair)
    if study.allocation == Allocation.ADAPTIVE:
        result = ppi.NotComputed(signal, len(labels), 0, REASON_ADAPTIVE)
    elif not predictions and judge_signal_name(study.signal) is not None:
        result = ppi.NotComputed(signal, len(labels), 0, REASON_NO_JUDGE_VERDICTS)
    elif not predictions:
        result = ppi.NotComputed(None, len(labels), 0, REASON_NO_SIGNAL)
    else:
        result = ppi.prediction_powered(labels, predictions, signal=signal)
    block = {
        "adapter": pair[0].name,
        "base": pair[1].name,
        "signal": result.signal,
        "signal_kind": "metric" if judge_signal_name(study.signal) is None else "judge",
        "labelled": result.labelled,
        "unlabelled": result.unlabelled,
        "alpha": ppi.ALPHA,
    }
    if isinstance(result, ppi.NotComputed):
        return block | {"reason": result.reason}
    return block | {
        "reason": None,
        "estimate": result.estimate,
        "interval": _interval(result.interval, result.method),
        "expert_estimate": result.expert_estimate,
        "expert_interval": _interval(result.expert_interval, result.expert_method),
        "width_ratio": result.width_ratio,
        "signal_correlation": result.signal_correlation,
    }


def _interval(bounds: tuple[float, float], method: str) -> dict:
    return {"low": bounds[0], "high": bounds[1], "method": method}


def earlier_correlations() -> planning.Correlations:
    """Intraclass correlations of the monitored pair's outcomes in the project's studies:
    within a comparison (one prompt, several raters) and within a rater of one study. Each
    study's own mean is taken out first, so that studies of a better or worse adapter do not
    pass for correlation. A correlation with too few groups falls back to its default."""
    studies = list(
        Study.objects.filter(comparisons__assignments__judgment__isnull=False).distinct()
    )
    by_item: dict[int, list[float]] = defaultdict(list)
    by_rater: dict[tuple[int, str], list[float]] = defaultdict(list)
    for study_id, ratings in _pair_ratings(studies).items():
        pair = study_monitored_pair(study=next(s for s in studies if s.pk == study_id))
        if pair is None:
            continue
        kept = [r for r in ratings if r.compares(pair[0].name, pair[1].name)]
        outcomes = [o.value for o in pair_outcomes(kept, pair[0].name, pair[1].name)]
        if not outcomes:
            continue
        mean = sum(outcomes) / len(outcomes)
        for r, value in zip(kept, outcomes, strict=True):
            by_item[r.item].append(value - mean)
            by_rater[(study_id, r.rater)].append(value - mean)
    items = [g for g in by_item.values() if len(g) >= 2]
    raters = [g for g in by_rater.values() if len(g) >= 2]
    prompt_icc = planning.icc_oneway(items) if len(items) >= planning.MIN_ICC_GROUPS else None
    rater_icc = planning.icc_oneway(raters) if len(raters) >= planning.MIN_ICC_RATERS else None
    measured = [
        f"{name} from {count} {unit} of {len(studies)} earlier studies"
        for name, value, count, unit in (
            ("prompt correlation", prompt_icc, len(items), "comparisons"),
            ("rater correlation", rater_icc, len(raters), "raters"),
        )
        if value is not None
    ]
    return planning.Correlations(
        prompt_icc=planning.DEFAULT_PROMPT_ICC if prompt_icc is None else prompt_icc,
        rater_icc=planning.DEFAULT_RATER_ICC if rater_icc is None else rater_icc,
        source="; ".join(measured) + ("; other defaults" if len(measured) == 1 else "")
        if measured
        else "defaults (no earlier studies with enough judgments)",
    )


def study_plan(
    *,
    win_rate: float,
    tie_rate: float = 0.0,
    power: float = 0.8,
    alpha: float = 0.05,
    overlap: int = 2,
    raters: int | None = None,
    raters_at_large: bool = False,
) -> planning.StudyPlan:
    """A plan with the correlations measured in the project's earlier studies (or the stated
    defaults). Raises ``planning.PlanError`` naming the bad input."""
    return planning.plan_study(
        win_rate=win_rate,
        tie_rate=tie_rate,
        power=power,
        alpha=alpha,
        overlap=overlap,
        raters=raters,
        correlations=earlier_correlations(),
        raters_at_large=raters_at_large,
    )
