"""Who rates which comparison, in what order, and which response is shown on the left.

Plain Python, no Django: the study services feed it keys and store what it returns.

Rules:
- each comparison goes to ``overlap`` distinct raters (gold comparisons to every rater), always
  to the least loaded raters that do not have it yet, so loads stay within one of each other;
- each rater's order is shuffled;
- the left side is random per (comparison, rater) and counterbalanced: for every rater and
  every pair of systems, each system of the pair is on the left in half (±1) of that rater's
  comparisons of the pair;
- adding raters later (or raising the overlap) fills the gaps under the same rules and never
  moves an existing assignment, so nothing a rater has open or has judged is ever lost.

A rater's A and B are the left and right responses; a verdict's A and B are the comparison's
``output_a`` and ``output_b``. ``left_is_a``, ``sides``, ``blind_choice``, ``unblind_choice`` and
``unblind_scores`` translate between the two, and nothing else does.

A reviewer who settles a comparison sees it in a frame of their own, like a rater's assignment:
``review_frame`` gives the token that addresses it and which side is on the left, both from a
keyed hash, so neither can be derived without the key nor from the comparison's id.

The plan is deterministic given the seed and the inputs. Tokens are not part of the plan: they
come from ``secrets`` so that nobody can derive them from the seed or from database ids.
"""

import hashlib
import hmac
import random
import secrets
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from evalhub.analysis.records import DECISIVE, A, B

# 32 random bytes → 43 URL-safe characters, the width of Assignment.token.
TOKEN_BYTES = 32

T = TypeVar("T")


@dataclass(frozen=True)
class Item:
    """A comparison to assign: its key and the systems of its two outputs (orderable keys)."""

    key: Hashable
    first: Hashable
    second: Hashable
    everyone: bool = False  # gold comparisons go to every rater


@dataclass(frozen=True)
class Placed:
    """An assignment that exists already (or one the plan creates)."""

    item: Hashable
    rater: Hashable
    left: Hashable  # the system whose output is shown on the left
    position: int


