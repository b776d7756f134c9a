import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import cohens_kappa

from evalhub.analysis.agreement import Coefficient, cohen_kappa
from evalhub.analysis.base import Insufficient, Interval
from evalhub.analysis.judge_calibration import (
    CEILING_METHOD,
    MAY,
    MAY_NOT,
    REASON_FEW_DECIDED,
    REASON_FLIPS,
    adapter_outcomes,
    calibrate,
    expert_calls,
    expert_ceiling,
    judge_calls,
    kappa_interval,
    stand_in,
    strength,
)
from tests.evalhub.analysis.builders import rating

LABELS = ["a", "b", "tie"]


def judged(item, ab, ba, **fields):
    """The judge's two verdicts on ``item``: ``ab`` with output a first, ``ba`` with b first."""
    return [
        rating(item, ab, rater="judge", left="a", **fields),
        rating(item, ba, rater="judge", left="b", **fields),
    ]


def test_a_verdict_that_flips_with_the_order_is_a_tie_and_a_flip():
    verdicts = (
        judged(1, "a", "a")
        + judged(2, "a", "b")
        + judged(3, "tie", "b")
        + [
            rating(4, "a", rater="judge", left="a")  # one order only: no call yet
        ]
    )
    assert judge_calls(verdicts) == {1: ("a", False), 2: ("tie", True), 3: ("tie", True)}


def test_experts_call_is_the_final_call_else_the_majority_with_both_bad_a_tie():
    experts = [
        rating(1, "a", "r1"),
        rating(1, "a", "r2"),
        rating(1, "b", "r3"),
        rating(2, "a", "r1"),
        rating(2, "b", "r2"),  # split: no call
        rating(3, "both_bad", "r1"),
        rating(3, "tie", "r2"),
        rating(4, "a", "r1"),
    ]
    final = [rating(4, "b", "reviewer")]
    assert expert_calls(experts, final) == {1: "a", 3: "tie", 4: "b"}


def test_kappa_three_labels_by_hand_and_against_sklearn():
    # Experts (rows) x judge (columns), a/b/tie: [[20, 5, 0], [3, 15, 2], [2, 3, 10]], n = 60.
    # p_o = 45/60 = 0.75; rows 25, 20, 15; columns 25, 23, 12;
    # p_e = (25·25 + 20·23 + 15·12) / 3600 = 1265/3600; κ = (0.75 − p_e)/(1 − p_e) = 1435/2335.
    table = [[20, 5, 0], [3, 15, 2], [2, 3, 10]]
    experts, judge = [], []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            experts += [LABELS[i]] * count
            judge += [LABELS[j]] * count
    assert cohen_kappa(experts, judge).value == pytest.approx(1435 / 2335)
    assert cohen_kappa(experts, judge).value == pytest.approx(cohen_kappa_score(experts, judge))


def test_kappa_interval_is_close_to_the_asymptotic_one_of_statsmodels():
    rng = np.random.default_rng(3)
    experts = list(rng.choice(LABELS, size=400, p=[0.45, 0.35, 0.2]))
    judge = [x if rng.random() < 0.7 else str(rng.choice(LABELS)) for x in experts]
    table = np.zeros((3, 3))
    for x, y in zip(experts, judge, strict=True):
        table[LABELS.index(x), LABELS.index(y)] += 1
    reference = cohens_kappa(table)
    interval = kappa_interval(experts, judge, seed=1, resamples=2000)
    assert interval.low == pytest.approx(reference.kappa_low, abs=0.02)
    assert interval.high == pytest.approx(reference.kappa_upp, abs=0.02)
    assert interval.low < reference.kappa < interval.high


def test_kappa_interval_refuses_few_items():
    assert isinstance(kappa_interval(["a"] * 9, ["a"] * 9), Insufficient)


