"""Turn what a rater saw (A = left, B = right) into what it means (output_a / output_b).

A judgment's ``choice`` and ``criterion_scores`` are in displayed terms; ``left_is_a`` says
whether the assignment showed the comparison's output_a on the left.
"""

from typing import Any

from evalhub.analysis.records import A, B

_SWAP = {A: B, B: A}


def unblind_choice(choice: str, *, left_is_a: bool) -> str:
    """Displayed choice -> verdict in storage order ("a", "b", "tie", "both_bad")."""
    if choice in _SWAP and not left_is_a:
        return _SWAP[choice]
    return choice


def unblind_scores(scores: Any, *, left_is_a: bool) -> dict[str, tuple[float | None, float | None]]:
    """{"criterion": {"a": left, "b": right}} -> {"criterion": (output_a, output_b)}.

    A side the rater did not score is None; values that are not numbers are dropped rather
    than guessed at, and a criterion with no usable score at all is left out."""
    result: dict[str, tuple[float | None, float | None]] = {}
    if not isinstance(scores, dict):
        return result
    for criterion, pair in scores.items():
        if not isinstance(pair, dict):
            continue
        left, right = (_number(pair.get(side)) for side in (A, B))
        if left is None and right is None:
            continue
        result[str(criterion)] = (left, right) if left_is_a else (right, left)
    return result


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None