def new_token() -> str:
    """An unguessable token that says nothing about the comparison, the rater or the outputs."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def review_frame(*, key: bytes, comparison: Hashable, reviewer: Hashable) -> tuple[str, bool]:
    """(token, left_is_a) of ``comparison`` as ``reviewer`` sees it: the same every time, random
    across comparisons and reviewers. The token is the first 32 hex digits of the keyed hash, the
    side a bit of the rest, so the token says nothing of the side."""
    digest = hmac.new(key, f"review:{comparison!r}:{reviewer!r}".encode(), hashlib.sha256)
    hexdigest = digest.hexdigest()
    return hexdigest[:32], int(hexdigest[-1], 16) % 2 == 0


def _pair(item: Item) -> tuple[Hashable, Hashable]:
    return tuple(sorted((item.first, item.second)))  # type: ignore[return-value]


def _choose_raters(
    items: Sequence[Item],
    raters: Sequence[Hashable],
    overlap: int,
    existing: Sequence[Placed],
    rng: random.Random,
) -> list[tuple[Item, Hashable]]:
    load = Counter({r: 0 for r in raters})
    load.update(p.rater for p in existing)
    holders: dict[Hashable, set[Hashable]] = defaultdict(set)
    for p in existing:
        holders[p.item].add(p.rater)

    order = list(items)
    rng.shuffle(order)
    chosen: list[tuple[Item, Hashable]] = []
    for item in order:
        wanted = len(raters) if item.everyone else min(overlap, len(raters))
        missing = wanted - len(holders[item.key])
        if missing <= 0:
            continue
        candidates = [r for r in raters if r not in holders[item.key]]
        rng.shuffle(candidates)  # random among equally loaded raters (the sort is stable)
        candidates.sort(key=lambda r: load[r])
        for rater in candidates[:missing]:
            load[rater] += 1
            holders[item.key].add(rater)
            chosen.append((item, rater))
    return chosen


def _choose_sides(
    chosen: Sequence[tuple[Item, Hashable]],
    existing: Sequence[Placed],
    items_by_key: dict[Hashable, Item],
    rng: random.Random,
) -> dict[tuple[Hashable, Hashable], Hashable]:
    # Per (rater, pair): how many more times the pair's first system was on the left so far.
    lead: Counter = Counter()
    for p in existing:
        pair = _pair(items_by_key[p.item])
        lead[(p.rater, pair)] += 1 if p.left == pair[0] else -1

    groups: dict[tuple[Hashable, tuple], list[Item]] = defaultdict(list)
    for item, rater in chosen:
        groups[(rater, _pair(item))].append(item)

    sides: dict[tuple[Hashable, Hashable], Hashable] = {}
    for (rater, pair), group in sorted(groups.items(), key=lambda kv: repr(kv[0])):
        n = len(group)
        # Put the first system on the left k times so that the lead ends in {-1, 0, 1}; when
        # two values of k do that, toss a coin, so that neither system is favoured.
        target = n - lead[(rater, pair)]
        k = target // 2 if target % 2 == 0 else target // 2 + rng.randint(0, 1)
        k = max(0, min(n, k))
        first_left = set(rng.sample(range(n), k))
        for i, item in enumerate(group):
            sides[(item.key, rater)] = pair[0] if i in first_left else pair[1]
    return sides


def plan_assignments(
    *,
    items: Iterable[Item],
    raters: Iterable[Hashable],
    overlap: int,
    seed: int | str,
    existing: Iterable[Placed] = (),
) -> list[Placed]:
    """The new assignments that complete ``existing`` for these items and raters.

    ``raters`` is everyone who rates the study (existing raters included). Returns one
    ``Placed`` per new (item, rater), with the system shown on the left and the position in
    that rater's queue (after their existing positions).
    """
    if overlap < 1:
        raise ValueError("overlap must be at least 1")
    items = sorted(items, key=lambda i: repr(i.key))
    existing = sorted(existing, key=lambda p: (repr(p.rater), p.position))
    raters = sorted(set(raters) | {p.rater for p in existing}, key=repr)
    items_by_key = {i.key: i for i in items}
    unknown = {p.item for p in existing} - items_by_key.keys()
    if unknown:
        raise ValueError(f"existing assignments refer to unknown items: {sorted(unknown)!r}")

    rng = random.Random(f"{seed}:{len(existing)}")
    chosen = _choose_raters(items, raters, overlap, existing, rng)
    sides = _choose_sides(chosen, existing, items_by_key, rng)

    next_position = Counter()
    for p in existing:
        next_position[p.rater] = max(next_position[p.rater], p.position + 1)
    per_rater: dict[Hashable, list[Item]] = defaultdict(list)
    for item, rater in chosen:
        per_rater[rater].append(item)

    planned: list[Placed] = []
    for rater in raters:
        queue = sorted(per_rater[rater], key=lambda i: repr(i.key))
        rng.shuffle(queue)
        for offset, item in enumerate(queue):
            planned.append(
                Placed(
                    item=item.key,
                    rater=rater,
                    left=sides[(item.key, rater)],
                    position=next_position[rater] + offset,
                )
            )
    return planned


def left_is_a(*, left_output: Hashable, output_a: Hashable) -> bool:
    """Whether the rater's A, the response shown on the left, is the comparison's ``output_a``.

    An assignment stores the output it shows on the left; the comparison's a/b is only storage
    order. Every translation between the two goes through this and the functions below."""
    return left_output == output_a


def sides(first: T, second: T, *, left_is_a: bool) -> tuple[T, T]:
    """(output_a's, output_b's) as the rater sees them: (left, right).

    Swapping is its own inverse, so the same call turns (left, right) into storage order."""
    return (first, second) if left_is_a else (second, first)


def unblind_choice(choice: str, *, left_is_a: bool) -> str:
    """A rater's choice (A = the left response) as a verdict in storage order: A (output_a
    better), B (output_b better), TIE or BOTH_BAD."""
    if choice not in DECISIVE:
        return choice
    left, right = sides(A, B, left_is_a=left_is_a)
    return left if choice == A else right


def blind_choice(verdict: str, *, left_is_a: bool) -> str:
    """A verdict in storage order as the rater of this assignment would choose it (A = left).

    Swapping sides is its own inverse, so this is ``unblind_choice`` read the other way."""
    return unblind_choice(verdict, left_is_a=left_is_a)


def unblind_scores(scores: Any, *, left_is_a: bool) -> dict[str, tuple[float | None, float | None]]:
    """{"criterion": {"a": left, "b": right}} -> {"criterion": (output_a's, output_b's)}.

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
        result[str(criterion)] = sides(left, right, left_is_a=left_is_a)
    return result


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None
