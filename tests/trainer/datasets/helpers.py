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


def write_parquet(path: Path, columns: dict[str, list]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)
    return path


def write_saved_dataset(path: Path, columns: dict[str, list], **splits: dict[str, list]) -> Path:
    """A folder as ``datasets.Dataset.save_to_disk`` writes it (a ``DatasetDict`` when splits
    are given), written by the real library: nothing is downloaded."""
    import datasets

    datasets.disable_progress_bars()
    if splits:
        parts = {name: datasets.Dataset.from_dict(cols) for name, cols in splits.items()}
        datasets.DatasetDict(parts).save_to_disk(str(path))
    else:
        datasets.Dataset.from_dict(columns).save_to_disk(str(path))
    return path
