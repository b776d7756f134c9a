"""The canonical chat form, content hashes, normalised text for duplicate detection, lengths."""

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence

Messages = list[dict[str, str]]
TokenCounter = Callable[[str], int]

CHARS_PER_TOKEN = 4
CHAR_ESTIMATE = f"chars/{CHARS_PER_TOKEN}"
# Chat templates wrap each turn in a few special tokens (ChatML: <|im_start|>role\n … <|im_end|>\n).
TURN_OVERHEAD_TOKENS = 4

_NON_WORD = re.compile(r"[\W_]+")


def message(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def content_hash(messages: Messages) -> str:
    """sha256 of a canonical JSON of the messages: key order, spacing and escapes fixed."""
    canonical = json.dumps(messages, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def split_conversation(messages: Sequence[dict]) -> tuple[list[dict], str] | None:
    """(conversation up to the last user turn, the assistant answer after it) or None when the
    conversation has no user turn. The reference is "" when no assistant turn follows."""
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if not users:
        return None
    last_user = users[-1]
    answers = [m for m in messages[last_user + 1 :] if m.get("role") == "assistant"]
    return list(messages[: last_user + 1]), (answers[-1]["content"] if answers else "")


def prompt_hash(messages: Sequence[dict]) -> str | None:
    """The hash of a conversation up to its last user turn, whatever was answered after it;
    None without a user turn. Equal hashes tie a study's prompt to a row a run trained on."""
    parts = split_conversation(messages)
    return content_hash(parts[0]) if parts is not None else None


def dataset_hash(example_hashes: Iterable[str]) -> str:
    """sha256 over the examples' hashes in file order: the same examples give the same hash."""
    digest = hashlib.sha256()
    for value in example_hashes:
        digest.update(value.encode("ascii"))
        digest.update(b"\n")
    return digest.hexdigest()


def normalise_text(text: str) -> str:
    """Case, punctuation, width and spacing removed: what near-duplicate checks compare."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _NON_WORD.sub(" ", folded).strip()


def conversation_key(messages: Messages) -> str:
    return "\n".join(f"{m['role']}:{normalise_text(m['content'])}" for m in messages)


def prompt_messages(messages: Messages) -> Messages:
    """Everything the model is given: the conversation before its final assistant turn."""
    if messages and messages[-1]["role"] == "assistant":
        return messages[:-1]
    return messages


def prompt_key(messages: Messages) -> str:
    return conversation_key(prompt_messages(messages))


def estimate_tokens(text: str) -> int:
    """Character estimate used when no tokenizer is given: about four characters per token."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def example_tokens(messages: Messages, count_tokens: TokenCounter | None = None) -> int:
    counter = count_tokens or estimate_tokens
    return sum(counter(m["content"]) + TURN_OVERHEAD_TOKENS for m in messages)
