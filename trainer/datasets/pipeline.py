"""Read, hash, measure, split and lint a dataset file: everything an import needs, no storage."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trainer.datasets import lint
from trainer.datasets.duplicates import UnionFind, groups_by_key, near_duplicate_clusters
from trainer.datasets.lint import ERROR, INFO, WARNING, Issue
from trainer.datasets.normalise import (
    CHAR_ESTIMATE,
    Messages,
    TokenCounter,
    content_hash,
    conversation_key,
    dataset_hash,
    example_tokens,
    message,
    prompt_key,
)
from trainer.datasets.options import ReadOptions
from trainer.datasets.readers import DatasetReader, SourceExample
from trainer.datasets.split import (
    DEFAULT_RATIOS,
    SPLITS,
    Ratios,
    assign_splits,
    validate_ratios,
)


def rejected_turn(example: "SourceExample | Row") -> dict[str, str]:
    """The rejected answer as a turn of its own role, so a pair's hash covers both answers."""
    return message("rejected", example.rejected or "")


# Longer examples are truncated by training; a 135M model is usually tuned at 1,024 tokens.
DEFAULT_MAX_TOKENS = 1024
SEED_SPLIT, FILE_SPLIT = "seed", "file"


@dataclass(frozen=True)
class PreparedExample:
    index: int
    line: int
    messages: Messages
    split: str
    content_hash: str
    token_count: int
    rejected: str | None = None  # the rejected answer of a preference pair


@dataclass
class PreparedDataset:
    source: str
    format: str
    examples: list[PreparedExample]
    issues: list[Issue]
    content_hash: str
    ratios: Ratios
    seed: int
    split_source: str
    tokenizer: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def pairs(self) -> int:
        return sum(1 for e in self.examples if e.rejected is not None)

    def count(self, severity: str) -> int:
        return sum(1 for i in self.issues if i.severity == severity)

    @property
    def errors(self) -> int:
        return self.count(ERROR)

    @property
    def warnings(self) -> int:
        return self.count(WARNING)

    @property
    def infos(self) -> int:
        return self.count(INFO)


