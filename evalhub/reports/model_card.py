"""An exported adapter's README.md in the Hugging Face model-card layout: YAML front matter
(base_model, library_name, tags, license, datasets) and the sections a reader needs to trust
it. A pure function of plain data: ``evalhub.selectors.model_card`` gathers the data."""

import json
from dataclasses import dataclass, field

LICENSE = "unknown"  # the training data's licence is the owner's to state
TAGS = ("peft", "lora", "qlora", "evalhub")
QUOTE_CHARS = 300


@dataclass(frozen=True)
class LineageStep:
    run: int
    name: str
    method: str
    dataset: str
    content_hash: str
    preference_set: str | None = None


@dataclass(frozen=True)
class WinRate:
    """The adapter's win rate against ``opponent`` (``role``: base, previous adapter) in one
    study, ties counting half, with its 95 % Wilson interval (None when too few)."""

    role: str
    opponent: str
    study: str
    win_rate: float | None
    low: float | None
    high: float | None
    judgments: int


@dataclass(frozen=True)
class CardData:
    name: str
    run: int
    method: str
    base_model: str
    dataset: str
    content_hash: str
    training_rows: int
    hyperparameters: dict
    headline: str
    lineage: list[LineageStep]
    preference_set: str | None = None
    win_rates: list[WinRate] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    experts: int = 0
    judgments: int = 0
    weaknesses: list[str] = field(default_factory=list)


def _yaml_list(key: str, values: list[str]) -> list[str]:
    # JSON strings are valid YAML scalars: quotes and escapes come out right for any name.
    return [f"{key}:"] + [f"- {json.dumps(v)}" for v in values]


def _front_matter(data: CardData) -> list[str]:
    datasets = list(dict.fromkeys(step.dataset for step in reversed(data.lineage)))
    return [
        "---",
        f"base_model: {json.dumps(data.base_model)}",
        "library_name: peft",
        f"license: {LICENSE}",
        *_yaml_list("tags", [*TAGS, data.method]),
        *_yaml_list("datasets", datasets),
        "---",
    ]


def _interval(w: WinRate) -> str:
    if w.win_rate is None:
        return "no judgments"
    if w.low is None:
        return f"{w.win_rate:.3f} (too few judgments for an interval)"
    return f"{w.win_rate:.3f} [95 % CI {w.low:.3f}, {w.high:.3f}]"


def _evaluation(data: CardData) -> list[str]:
    lines = ["## Evaluation", ""]
    if data.win_rates:
        lines += [
            "Blinded pairwise judgments by domain experts (ties and 'both bad' count half).",
            "",
            "| Against | System | Study | Win rate | Judgments |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {w.role} | {w.opponent} | {w.study} | {_interval(w)} | {w.judgments} |"
            for w in data.win_rates
        ]
    else:
        lines.append(
            "No expert study has compared this adapter with its base model or the "
            "adapter it started from yet."
        )
    lines += ["", f"Experts: {data.experts}; judgments: {data.judgments}.", ""]
    lines += ["### Automated metrics", ""]
    if data.metrics:
        lines += ["| Metric | Mean over the adapter's outputs |", "|---|---|"]
        lines += [f"| {name} | {value:.4f} |" for name, value in data.metrics.items()]
    else:
        lines.append("No output of this adapter has been scored.")
    return lines


def model_card(data: CardData) -> str:
    """The README.md text for ``data``."""
    hyper = [f"- {k}: {json.dumps(v)}" for k, v in sorted(data.hyperparameters.items())]
    lines = _front_matter(data)
    lines += [
        "",
        f"# {data.name}",
        "",
        "## Model description",
        "",
        f"A LoRA adapter (QLoRA, run {data.run}) for `{data.base_model}`, trained with "
        f"{data.method.upper()}. {data.headline}.",
        "",
        "## Training data",
        "",
        f"- dataset: {data.dataset}"
        + (f" (preference set {data.preference_set})" if data.preference_set else ""),
        f"- content hash (sha256): `{data.content_hash}`",
        f"- rows trained on: {data.training_rows}",
        "",
        "## Method and hyperparameters",
        "",
        f"- method: {data.method}",
        *hyper,
        "",
        *_evaluation(data),
        "",
        "## Known weaknesses",
        "",
    ]
    if data.weaknesses:
        lines.append("Rater comments on items this adapter lost:")
        lines.append("")
        for comment in data.weaknesses:
            text = " ".join(comment.split())
            short = text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"
            lines.append(f"> {short}")
            lines.append("")
    else:
        lines += ["No rater comment on an item this adapter lost.", ""]
    lines += ["## Lineage", ""]
    for number, step in enumerate(reversed(data.lineage), start=1):
        via = f", preference set {step.preference_set}" if step.preference_set else ""
        lines.append(
            f"{number}. run {step.run} {step.name} ({step.method}) on {step.dataset}{via}, "
            f"content hash `{step.content_hash[:16]}`"
        )
    return "\n".join(lines) + "\n"
