"""The plain, already unblinded record every statistic works on.

Sides are named in storage order: ``a`` is the comparison's ``output_a`` and ``b`` its
``output_b``. What the rater saw on the left is kept separately (``left``) for position bias.
"""

from dataclasses import dataclass, field

A = "a"
B = "b"
TIE = "tie"
BOTH_BAD = "both_bad"
VERDICTS = (A, B, TIE, BOTH_BAD)
DECISIVE = (A, B)


@dataclass(frozen=True, slots=True)
class Rating:
    """One judgment, unblinded. A rater's "flag and skip" names no verdict and never becomes
    a Rating, so it counts in no win rate, agreement, bias, interval or metric comparison.

    verdict: "a" | "b" (the better output, storage order) | "tie" | "both_bad".
    left: "a" | "b", the storage side displayed on the left to this rater.
    scores: criterion -> (score of output a, score of output b), 1–5; None where unscored.
    length_a, length_b: output lengths (tokens when known for both, else characters).
    gold: the comparison's gold answer ("a" | "b" | "tie") or None.
    flagged: the rater flagged the item (broken prompt, offensive output, ...).
    prompt: the prompt the item asks about, or None; judgments of one prompt (several raters,
        several pairs of systems) are one cluster for the bootstrap.
    """

    item: int
    rater: str
    system_a: str
    system_b: str
    verdict: str
    left: str = A
    scores: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    time_ms: int | None = None
    length_a: int | None = None
    length_b: int | None = None
    gold: str | None = None
    flagged: bool = False
    prompt: int | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {self.verdict!r}")
        if self.left not in DECISIVE:
            raise ValueError(f"left must be 'a' or 'b', not {self.left!r}")

    @property
    def cluster(self) -> int:
        """What a bootstrap resamples as one unit: the prompt, or the item when it is unknown."""
        return self.prompt if self.prompt is not None else self.item

    def compares(self, system: str, opponent: str) -> bool:
        """Whether this judgment is of ``system`` against ``opponent``, in either order."""
        return (self.system_a == system and self.system_b == opponent) or (
            self.system_a == opponent and self.system_b == system
        )

    def outcome_for(self, system: str) -> float | None:
        """1 if ``system`` won, 0 if it lost, ½ for a tie or both bad, None if not in it."""
        if system not in (self.system_a, self.system_b):
            return None
        if self.verdict in (TIE, BOTH_BAD):
            return 0.5
        winner = self.system_a if self.verdict == A else self.system_b
        return 1.0 if winner == system else 0.0

    def score_difference(self, criterion: str, system: str) -> float | None:
        """Score of ``system`` minus the other output's score on ``criterion``."""
        pair = self.scores.get(criterion)
        if pair is None or pair[0] is None or pair[1] is None:
            return None
        if system == self.system_a:
            return float(pair[0]) - float(pair[1])
        if system == self.system_b:
            return float(pair[1]) - float(pair[0])
        return None
