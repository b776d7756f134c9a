"""Can raters tell the systems apart by the form of their answers alone?

Blinding hides names and sides, not form: when one system always answers in a house format
(labelled lines, bullet lists, a fixed opening) and the other never does, experts know which is
which at a glance. A classifier that sees only surface features of the answers (length, lines,
markdown marks, punctuation rates, how many answers share the opening and closing words) says
how well that can be done.

Paired design: each prompt gives two answers, one of each system, and the classifier says which
is the first system's (chance: 50 %). The model is a conditional logistic regression for matched
pairs (no intercept, on the two answers' feature differences), ridge-penalised so that perfectly
separated answers still give a finite fit. Its accuracy is cross-validated over prompts (k folds,
seeded), with an exact (Clopper–Pearson) interval; the folds' test pairs are scored by models
fitted without them, though the binomial interval treats the k fitted models as one.

Gold pairs are checked with the same models: in a real pair the two answers differ in form by
a margin typical of the two systems; a gold pair whose answers differ far less (both in one
system's form, say) stands out, and so does a set of gold pairs whose better answer always has
one system's form.
"""

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from scipy.stats import binomtest, fisher_exact
from statsmodels.stats.proportion import proportion_confint

# Fewer pairs than this leave every fold too small to learn from.
MIN_PAIRS = 10
FOLDS = 5
PENALTY = 1.0
ALPHA = 0.05
# A lower confidence bound above this means raters may tell the systems apart by form.
WARN_ABOVE = 0.70
# A gold pair whose answers differ in form by less than this share of the real pairs' median
# margin stands out: both answers look like one system's.
ALIKE = 0.5
TELLTALES = 3

FEATURES = (
    "word count",
    "line count",
    "words per line",
    "word length",
    "bullet marks",
    "numbered lists",
    "headings",
    "bold text",
    "code fences",
    "lines opening with a label",
    "a shared opening",
    "a shared closing",
    "commas",
    "colons",
    "numbers",
    "symbols",
    "a closing full stop",
)

LINE = re.compile(r"^[ \t]*\S", re.MULTILINE)
BULLET = re.compile(r"^[ \t]*[-*•+][ \t]", re.MULTILINE)
NUMBERED = re.compile(r"^[ \t]*\d+[.)][ \t]", re.MULTILINE)
HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]", re.MULTILINE)
BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
FENCE = re.compile(r"^[ \t]*(?:```|~~~)", re.MULTILINE)
LABEL = re.compile(r"^[ \t]*[A-Z][\w ]{0,24}:[ \t]", re.MULTILINE)
SYMBOLS = re.compile(r"[^\w\s.,;:!?'\"()\-]+")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
PHRASE_WORDS = 2


@dataclass(frozen=True)
class Telltale:
    """One feature on its own: in ``agreement`` of the pairs it points to the first system's
    answer, which has the ``higher`` (or lower) value."""

    feature: str
    agreement: float
    higher: bool


@dataclass(frozen=True)
class Recognisability:
    pairs: int
    folds: int
    correct: float
    accuracy: float
    interval: tuple[float, float]
    p_value: float
    telltales: tuple[Telltale, ...]

    @property
    def warn(self) -> bool:
        return self.interval[0] > WARN_ABOVE


@dataclass(frozen=True)
class GoldLookalike:
    """How gold pairs compare with real ones. A pair's margin is how much more its first answer
    looks like the first system's than its second does (real pairs: out of fold; gold: the
    mean over the folds' models, better answer first). ``standing_out`` lists (0-based) the
    gold pairs whose margin is smaller in size than :data:`ALIKE` × the real pairs' median;
    ``real_standing_out`` of the real pairs are that small too; ``p_value`` is Fisher's exact
    test of gold against real. ``better_like_first`` counts, among the other gold pairs, those
    whose better answer has the first system's form."""

    items: int
    standing_out: tuple[int, ...]
    real_standing_out: int
    real_pairs: int
    p_value: float
    looking_real: int
    better_like_first: int

    @property
    def warn_standing_out(self) -> bool:
        return bool(self.standing_out) and self.p_value < ALPHA

    @property
    def warn_better_form(self) -> bool:
        """Every gold pair that looks real (two or more) puts its better answer in one
        system's form: a rater who prefers that form passes them all without reading."""
        return self.looking_real >= 2 and self.better_like_first in (0, self.looking_real)


@dataclass(frozen=True)
class FormCheck:
    recognisability: Recognisability
    gold: GoldLookalike | None


def surface_features(texts: Sequence[str]) -> np.ndarray:
    """One row of :data:`FEATURES` per text. The shared opening (closing) is the share of the
    other texts that start (end) with the same words, so ``texts`` should be every answer the
    raters see."""
    words = [text.split() for text in texts]
    openings = [" ".join(w[:PHRASE_WORDS]).lower() for w in words]
    closings = [" ".join(w[-PHRASE_WORDS:]).lower() for w in words]
    opening_counts, closing_counts = Counter(openings), Counter(closings)
    others = max(len(texts) - 1, 1)
    rows = []
    for text, found, opening, closing in zip(texts, words, openings, closings, strict=True):
        lines = len(LINE.findall(text))
        n_words, n_lines = max(len(found), 1), max(lines, 1)
        rows.append(
            (
                math.log1p(len(found)),
                math.log1p(lines),
                len(found) / n_lines,
                sum(map(len, found)) / n_words,
                len(BULLET.findall(text)) / n_lines,
                len(NUMBERED.findall(text)) / n_lines,
                len(HEADING.findall(text)),
                len(BOLD.findall(text)),
                len(FENCE.findall(text)),
                len(LABEL.findall(text)) / n_lines,
                (opening_counts[opening] - 1) / others if opening else 0.0,
                (closing_counts[closing] - 1) / others if closing else 0.0,
                text.count(",") / n_words,
                text.count(":") / n_words,
                len(NUMBER.findall(text)) / n_words,
                len(SYMBOLS.findall(text)) / n_words,
                float(text.rstrip().endswith(".")),
            )
        )
    return np.array(rows, dtype=float).reshape(len(texts), len(FEATURES))


