"""The demo's simulated expert: a rule, not a person, and every page that shows its judgments
says so.

The demo data's answers can be checked exactly (``trainer/demo_data/README.md``): the house
format is three lines, ``Answer:`` with the number and unit, ``Working:`` and ``Tip:``, and the
reference's ``Answer:`` line holds the right figure. The rule prefers the answer with the right
figure; between two answers equally right or wrong, the one in the house format; and when the
answer it prefers still has the figure wrong, it writes the reference as its correction, as a
careful expert would write the right answer out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HOUSE = re.compile(r"^Answer: (?P<answer>.+)\nWorking: .+\nTip: .+$")
ANSWER_LINE = re.compile(r"^\s*Answer:\s*(?P<answer>.+?)\s*$", re.MULTILINE)
NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")

A, B, TIE, BOTH_BAD = "a", "b", "tie", "both_bad"


def house_format(text: str) -> bool:
    """Exactly the three house lines."""
    return HOUSE.match(text.strip()) is not None


def answer_figure(text: str) -> tuple[float, str] | None:
    """(number, unit words) of the first ``Answer:`` line, or None when there is none or it
    holds no number."""
    line = ANSWER_LINE.search(text)
    if line is None:
        return None
    answer = line.group("answer")
    number = NUMBER.search(answer)
    if number is None:
        return None
    unit = " ".join(answer[number.end() :].lower().split())
    return float(number.group().replace(",", ".")), unit


def figure_right(text: str, reference: str) -> bool:
    """Whether the answer's figure is the reference's: the same number and the same unit."""
    wanted, given = answer_figure(reference), answer_figure(text)
    if wanted is None or given is None:
        return False
    return abs(given[0] - wanted[0]) < 1e-9 and given[1] == wanted[1]


@dataclass(frozen=True)
class ExpertCall:
    """A verdict in the order the two answers were given ("a": the first is better) and the
    correction, "" when none was needed."""

    verdict: str
    correction: str


def expert_call(first: str, second: str, *, reference: str) -> ExpertCall:
    """What the simulated expert says about two answers to a prompt with this reference."""
    keys = [(figure_right(t, reference), house_format(t)) for t in (first, second)]
    if keys[0] > keys[1]:
        verdict, preferred = A, first
    elif keys[1] > keys[0]:
        verdict, preferred = B, second
    else:
        verdict, preferred = (TIE if keys[0][0] else BOTH_BAD), first
    correction = "" if figure_right(preferred, reference) else reference
    return ExpertCall(verdict, correction)
