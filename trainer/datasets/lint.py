"""Lint rules over a read dataset: each issue has a stable code, a severity, a message and the
1-based source lines it concerns.

An error blocks the import; a warning blocks it only in strict mode; info never does.
"""

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from trainer.datasets.normalise import normalise_text
from trainer.datasets.readers import SourceExample
from trainer.datasets.split import FEEDBACK, TEST, TRAIN
from trainer.datasets.transcript import markers_in

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)

MIXED_SPEAKER_LABELS = "mixed-speaker-labels"
MARKER_IN_TURN = "speaker-marker-in-turn"
INCONSISTENT_SYSTEM_PROMPT = "inconsistent-system-prompt"
EMPTY_TURN = "empty-turn"
MISSING_FINAL_ASSISTANT = "missing-final-assistant"
EXACT_DUPLICATE = "exact-duplicate"
NEAR_DUPLICATE = "near-duplicate"
RESPONSE_REPEATS_PROMPT = "response-repeats-prompt"
TOO_LONG = "too-long"
INVALID_UTF8 = "invalid-utf8"
CONTROL_CHARACTERS = "control-characters"
TOO_FEW_EXAMPLES = "too-few-examples"
DATASET_SIZE = "dataset-size"
SPLIT_LEAKAGE = "split-leakage"
SPLIT_FROM_FILE = "split-from-file"

SEVERITY = {
    MIXED_SPEAKER_LABELS: WARNING,
    MARKER_IN_TURN: WARNING,
    INCONSISTENT_SYSTEM_PROMPT: WARNING,
    EMPTY_TURN: ERROR,
    MISSING_FINAL_ASSISTANT: ERROR,
    EXACT_DUPLICATE: WARNING,
    NEAR_DUPLICATE: WARNING,
    RESPONSE_REPEATS_PROMPT: WARNING,
    TOO_LONG: WARNING,
    INVALID_UTF8: ERROR,
    CONTROL_CHARACTERS: ERROR,
    TOO_FEW_EXAMPLES: WARNING,
    DATASET_SIZE: INFO,
    SPLIT_LEAKAGE: ERROR,
    SPLIT_FROM_FILE: INFO,
}
CODES = tuple(SEVERITY)

MSG_MIXED_LABELS = "the {role} speaker is labelled {labels} across the file; pick one label"
MSG_MARKER_IN_TURN = (
    "{n} turn(s) still hold a speaker marker after parsing ({markers}): a broken split, or "
    "another format's markers mixed in"
)
MSG_SYSTEM_PROMPT = (
    "{with_system} examples have a system prompt and {without} do not; the model learns "
    "both templates"
)
MSG_EMPTY_TURN = "{n} turn(s) are empty or whitespace only"
MSG_NO_FINAL_ASSISTANT = "{n} example(s) do not end with an assistant turn: nothing to learn"
MSG_EXACT_DUPLICATE = "{n} identical examples; the split keeps them on one side"
MSG_NEAR_DUPLICATE = "{n} near-identical examples (equal up to case, punctuation or a few words)"
MSG_REPEATS_PROMPT = "{n} response(s) only repeat the prompt: they add no word of their own"
MSG_TOO_LONG = (
    "{n} example(s) are longer than {limit} tokens ({tokenizer}; the longest has {longest}); "
    "training truncates them"
)
MSG_INVALID_UTF8 = "{n} line(s) hold bytes that are not valid UTF-8; re-encode the file as UTF-8"
MSG_CONTROL = "{n} turn(s) hold control characters (terminal escapes, form feeds, NUL …)"
MSG_TOO_FEW = (
    "only {n} examples: instruction tuning needs at least {minimum} (1,000–5,000 is the sweet spot)"
)
MSG_SIZE_BELOW = (
    "{n} examples: fewer than the 1,000–5,000 that usually suffice for instruction tuning"
)
MSG_SIZE_ABOVE = (
    "{n} examples: above the 1,000–5,000 sweet spot, quality matters more than more data"
)
MSG_LEAKAGE = "{split} example duplicates the {source} example at line {train_line} ({how})"
# The splits an example must not copy: nothing held out copies a training example, and a test
# example copies no feedback example either (feedback judgments may train the next adapter).
MUST_NOT_COPY = {TEST: (TRAIN, FEEDBACK)}
MSG_SPLIT_FROM_FILE = "the file assigns the splits; the split ratios and seed were not used"

