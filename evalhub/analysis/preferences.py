"""Which comparisons of a study become chosen/rejected pairs, and which corrections become SFT
rows: plain records in, decisions and what each rule left out back. No ORM.

A comparison's raters decide it by majority: the verdict (in storage order, already unblinded)
that more than half of its counted judgments name. A majority for "a" or "b" makes a pair; a
majority for a tie or "both bad", or no majority (an even split), makes none. A reviewer's
final call (an adjudication) replaces the raters' majority where there is one. Counted
judgments are those of raters the study's gate keeps, on regular (not gold) comparisons, that
name a verdict and are not flagged.
"""

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from evalhub.analysis.records import BOTH_BAD, DECISIVE, TIE, A, B

# The rules, in the order they apply; each leaves out judgments or comparisons.
GOLD = "gold"
GATED = "gated_rater"
SKIPPED = "skipped_or_flagged"
NO_JUDGMENT = "no_judgment"
TIED = "tie"
BOTH_BAD_RULE = "both_bad"
NO_MAJORITY = "no_majority"
UNUSABLE = "same_or_empty_answers"
CORRECTION_GOLD = "correction_on_gold"
CORRECTION_GATED = "correction_by_gated_rater"

RULES = {
    GOLD: ("judgments", "on gold comparisons: they check raters, they are not the study's prompts"),
    GATED: ("judgments", "by raters the study's gate leaves out of the verdict"),
    SKIPPED: ("judgments", "skipped or flagged: they name no verdict the rater stands by"),
    NO_JUDGMENT: ("comparisons", "with no counted judgment and no final call"),
    TIED: ("comparisons", "decided as a tie: neither answer is better"),
    BOTH_BAD_RULE: ("comparisons", "decided as both bad: neither answer is worth choosing"),
    NO_MAJORITY: ("comparisons", "with no majority among their raters (an even split)"),
    UNUSABLE: ("comparisons", "decided, but the two answers are the same or one is empty"),
    CORRECTION_GOLD: ("corrections", "written on gold comparisons"),
    CORRECTION_GATED: ("corrections", "by raters the study's gate leaves out"),
}


@dataclass(frozen=True, slots=True)
class Vote:
    """One judgment. ``verdict`` is in storage order ("a" = the comparison's output_a better),
    or None for a skip."""

    judgment: int
    comparison: int
    rater: str
    verdict: str | None
    flagged: bool = False
    gold: bool = False
    correction: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """A comparison that makes a pair: ``winner`` "a" or "b" (storage order), the counted
    judgments it rests on, and whether a reviewer's final call made it."""

    comparison: int
    winner: str
    judgments: tuple[int, ...]
    adjudicated: bool


@dataclass
class Outcome:
    decisions: list[Decision]
    corrections: list[int]  # judgments whose correction becomes an SFT row
    left_out: dict[str, int] = field(default_factory=dict)
    raters: list[str] = field(default_factory=list)  # raters whose judgments are used


def majority(verdicts: Iterable[str]) -> str | None:
    """The verdict more than half of ``verdicts`` name, or None: a pair to train on needs more
    than the most common verdict (:func:`evalhub.analysis.raters.plurality`)."""
    counts = Counter(verdicts)
    total = sum(counts.values())
    for verdict, n in counts.items():
        if 2 * n > total:
            return verdict
    return None


def decide(
    votes: Iterable[Vote],
    *,
    comparisons: Collection[int],
    adjudications: Mapping[int, str],
    gated: Collection[str],
    unusable: Collection[int] = (),
) -> Outcome:
    """The pairs and corrections a study's judgments give. ``comparisons`` are the study's
    regular (not gold) comparisons; ``adjudications`` the final calls by comparison, in storage
    order; ``gated`` the raters the study's gate leaves out; ``unusable`` the comparisons whose
    answers cannot make a pair (the same text, or an empty one)."""
    left_out = dict.fromkeys(RULES, 0)
    counted: dict[int, list[Vote]] = {c: [] for c in comparisons}
    corrections: list[Vote] = []
    for vote in votes:
        if vote.correction:
            rule = CORRECTION_GOLD if vote.gold else CORRECTION_GATED if vote.rater in gated else ""
            if rule:
                left_out[rule] += 1
            else:
                corrections.append(vote)
        rule = _vote_rule(vote, gated)
        if rule:
            left_out[rule] += 1
        elif vote.comparison in counted:
            counted[vote.comparison].append(vote)
    decisions = []
    for comparison, kept in sorted(counted.items()):
        final = adjudications.get(comparison)
        verdict = final if final is not None else majority(v.verdict for v in kept)
        rule = _comparison_rule(verdict, has_votes=bool(kept) or final is not None)
        if not rule and comparison in unusable:
            rule = UNUSABLE
        if rule:
            left_out[rule] += 1
            continue
        decisions.append(
            Decision(comparison, verdict, tuple(v.judgment for v in kept), final is not None)
        )
    used = [v for d in decisions for v in counted[d.comparison]] + corrections
    raters = sorted({v.rater for v in used})
    return Outcome(decisions, [v.judgment for v in corrections], left_out, raters)


def _vote_rule(vote: Vote, gated: Collection[str]) -> str:
    if vote.gold:
        return GOLD
    if vote.rater in gated:
        return GATED
    if vote.verdict is None or vote.flagged:
        return SKIPPED
    return ""


def _comparison_rule(verdict: str | None, *, has_votes: bool) -> str:
    if not has_votes:
        return NO_JUDGMENT
    if verdict is None:
        return NO_MAJORITY
    if verdict == TIE:
        return TIED
    if verdict == BOTH_BAD:
        return BOTH_BAD_RULE
    if verdict not in DECISIVE:
        raise ValueError(f"verdict must be one of {(A, B, TIE, BOTH_BAD)}, not {verdict!r}")
    return ""
