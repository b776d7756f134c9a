"""The pairwise judge's prompt, its reply, and the two orders it is shown a comparison in.

A comparison is judged twice: in order "ab" the comparison's ``output_a`` is shown first (as
"A"), in order "ba" ``output_b`` is. What the judge names ("A", "B", "tie") is in shown terms;
``to_storage`` turns it into storage terms (a = ``output_a`` better) through the blinding
module's translation, the one place that knows which side is which. Two orders that agree give
their choice; two that differ give a tie, counted as a flip (the judge's position bias).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from evalhub.analysis.records import TIE, A, B
from evalhub.blinding import sides, unblind_choice

AB = "ab"
BA = "ba"
ORDERS = (AB, BA)

# Shown terms: what the judge is asked to answer.
SHOWN_CHOICES = ("A", "B", "tie")

FIELDS = ("prompt", "answer_a", "answer_b", "criteria", "guidelines", "reference")
DEFAULT_TEMPLATE = """Two AI assistants answered the same user question. Decide which answer is \
better.{criteria}{guidelines}

[Question]
{prompt}
{reference}
[Answer A]
{answer_a}

[Answer B]
{answer_b}

Which answer is better? Answer with A, B or tie, and nothing else."""

NO_CHOICE = "the judge's reply names no choice (A, B or tie): {reply!r}"
AMBIGUOUS = "the judge's reply names more than one choice ({found}): {reply!r}"
BAD_TEMPLATE = (
    "the judge template may use only the fields {{{fields}}} and needs {{answer_a}} and "
    "{{answer_b}}: {problem}"
)
BAD_ORDER = "order must be 'ab' or 'ba', got {value!r}"


class ReplyError(ValueError):
    """A reply from which no choice can be read."""


@dataclass(frozen=True)
class PairText:
    """What a judge reads about one comparison, in storage order."""

    prompt: str
    output_a: str
    output_b: str
    reference: str = ""


def check_template(template: str) -> None:
    """Refuse a template with unknown fields, without both answers, or that does not parse."""
    try:
        used = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as error:
        raise ValueError(BAD_TEMPLATE.format(fields=", ".join(FIELDS), problem=error)) from error
    unknown = used - set(FIELDS)
    missing = {"answer_a", "answer_b"} - used
    if unknown or missing:
        problem = ", ".join(
            [f"unknown {{{n}}}" for n in sorted(unknown)] + [f"no {{{n}}}" for n in sorted(missing)]
        )
        raise ValueError(BAD_TEMPLATE.format(fields=", ".join(FIELDS), problem=problem))


def render(
    pair: PairText,
    order: str,
    *,
    template: str = "",
    criteria: Sequence[str] = (),
    guidelines: str = "",
    use_reference: bool = False,
) -> list[dict[str, str]]:
    """The chat messages asking the judge about ``pair`` shown in ``order``."""
    first, second = shown(pair.output_a, pair.output_b, order)
    values = {
        "prompt": pair.prompt,
        "answer_a": first,
        "answer_b": second,
        "criteria": f"\nJudge them on: {', '.join(criteria)}." if criteria else "",
        "guidelines": f"\nGuidelines:\n{guidelines.strip()}" if guidelines.strip() else "",
        "reference": (
            f"\n[Reference answer]\n{pair.reference}\n" if use_reference and pair.reference else ""
        ),
    }
    return [{"role": "user", "content": (template or DEFAULT_TEMPLATE).format(**values)}]


def shown(output_a: str, output_b: str, order: str) -> tuple[str, str]:
    """(first, second): the two outputs in the order the judge sees them."""
    return sides(output_a, output_b, left_is_a=_a_first(order))


def to_storage(shown_choice: str, order: str) -> str:
    """A choice in shown terms ("A" = shown first) as a verdict in storage terms."""
    rater_terms = {"A": A, "B": B, "tie": TIE}[shown_choice]
    return unblind_choice(rater_terms, left_is_a=_a_first(order))


def _a_first(order: str) -> bool:
    if order not in ORDERS:
        raise ValueError(BAD_ORDER.format(value=order))
    return order == AB


# A choice on its own: "A", "[[B]]", "Answer: tie", "**a**".
_STRICT = re.compile(r"^\W*(?:answer\s*:\s*)?\W*(A|B|tie)\W*$", re.IGNORECASE)
# The marker MT-Bench's judge prompt asks for: "... so the verdict is [[A]]".
_MARKED = re.compile(r"\[\[(A|B|tie)\]\]", re.IGNORECASE)
# In a sentence only the capitals count: "a" is a word of its own.
_MENTION = re.compile(r"\b(A|B|[Tt]ie)\b")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|\n")


def parse_reply(reply: str) -> str:
    """The choice a reply names, in shown terms ("A", "B" or "tie").

    A reply that is only a choice (with punctuation or "Answer:") is read as such; a longer one
    must mark exactly one choice as [[A]], or else name exactly one of the capital letters A, B
    or the word tie ("Answer A is better") in its first sentence, where judges state their
    verdict, or in the whole reply. Anything else raises ``ReplyError``: a guess would be a
    verdict the judge never gave.
    """
    text = reply.strip()
    strict = _STRICT.match(text)
    if strict:
        return _normal(strict.group(1))
    first_sentence = _SENTENCE_END.split(text, maxsplit=1)[0]
    for pattern, part in ((_MARKED, text), (_MENTION, first_sentence), (_MENTION, text)):
        found = sorted({_normal(m) for m in pattern.findall(part)})
        if len(found) == 1:
            return found[0]
    if not found:
        raise ReplyError(NO_CHOICE.format(reply=_short(reply)))
    raise ReplyError(AMBIGUOUS.format(found=", ".join(found), reply=_short(reply)))


def _normal(word: str) -> str:
    return "tie" if word.lower() == "tie" else word.upper()


def _short(reply: str, limit: int = 200) -> str:
    return reply if len(reply) <= limit else reply[:limit] + "…"


def combine(ab: str, ba: str) -> tuple[str, bool]:
    """(verdict, flipped) of a comparison from its two orders' verdicts in storage terms: the
    shared choice when they agree, else a tie that counts as a flip."""
    if ab == ba:
        return ab, False
    return TIE, True
