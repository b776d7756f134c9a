"""Agreement between raters on the same items, over the unblinded verdict
(a better / b better / tie / both bad): Cohen's κ per pair of raters, Fleiss' κ and
Krippendorff's α (nominal) over all raters, and percent agreement.

Verdicts are compared in storage terms, never as displayed: two raters who both preferred the
adapter agree even if one saw it on the left and the other on the right.
"""

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evalhub.analysis.base import (
    MIN_ITEMS,
    MIN_SHARED_ITEMS,
    REASON_FEW_ITEMS,
    REASON_FEW_SHARED,
    REASON_NO_VARIATION,
    Insufficient,
)
from evalhub.analysis.records import Rating


@dataclass(frozen=True, slots=True)
class Coefficient:
    value: float
    n: int
    method: str


@dataclass(frozen=True, slots=True)
class KappaPair:
    rater_1: str
    rater_2: str
    shared_items: int
    kappa: Coefficient | Insufficient


@dataclass(frozen=True, slots=True)
class AgreementSummary:
    raters: list[str]
    items_with_overlap: int
    percent_agreement: Coefficient | Insufficient
    fleiss_kappa: Coefficient | Insufficient
    krippendorff_alpha: Coefficient | Insufficient
    pairs: list[KappaPair]


def labels_by_item(ratings: Sequence[Rating]) -> dict[int, dict[str, str]]:
    """item -> rater -> verdict."""
    table: dict[int, dict[str, str]] = defaultdict(dict)
    for r in ratings:
        table[r.item][r.rater] = r.verdict
    return table


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> Coefficient | Insufficient:
    """Cohen's κ = (p_o − p_e) / (1 − p_e) for two raters' labels of the same items."""
    n = len(first)
    if n != len(second):
        raise ValueError("both raters need one label per shared item")
    if n < MIN_SHARED_ITEMS:
        return Insufficient(REASON_FEW_SHARED, n, MIN_SHARED_ITEMS)
    observed = sum(x == y for x, y in zip(first, second, strict=True)) / n
    count_1, count_2 = Counter(first), Counter(second)
    expected = sum(count_1[c] * count_2[c] for c in count_1) / (n * n)
    if math.isclose(expected, 1.0):
        return Insufficient(REASON_NO_VARIATION, n, MIN_SHARED_ITEMS)
    return Coefficient((observed - expected) / (1 - expected), n, "Cohen's kappa")


def category_table(groups: Sequence[dict[str, str]]) -> np.ndarray:
    """items × categories counts; the categories are the labels that occur."""
    labels = sorted({label for g in groups for label in g.values()})
    column = {label: i for i, label in enumerate(labels)}
    table = np.zeros((len(groups), len(labels)))
    for row, raters in enumerate(groups):
        for label in raters.values():
            table[row, column[label]] += 1
    return table


def item_agreement(table: np.ndarray) -> np.ndarray:
    """Per item (row, ≥ 2 ratings): the share of its pairs of raters that gave the same label."""
    m = table.sum(axis=1)
    return (table * (table - 1)).sum(axis=1) / (m * (m - 1))


def percent_agreement(groups: Sequence[dict[str, str]]) -> Coefficient | Insufficient:
    """Mean over items (with ≥ 2 ratings) of the share of rater pairs that gave the same verdict."""
    table = category_table([g for g in groups if len(g) >= 2])
    if len(table) < MIN_ITEMS:
        return Insufficient(REASON_FEW_ITEMS, len(table), MIN_ITEMS)
    value = float(item_agreement(table).mean())
    return Coefficient(value, len(table), "mean pairwise percent agreement")


def fleiss_groups(groups: Sequence[dict[str, str]]) -> tuple[int, list[dict[str, str]]]:
    """Fleiss' κ needs the same number of ratings on every item: the most common number of
    raters per item (≥ 2) and the items rated by that many."""
    sizes = Counter(len(g) for g in groups if len(g) >= 2)
    if not sizes:
        return 0, []
    size = max(sizes, key=lambda s: (sizes[s], s))
    return size, [g for g in groups if len(g) == size]


def fleiss(groups: Sequence[dict[str, str]]) -> Coefficient | Insufficient:
    """Fleiss' κ (statsmodels) over the items rated by the most common number of raters (≥ 2);
    the others are left out."""
    from statsmodels.stats.inter_rater import fleiss_kappa

    size, same = fleiss_groups(groups)
    table = category_table(same)
    if len(table) < MIN_ITEMS:
        return Insufficient(REASON_FEW_ITEMS, len(table), MIN_ITEMS)
    if table.shape[1] < 2:
        return Insufficient(REASON_NO_VARIATION, len(table), MIN_ITEMS)
    value = float(fleiss_kappa(table, method="fleiss"))
    return Coefficient(value, len(table), f"Fleiss' kappa ({size} raters per item)")


def krippendorff_nominal(groups: Sequence[dict[str, str]]) -> Coefficient | Insufficient:
    """Krippendorff's α, nominal, over every item with at least two ratings (it allows any
    number of raters per item)."""
    import krippendorff

    table = category_table([g for g in groups if len(g) >= 2])
    if len(table) < MIN_ITEMS:
        return Insufficient(REASON_FEW_ITEMS, len(table), MIN_ITEMS)
    if table.shape[1] < 2:
        return Insufficient(REASON_NO_VARIATION, len(table), MIN_ITEMS)
    value = float(krippendorff.alpha(value_counts=table, level_of_measurement="nominal"))
    return Coefficient(value, len(table), "Krippendorff's alpha (nominal)")


def rater_pairs(
    table: dict[int, dict[str, str]],
) -> list[tuple[str, str, list[str], list[str]]]:
    """Every pair of raters (in name order) with their labels of the items both judged, from
    ``labels_by_item``'s table."""
    per_rater: dict[str, dict[int, str]] = defaultdict(dict)
    for item, raters in table.items():
        for rater, verdict in raters.items():
            per_rater[rater][item] = verdict
    pairs = []
    for first, second in itertools.combinations(sorted(per_rater), 2):
        shared = sorted(per_rater[first].keys() & per_rater[second].keys())
        pairs.append(
            (
                first,
                second,
                [per_rater[first][i] for i in shared],
                [per_rater[second][i] for i in shared],
            )
        )
    return pairs


def agreement_summary(ratings: Sequence[Rating]) -> AgreementSummary:
    table = labels_by_item(ratings)
    groups = list(table.values())
    return AgreementSummary(
        raters=sorted({rater for raters in groups for rater in raters}),
        items_with_overlap=sum(len(g) >= 2 for g in groups),
        percent_agreement=percent_agreement(groups),
        fleiss_kappa=fleiss(groups),
        krippendorff_alpha=krippendorff_nominal(groups),
        pairs=[
            KappaPair(first, second, len(labels), cohen_kappa(labels, others))
            for first, second, labels, others in rater_pairs(table)
        ],
    )