def test_expert_ceiling_weights_each_pair_by_its_shared_items():
    rng = np.random.default_rng(5)
    experts, pairs = [], []
    for first, second, items, start in (("r1", "r2", 30, 0), ("r3", "r4", 10, 100)):
        x = list(rng.choice(LABELS, size=items))
        y = [v if rng.random() < 0.6 else str(rng.choice(LABELS)) for v in x]
        experts += [rating(start + i, v, first) for i, v in enumerate(x)]
        experts += [rating(start + i, v, second) for i, v in enumerate(y)]
        pairs.append((cohen_kappa_score(x, y), items))
    ceiling = expert_ceiling(experts)
    expected = (pairs[0][0] * 30 + pairs[1][0] * 10) / 40
    assert ceiling == Coefficient(pytest.approx(expected), 40, CEILING_METHOD)


def test_judge_that_always_picks_the_first_shown_flips_everywhere_and_may_not_stand_in():
    verdicts = [v for i in range(60) for v in judged(i, "a", "b")]
    experts = [rating(i, "a" if i % 2 else "b", r) for i in range(60) for r in ("r1", "r2")]
    result = calibrate(verdicts, experts, resamples=200)
    assert result.flip_rate == 1.0 and result.flips == 60
    assert result.position_bias.share == 1.0
    assert result.confusion == [[0, 0, 30], [0, 0, 30], [0, 0, 0]]
    assert not result.stand_in.may_stand_in
    assert REASON_FLIPS.format(rate=1.0, most=0.2) in result.stand_in.reasons


def _agreeing_study(n, *, wrong=0):
    """Two experts who agree on every item; a judge who agrees with them except on ``wrong``."""
    verdicts, experts = [], []
    for i in range(n):
        call = ("a", "b", "tie")[i % 3]
        mine = ("b" if call == "a" else "a") if i < wrong else call
        verdicts += judged(i, mine, mine, length_a=10 + i % 2, length_b=11)
        experts += [rating(i, call, r, length_a=10 + i % 2, length_b=11) for r in ("r1", "r2")]
    return verdicts, experts


def test_a_judge_that_agrees_with_the_experts_may_stand_in():
    verdicts, experts = _agreeing_study(60, wrong=3)
    result = calibrate(verdicts, experts, resamples=300)
    assert result.decided == 60 and result.flip_rate == 0.0
    assert result.expert_kappa.value == pytest.approx(1.0)
    assert result.stand_in.verdict == MAY
    assert result.strength == "almost perfect"
    assert [(d.item, d.judge, d.experts) for d in result.disagreements] == [
        (0, "b", "a"),
        (1, "a", "b"),
        (2, "a", "tie"),
    ]
    assert result.confusion == [[19, 1, 0], [1, 19, 0], [1, 0, 19]]


def test_too_few_decided_comparisons_is_said_even_for_a_perfect_judge():
    verdicts, experts = _agreeing_study(30)
    result = calibrate(verdicts, experts, resamples=200)
    assert result.stand_in.verdict == MAY_NOT
    assert result.stand_in.reasons == [REASON_FEW_DECIDED.format(n=30, need=50)]


def test_stand_in_bar_is_a_share_of_the_experts_kappa_never_below_the_floor():
    interval = Interval(0.35, 0.6, "x")
    kappa = Coefficient(0.5, 80, "x")
    common = dict(decided=80, interval=interval, kappa=kappa, flip_rate=0.1)
    assert stand_in(ceiling=Coefficient(0.4, 80, "x"), **common).may_stand_in  # bar 0.32
    assert not stand_in(ceiling=Coefficient(0.5, 80, "x"), **common).may_stand_in  # bar 0.40
    assert not stand_in(ceiling=Insufficient("few", 0, 10), **common).may_stand_in  # bar 0.6
    low = dict(common, interval=Interval(0.15, 0.6, "x"))
    assert not stand_in(ceiling=Coefficient(0.1, 80, "x"), **low).may_stand_in  # floor 0.2


def test_strength_words_follow_landis_and_koch():
    assert [strength(k) for k in (-0.1, 0.1, 0.3, 0.5, 0.7, 0.9)] == [
        "none beyond chance",
        "slight",
        "fair",
        "moderate",
        "substantial",
        "almost perfect",
    ]


def test_judge_calls_become_the_adapters_outcome():
    calls = {1: "a", 2: "b", 3: "tie", 4: "a"}
    sides = {1: "a", 2: "a", 3: "b", 4: "b"}
    assert adapter_outcomes(calls, sides) == {1: 1.0, 2: 0.0, 3: 0.5, 4: 0.0}
