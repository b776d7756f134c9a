"""Conversations written as one text with speaker markers: ``### Human: … ### Assistant: …``
(Guanaco, OpenAssistant), ``\\n\\nHuman: … \\n\\nAssistant: …`` (Anthropic HH), ``User: …``.

The marker style is detected from the text: the first marker decides between ``### Label:``
(anywhere in the text) and ``Label:`` at the start of a line. For each role, the first label
used is the one that opens its turns; any other marker left inside a turn is what
``markers_in`` finds for the linter (a ``### Assistant:`` inside an answer is a broken split).
"""

import re

from trainer.datasets.normalise import Messages, message

# Speaker labels seen in the wild, lower-cased, and the canonical role each one means.
ROLE_ALIASES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "customer": "user",
    "question": "user",
    "q": "user",
    "prompter": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "bot": "assistant",
    "ai": "assistant",
    "model": "assistant",
    "agent": "assistant",
    "answer": "assistant",
    "a": "assistant",
}
HASHED = re.compile(r"###[ \t]*([A-Za-z]+)[ \t]*:")
LINE_START = re.compile(r"^[ \t]*([A-Za-z]+)[ \t]*:", re.MULTILINE)
HASH_PREFIX = "### "
# Inside a turn, a line that opens with one of these is almost surely a speaker marker; the
# single letters and common words among the aliases ("Q:", "Answer:") are ordinary text there.
MARKER_LABELS = frozenset({"human", "assistant", "user", "system", "gpt", "chatgpt", "bot"})


def _known(matches: list[re.Match]) -> list[re.Match]:
    return [m for m in matches if m.group(1).lower() in ROLE_ALIASES]


def split_transcript(text: str) -> tuple[Messages, tuple[str, ...]] | None:
    """The turns and their labels as written ("### Human", "Assistant"); None when the text has
    no speaker marker. Text before the first marker is a system prompt."""
    hashed = _known(list(HASHED.finditer(text)))
    line_start = _known(list(LINE_START.finditer(text)))
    if not hashed and not line_start:
        return None
    use_hashed = bool(hashed) and (not line_start or hashed[0].start() < line_start[0].start())
    candidates, prefix = (hashed, HASH_PREFIX) if use_hashed else (line_start, "")
    label_of_role: dict[str, str] = {}
    markers = []
    for match in candidates:
        label = match.group(1)
        role = ROLE_ALIASES[label.lower()]
        if label_of_role.setdefault(role, label.lower()) == label.lower():
            markers.append((match, role, prefix + label))
    messages: Messages = []
    labels: list[str] = []
    preamble = text[: markers[0][0].start()].strip()
    if preamble:
        messages.append(message("system", preamble))
        labels.append("system")
    for number, (match, role, label) in enumerate(markers):
        end = markers[number + 1][0].start() if number + 1 < len(markers) else len(text)
        messages.append(message(role, text[match.end() : end].strip()))
        labels.append(label)
    return messages, tuple(labels)


def markers_in(content: str) -> list[str]:
    """Speaker markers inside one turn's text: ``### Label:`` anywhere, or a line opening with
    a speaker label such as ``User:``."""
    found = [f"{HASH_PREFIX}{m.group(1)}:" for m in _known(list(HASHED.finditer(content)))]
    found += [
        f"{m.group(1)}:"
        for m in LINE_START.finditer(content)
        if m.group(1).lower() in MARKER_LABELS
    ]
    return found