def fit_pairs(differences: np.ndarray, penalty: float = PENALTY) -> np.ndarray:
    """Weights ``w`` minimising Σᵢ log(1 + exp(−w·dᵢ)) + penalty/2·|w|², where ``dᵢ`` is the
    first answer's features minus the second's (Newton's method; the problem is strictly
    convex). The model says the first answer is the first system's with probability σ(w·d)."""
    weights = np.zeros(differences.shape[1])
    for _ in range(100):
        wrong = expit(-(differences @ weights))
        gradient = penalty * weights - differences.T @ wrong
        hessian = (differences.T * (wrong * (1 - wrong))) @ differences
        step = np.linalg.solve(hessian + penalty * np.eye(len(weights)), gradient)
        weights -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return weights


def _scale(features: np.ndarray) -> np.ndarray:
    spread = features.std(axis=0)
    return np.where(spread > 0, spread, 1.0)


def _fit_scaled(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scale, weights) fitted on these pairs; a pair's margin is ``((x₁ − x₂) / scale) · w``."""
    scale = _scale(np.vstack([first, second]))
    return scale, fit_pairs((first - second) / scale)


def fold_of_each(pairs: int, folds: int, seed: int) -> np.ndarray:
    """The fold (0 … folds−1) of each pair: a seeded shuffle cut into near-equal parts."""
    order = np.random.default_rng(seed).permutation(pairs)
    fold = np.empty(pairs, dtype=int)
    for number, members in enumerate(np.array_split(order, folds)):
        fold[members] = number
    return fold


def form_check(
    pairs: Sequence[tuple[str, str]],
    *,
    gold: Sequence[tuple[str, str]] = (),
    seed: int = 0,
) -> FormCheck | None:
    """How well the first system's answer of each pair is told from the second's by form,
    and, given gold pairs as ``(better, worse)``, whether they look like real pairs. None with
    fewer than :data:`MIN_PAIRS` pairs."""
    if len(pairs) < MIN_PAIRS:
        return None
    texts = [text for pair in pairs for text in pair] + [text for pair in gold for text in pair]
    features = surface_features(texts)
    first, second = features[0 : 2 * len(pairs) : 2], features[1 : 2 * len(pairs) : 2]
    gold_features = features[2 * len(pairs) :]
    better, worse = gold_features[0::2], gold_features[1::2]
    folds = min(FOLDS, len(pairs))
    fold = fold_of_each(len(pairs), folds, seed)
    margins = np.zeros(len(pairs))
    gold_margins = np.zeros(len(gold))
    for number in range(folds):
        held_out = fold == number
        scale, weights = _fit_scaled(first[~held_out], second[~held_out])
        margins[held_out] = ((first[held_out] - second[held_out]) / scale) @ weights
        gold_margins += ((better - worse) / scale) @ weights / folds
    correct = float((margins > 0).sum() + 0.5 * (margins == 0).sum())
    recognisability = _recognisability(first, second, folds, correct)
    if not gold:
        return FormCheck(recognisability, None)
    return FormCheck(recognisability, _gold_lookalike(gold_margins, margins))


def _recognisability(
    first: np.ndarray, second: np.ndarray, folds: int, correct: float
) -> Recognisability:
    pairs = len(first)
    low, high = proportion_confint(correct, pairs, alpha=ALPHA, method="beta")
    p_value = binomtest(round(correct), pairs, 0.5, alternative="greater").pvalue
    return Recognisability(
        pairs=pairs,
        folds=folds,
        correct=correct,
        accuracy=correct / pairs,
        interval=(float(low), float(high)),
        p_value=float(p_value),
        telltales=telltales(first, second),
    )


def telltales(first: np.ndarray, second: np.ndarray, count: int = TELLTALES) -> tuple:
    """The features that tell the pairs apart best on their own, best first: in how many pairs
    the first answer's value is higher (ties count half), taken the better way round. Equal
    agreements go to the larger standardised mean difference."""
    differences = first - second
    higher = ((differences > 0) + 0.5 * (differences == 0)).mean(axis=0)
    agreement = np.maximum(higher, 1 - higher)
    effect = np.abs(differences.mean(axis=0)) / _scale(np.vstack([first, second]))
    best = sorted(range(len(FEATURES)), key=lambda j: (-agreement[j], -effect[j]))[:count]
    return tuple(
        Telltale(FEATURES[j], float(agreement[j]), bool(higher[j] >= 0.5))
        for j in best
        if agreement[j] > 0.5
    )


def _gold_lookalike(gold_margins: np.ndarray, real_margins: np.ndarray) -> GoldLookalike:
    typical = ALIKE * np.median(np.abs(real_margins))
    standing_out = np.abs(gold_margins) < typical
    real_count = int((np.abs(real_margins) < typical).sum())
    table = [
        [int(standing_out.sum()), int((~standing_out).sum())],
        [real_count, len(real_margins) - real_count],
    ]
    return GoldLookalike(
        items=len(gold_margins),
        standing_out=tuple(int(i) for i in np.flatnonzero(standing_out)),
        real_standing_out=real_count,
        real_pairs=len(real_margins),
        p_value=float(fisher_exact(table, alternative="greater").pvalue),
        looking_real=int((~standing_out).sum()),
        better_like_first=int(((gold_margins > 0) & ~standing_out).sum()),
    )