def prepare_dataset(
    path: str | Path,
    *,
    options: ReadOptions | None = None,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    seed: int = 0,
    count_tokens: TokenCounter | None = None,
    tokenizer: str | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> PreparedDataset:
    """Raises a ``DatasetError`` for unusable input and ``InvalidSplit`` for bad ratios; lint
    findings are returned in ``issues``, not raised."""
    ratios = validate_ratios(ratios)
    tokenizer = tokenizer or CHAR_ESTIMATE
    reader = DatasetReader(path, options)
    examples = list(reader)
    hashes = [content_hash(e.messages) for e in examples]
    texts = [conversation_key(e.messages) for e in examples]
    prompts = [prompt_key(e.messages) for e in examples]
    near = near_duplicate_clusters(texts, hashes)
    cluster_of = _cluster_of(near, len(examples))
    tokens = [example_tokens(e.messages, count_tokens) for e in examples]

    split_source = FILE_SPLIT if examples[0].file_split else SEED_SPLIT
    if split_source == FILE_SPLIT:
        splits = [e.file_split or "" for e in examples]
    else:
        splits = _seeded_split(hashes, texts, prompts, cluster_of, ratios, seed)
    counts = Counter(splits)

    turn_issues, surrogate_lines = lint.turn_rules(
        examples, tokens, max_tokens=max_tokens, tokenizer=tokenizer
    )
    leak_keys = {
        "identical": hashes,
        "same text": texts,
        "same prompt": prompts,
        "near-identical": cluster_of,
    }
    issues = [
        *lint.invalid_text([*reader.invalid_utf8_lines, *surrogate_lines]),
        *lint.speaker_labels(examples),
        *lint.markers_in_turns(examples),
        *lint.system_prompts(examples),
        *turn_issues,
        *lint.duplicates(examples, groups_by_key(hashes), near),
        *lint.dataset_size(len(examples)),
        *lint.leakage(examples, splits, leak_keys),
    ]
    if split_source == FILE_SPLIT:
        issues.append(lint.issue(lint.SPLIT_FROM_FILE, lint.MSG_SPLIT_FROM_FILE))
        ratios = tuple(round(counts[s] / len(examples), 4) for s in SPLITS)

    return PreparedDataset(
        source=str(path),
        format=reader.format or "",
        examples=[
            PreparedExample(e.index, e.line, e.messages, split, digest, count, e.rejected)
            for e, split, digest, count in zip(examples, splits, hashes, tokens, strict=True)
        ],
        issues=lint.sort_issues(issues),
        content_hash=dataset_hash(
            digest if e.rejected is None else content_hash([*e.messages, rejected_turn(e)])
            for e, digest in zip(examples, hashes, strict=True)
        ),
        ratios=ratios,
        seed=seed,
        split_source=split_source,
        tokenizer=tokenizer,
        counts={s: counts[s] for s in SPLITS},
    )


@dataclass(frozen=True)
class Row:
    """A canonical example made elsewhere (a preference set's chosen conversation, a rater's
    correction): ``rejected`` is the rejected answer of a pair, None for an SFT row."""

    messages: Messages
    rejected: str | None = None


def prepare_rows(
    rows: Sequence[Row], *, ratios: Sequence[float], seed: int = 0, format: str
) -> PreparedDataset:
    """Hash, measure and split canonical rows as an import would a file (nothing to read or
    lint): rows that share a prompt, a text or a near-duplicate cluster land on one side."""
    ratios = validate_ratios(ratios)
    messages = [row.messages for row in rows]
    hashes = [content_hash(m) for m in messages]
    texts = [conversation_key(m) for m in messages]
    prompts = [prompt_key(m) for m in messages]
    cluster_of = _cluster_of(near_duplicate_clusters(texts, hashes), len(rows))
    splits = _seeded_split(hashes, texts, prompts, cluster_of, ratios, seed)
    counts = Counter(splits)
    pair_hashes = [
        digest if row.rejected is None else content_hash([*row.messages, rejected_turn(row)])
        for row, digest in zip(rows, hashes, strict=True)
    ]
    return PreparedDataset(
        source=format,
        format=format,
        examples=[
            PreparedExample(
                index,
                index + 1,
                row.messages,
                split,
                digest,
                example_tokens(row.messages),
                row.rejected,
            )
            for index, (row, split, digest) in enumerate(zip(rows, splits, hashes, strict=True))
        ],
        issues=[],
        content_hash=dataset_hash(pair_hashes),
        ratios=ratios,
        seed=seed,
        split_source=SEED_SPLIT,
        tokenizer=CHAR_ESTIMATE,
        counts={s: counts[s] for s in SPLITS},
    )


def _cluster_of(near: list[list[int]], total: int) -> list[int | None]:
    """Each example's near-duplicate cluster number, None when it is in none."""
    cluster_of: list[int | None] = [None] * total
    for number, cluster in enumerate(near):
        for index in cluster:
            cluster_of[index] = number
    return cluster_of


def _seeded_split(
    hashes: list[str],
    texts: list[str],
    prompts: list[str],
    cluster_of: list[int | None],
    ratios: Ratios,
    seed: int,
) -> list[str]:
    """Group everything that would leak (identical, same text, same prompt, near-identical) so
    each group lands on one side, then split the groups."""
    links = UnionFind(len(hashes))
    for keys in (hashes, texts, prompts):
        links.union_by_key(keys)
    links.union_by_key(
        [("cluster", c) if c is not None else ("alone", i) for i, c in enumerate(cluster_of)]
    )
    groups = links.groups()
    group_keys = [min(hashes[i] for i in group) for group in groups]
    return assign_splits(groups, group_keys, len(hashes), ratios, seed)