MIN_EXAMPLES = 100
SWEET_SPOT = (1000, 5000)
REPEAT_COVERAGE = 0.7
# C0 controls except tab, newline and carriage return; DEL; C1 controls (mis-decoded cp1252).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


@dataclass(frozen=True)
class Issue:
    code: str
    severity: str
    message: str
    lines: tuple[int, ...] = ()

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "lines": list(self.lines),
        }


def issue(code: str, message: str, lines: Sequence[int] = ()) -> Issue:
    return Issue(code, SEVERITY[code], message, tuple(sorted(set(lines))))


def sort_issues(issues: Sequence[Issue]) -> list[Issue]:
    return sorted(
        issues,
        key=lambda i: (SEVERITIES.index(i.severity), i.lines[0] if i.lines else 0, i.code),
    )


def speaker_labels(examples: Sequence[SourceExample]) -> list[Issue]:
    seen: dict[str, Counter] = defaultdict(Counter)
    lines_by_label: dict[tuple[str, str], list[int]] = defaultdict(list)
    for example in examples:
        # Formats without speaker labels (Alpaca, CSV) have no labels: nothing to compare.
        turns = zip(example.messages, example.labels, example.turn_lines, strict=False)
        for msg, label, line in turns:
            seen[msg["role"]][label] += 1
            lines_by_label[msg["role"], label].append(line)
    issues = []
    for role, labels in seen.items():
        if len(labels) > 1:
            usual = labels.most_common(1)[0][0]
            shown = ", ".join(f"{label!r} ({count})" for label, count in labels.most_common())
            odd = [n for label in labels if label != usual for n in lines_by_label[role, label]]
            issues.append(
                issue(MIXED_SPEAKER_LABELS, MSG_MIXED_LABELS.format(role=role, labels=shown), odd)
            )
    return issues


def markers_in_turns(examples: Sequence[SourceExample]) -> list[Issue]:
    lines: list[int] = []
    found: Counter = Counter()
    for example in examples:
        for msg, line in zip(example.messages, example.turn_lines, strict=True):
            markers = markers_in(msg["content"])
            if markers:
                lines.append(line)
                found.update(markers)
    if not lines:
        return []
    shown = ", ".join(repr(marker) for marker, _ in found.most_common(3))
    return [issue(MARKER_IN_TURN, MSG_MARKER_IN_TURN.format(n=len(lines), markers=shown), lines)]


def system_prompts(examples: Sequence[SourceExample]) -> list[Issue]:
    with_system = [e.line for e in examples if any(m["role"] == "system" for m in e.messages)]
    without = [e.line for e in examples if not any(m["role"] == "system" for m in e.messages)]
    if not with_system or not without:
        return []
    minority = with_system if len(with_system) < len(without) else without
    message = MSG_SYSTEM_PROMPT.format(with_system=len(with_system), without=len(without))
    return [issue(INCONSISTENT_SYSTEM_PROMPT, message, minority)]


def repeats_prompt(prompt: str, response: str) -> bool:
    """The response adds no word of its own and restates most of the prompt."""
    said, asked = normalise_text(response), normalise_text(prompt)
    if not said:
        return False
    if said == asked:
        return True
    said_words, asked_words = set(said.split()), set(asked.split())
    return said_words <= asked_words and len(said_words) >= REPEAT_COVERAGE * len(asked_words)


