"""Tiny dataset files written in tmp_path, one record per line unless said otherwise."""

import json
import random
import string
from pathlib import Path


def chat(user: str, answer: str | None, *, system: str | None = None, **extra) -> dict:
    messages = [{"role": "system", "content": system}] if system is not None else []
    messages.append({"role": "user", "content": user})
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return {"messages": messages, **extra}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def words(rng: random.Random, count: int) -> str:
    return " ".join(
        "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(count)
    )


def distinct_records(count: int, *, start: int = 0) -> list[dict]:
    """Clean examples of random words: no shared prompt, text or near-identical wording."""
    records = []
    for n in range(start, start + count):
        rng = random.Random(n)
        records.append(chat(words(rng, 8).capitalize() + "?", words(rng, 12).capitalize() + "."))
    return records
