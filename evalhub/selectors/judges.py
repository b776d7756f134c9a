"""Reads of the model judges' verdicts on a study: as records for the calibration, as the
report's ``judges`` block and ``judge_verdicts`` rows, and as the adapter's predicted outcome
when a judge is the study's cheap signal. Managers only: experts never see any of it."""

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from evalhub import blinding
from evalhub.analysis import judge_calibration
from evalhub.analysis.records import A, B, Rating
from evalhub.models import Judge, JudgeOrder, JudgeVerdict, Study, System

JUDGE_SIGNAL_PREFIX = "judge:"
CONFUSION_NAMES = ("the system listed first", "the system listed second", "tie")


def judge_ratings(
    *, study: Study, comparisons: Mapping[int, dict[str, Any]] | None = None
) -> dict[str, list[Rating]]:
    """judge name -> its verdicts on the study's evaluated comparisons, one :class:`Rating`
    per order (``left``: the side shown first). With ``comparisons`` (the report's, oriented so
    that output a is the earlier system) the sides follow that orientation and carry the
    lengths; without, they are the stored sides."""
    rows = (
        JudgeVerdict.objects.filter(comparison__study=study, comparison__is_gold=False)
        .order_by("judge__name", "comparison_id", "order")
        .values_list(
            "judge__name",
            "comparison_id",
            "comparison__prompt_id",
            "comparison__output_a_id",
            "comparison__output_a__system__name",
            "comparison__output_b__system__name",
            "order",
            "choice",
        )
    )
    ratings: dict[str, list[Rating]] = defaultdict(list)
    for name, cid, prompt, stored_a, system_a, system_b, order, choice in rows.iterator(
        chunk_size=5000
    ):
        c = comparisons[cid] if comparisons is not None else None
        same = c is None or blinding.left_is_a(left_output=stored_a, output_a=c["output_a"])
        first = A if order == JudgeOrder.AB else B
        ratings[name].append(
            Rating(
                item=cid,
                rater=name,
                system_a=c["system_a"] if c else system_a,
                system_b=c["system_b"] if c else system_b,
                verdict=blinding.unblind_choice(choice, left_is_a=same),
                left=blinding.unblind_choice(first, left_is_a=same),
                length_a=c["length_a"] if c else None,
                length_b=c["length_b"] if c else None,
                prompt=prompt,
            )
        )
    return dict(ratings)


def judges_block(
    *,
    study: Study,
    comparisons: Mapping[int, dict[str, Any]],
    experts: Sequence[Rating],
    final_calls: Sequence[Rating],
    resamples: int,
) -> list[dict[str, Any]]:
    """The report's ``judges``: each judge with verdicts on the study, calibrated against the
    experts' judgments that the verdict counts and the reviewers' final calls."""
    by_judge = judge_ratings(study=study, comparisons=comparisons)
    judges = Judge.objects.filter(name__in=by_judge).order_by("name")
    return [
        _judge_block(
            judge,
            judge_calibration.calibrate(
                by_judge[judge.name], experts, final_calls, seed=study.seed, resamples=resamples
            ),
            comparisons,
        )
        for judge in judges
    ]


def _judge_block(
    judge: Judge, result: judge_calibration.Calibration, comparisons: Mapping[int, dict]
) -> dict[str, Any]:
    def named(cid: int, call: str) -> str:
        c = comparisons[cid]
        return {A: c["system_a"], B: c["system_b"]}.get(call, call)

    # The confusion's a and b by system name when the study compares one pair.
    pairs = {(c["system_a"], c["system_b"]) for c in comparisons.values() if not c["is_gold"]}
    names = [*next(iter(pairs)), "tie"] if len(pairs) == 1 else list(CONFUSION_NAMES)

    return {
        "name": judge.name,
        "model": judge.model,
        "backend": judge.backend,
        "verdicts": result.verdicts,
        "judged": result.judged,
        "flips": result.flips,
        "flip_rate": result.flip_rate,
        "decided": result.decided,
        "kappa": dataclasses.asdict(result.kappa)
        | {"interval": dataclasses.asdict(result.kappa_interval)},
        "strength": result.strength,
        "expert_kappa": dataclasses.asdict(result.expert_kappa),
        "confusion": {
            "labels": list(judge_calibration.LABELS),
            "names": names,
            "rows": "experts",
            "columns": "judge",
            "counts": result.confusion,
        },
        "position_bias": {
            "judge": dataclasses.asdict(result.position_bias),
            "experts": dataclasses.asdict(result.expert_position_bias),
        },
        "length_bias": {
            "judge": dataclasses.asdict(result.length_bias),
            "experts": dataclasses.asdict(result.expert_length_bias),
        },
        "stand_in": dataclasses.asdict(result.stand_in),
        "disagreements": [
            {
                "comparison": d.item,
                "judge": named(d.item, d.judge),
                "experts": named(d.item, d.experts),
                "orders": [
                    {"first": named(d.item, A), "choice": named(d.item, d.judge_ab)},
                    {"first": named(d.item, B), "choice": named(d.item, d.judge_ba)},
                ],
            }
            for d in result.disagreements
        ],
    }


def judge_verdict_rows(
    *, study: Study, comparisons: Mapping[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The export's ``judge_verdicts``: one row per judge and comparison judged, its choice
    with each output shown first and its call, by system name (``flipped``: the orders
    disagree; the call and ``flipped`` are None until both orders are in)."""
    rows = []
    for name, ratings in judge_ratings(study=study, comparisons=comparisons).items():
        calls = judge_calibration.judge_calls(ratings)
        for cid, verdicts in judge_calibration.judge_orders(ratings).items():
            c = comparisons[cid]
            names = {A: c["system_a"], B: c["system_b"]}
            call, flipped = calls.get(cid, (None, None))
            rows.append(
                {
                    "judge": name,
                    "comparison": cid,
                    "orders": [
                        {"first": names[side], "choice": names.get(choice, choice)}
                        for side, choice in (
                            (A, verdicts.get(judge_calibration.AB)),
                            (B, verdicts.get(judge_calibration.BA)),
                        )
                        if choice is not None
                    ],
                    "call": names.get(call, call),
                    "flipped": flipped,
                }
            )
    return rows


def judge_signal_name(signal: str) -> str | None:
    """The judge a study's signal names ("judge:<name>"), or None for the metric."""
    if signal.startswith(JUDGE_SIGNAL_PREFIX):
        return signal.removeprefix(JUDGE_SIGNAL_PREFIX)
    return None


def study_signal_choices(*, study: Study) -> list[tuple[str, str]]:
    """(value, label) of the signals a study may use: the metric, and each judge with verdicts
    on the study."""
    judges = (
        Judge.objects.filter(verdicts__comparison__study=study)
        .distinct()
        .order_by("name")
        .values_list("name", flat=True)
    )
    return [("metric", "automated metric")] + [
        (f"{JUDGE_SIGNAL_PREFIX}{name}", f"model judge {name}") for name in judges
    ]


def judge_predictions(*, study: Study, judge: str, pair: tuple[System, System]) -> dict[int, float]:
    """comparison -> the adapter's outcome by ``judge``'s call (1, ½, 0), for the study's
    evaluated comparisons of ``pair`` that the judge judged in both orders."""
    ratings = judge_ratings(study=study).get(judge, [])
    adapter, base = pair[0].name, pair[1].name
    sides = {
        r.item: A if r.system_a == adapter else B for r in ratings if r.compares(adapter, base)
    }
    calls = {item: call for item, (call, _) in judge_calibration.judge_calls(ratings).items()}
    return judge_calibration.adapter_outcomes(calls, sides)