def turn_rules(
    examples: Sequence[SourceExample],
    token_counts: Sequence[int],
    *,
    max_tokens: int,
    tokenizer: str,
) -> tuple[list[Issue], list[int]]:
    """Rules that look at one example at a time. Also returns the lines holding lone surrogates
    (escaped in JSON), which are invalid text like undecodable bytes."""
    empty, unfinished, repeats, control, too_long, surrogates = [], [], [], [], [], []
    for example, tokens in zip(examples, token_counts, strict=True):
        messages = example.messages
        if not messages or messages[-1]["role"] != "assistant":
            unfinished.append(example.line)
        for number, (msg, line) in enumerate(zip(messages, example.turn_lines, strict=True)):
            content = msg["content"]
            if not content.strip():
                empty.append(line)
            if _CONTROL.search(content):
                control.append(line)
            if _SURROGATE.search(content):
                surrogates.append(line)
            previous = messages[number - 1] if number else None
            answers = msg["role"] == "assistant" and previous and previous["role"] == "user"
            if answers and repeats_prompt(previous["content"], content):
                repeats.append(line)
        if example.rejected is not None and not example.rejected.strip():
            empty.append(example.line)
        if tokens > max_tokens:
            too_long.append((example.line, tokens))
    issues = []
    if empty:
        issues.append(issue(EMPTY_TURN, MSG_EMPTY_TURN.format(n=len(empty)), empty))
    if unfinished:
        message = MSG_NO_FINAL_ASSISTANT.format(n=len(unfinished))
        issues.append(issue(MISSING_FINAL_ASSISTANT, message, unfinished))
    if repeats:
        issues.append(
            issue(RESPONSE_REPEATS_PROMPT, MSG_REPEATS_PROMPT.format(n=len(repeats)), repeats)
        )
    if control:
        issues.append(issue(CONTROL_CHARACTERS, MSG_CONTROL.format(n=len(control)), control))
    if too_long:
        longest = max(tokens for _, tokens in too_long)
        message = MSG_TOO_LONG.format(
            n=len(too_long), limit=max_tokens, tokenizer=tokenizer, longest=longest
        )
        issues.append(issue(TOO_LONG, message, [line for line, _ in too_long]))
    return issues, surrogates


def invalid_text(lines: Sequence[int]) -> list[Issue]:
    if not lines:
        return []
    distinct = sorted(set(lines))
    return [issue(INVALID_UTF8, MSG_INVALID_UTF8.format(n=len(distinct)), distinct)]


def duplicates(
    examples: Sequence[SourceExample], exact: list[list[int]], near: list[list[int]]
) -> list[Issue]:
    issues = []
    for group in exact:
        lines = [examples[i].line for i in group]
        issues.append(issue(EXACT_DUPLICATE, MSG_EXACT_DUPLICATE.format(n=len(group)), lines))
    for group in near:
        lines = [examples[i].line for i in group]
        issues.append(issue(NEAR_DUPLICATE, MSG_NEAR_DUPLICATE.format(n=len(group)), lines))
    return issues


def dataset_size(count: int) -> list[Issue]:
    issues = []
    if count < MIN_EXAMPLES:
        message = MSG_TOO_FEW.format(n=count, minimum=MIN_EXAMPLES)
        issues.append(issue(TOO_FEW_EXAMPLES, message))
    if count < SWEET_SPOT[0]:
        issues.append(issue(DATASET_SIZE, MSG_SIZE_BELOW.format(n=f"{count:,}")))
    elif count > SWEET_SPOT[1]:
        issues.append(issue(DATASET_SIZE, MSG_SIZE_ABOVE.format(n=f"{count:,}")))
    return issues


def leakage(
    examples: Sequence[SourceExample],
    splits: Sequence[str],
    keys: dict[str, Sequence[object]],
) -> list[Issue]:
    """Held-out examples that share a key with an example of a split they must not copy
    (``MUST_NOT_COPY``; a training example for every held-out split). ``keys`` maps a
    description ("identical", "same prompt", …) to one key per example; None keys never
    match."""
    seen: dict[str, dict[str, dict[object, int]]] = {
        source: {how: {} for how in keys} for source in (TRAIN, FEEDBACK)
    }
    for index, split in enumerate(splits):
        if split in seen:
            for how, values in keys.items():
                if values[index] is not None:
                    seen[split][how].setdefault(values[index], index)
    issues = []
    for index, split in enumerate(splits):
        if split == TRAIN:
            continue
        found = _twin(index, keys, [seen[s] for s in MUST_NOT_COPY.get(split, (TRAIN,))])
        if found is not None:
            twin, how = found
            line, train_line = examples[index].line, examples[twin].line
            message = MSG_LEAKAGE.format(
                split=split, source=splits[twin], train_line=train_line, how=how
            )
            issues.append(issue(SPLIT_LEAKAGE, message, [line, train_line]))
    return issues


def _twin(
    index: int, keys: dict[str, Sequence[object]], sources: list[dict[str, dict[object, int]]]
) -> tuple[int, str] | None:
    """The first example of ``sources`` that example ``index`` copies, and how."""
    for how, values in keys.items():
        if values[index] is None:
            continue
        for source in sources:
            twin = source[how].get(values[index])
            if twin is not None:
                return twin, how
    return None
