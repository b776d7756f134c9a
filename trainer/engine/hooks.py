"""What the training loop tells its caller, and how the caller asks it to stop.

The loop calls a ``TrainHooks`` object on the main process only; the service subclasses it to
write progress, metrics and heartbeats to the database. Torch-free, like the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT_OF_MEMORY = (
    "out of memory on {device} at batch size {batch_size} × {max_seq_len} tokens: lower "
    "--batch-size (and raise --grad-accum to keep the effective batch) or --max-seq-len"
    "{checkpointing_hint}"
)
CHECKPOINTING_HINT = ", or turn gradient checkpointing on"


class TrainingError(Exception):
    """Training cannot go on; the message says why and what to change."""


class TrainingOutOfMemory(TrainingError):
    """The device ran out of memory; the message says which settings to lower."""


class AdapterMismatch(TrainingError):
    """The adapter to start from does not fit the model and settings being trained."""


class CheckpointMismatch(TrainingError):
    """A checkpoint was made for another base model or another configuration."""


@dataclass(frozen=True)
class StartInfo:
    """Known once the model is loaded and the data is planned, before the first step."""

    total_steps: int
    steps_per_epoch: int
    start_step: int
    eval_every: int
    trainable_params: int
    total_params: int
    train_examples: int
    validation_examples: int
    truncated_examples: int
    dropped_examples: int
    padding_share: float
    environment: dict[str, Any]
    packing: str = "off"  # "off", or how the training examples are packed into rows


@dataclass(frozen=True)
class Progress:
    """One optimizer step. Loss and tokens/s are over the whole step (all processes)."""

    step: int
    total_steps: int
    epoch: float
    train_loss: float
    learning_rate: float
    grad_norm: float
    tokens_per_s: float
    elapsed_seconds: float
    eta_seconds: float | None
    reward_accuracy: float | None = None  # DPO: share of the step's pairs the policy prefers
    reward_margin: float | None = None  # DPO: their mean implicit reward margin


@dataclass(frozen=True)
class Evaluation:
    step: int
    epoch: float
    val_loss: float
    best_val_loss: float
    best_step: int
    is_best: bool
    reward_accuracy: float | None = None  # DPO: over the held-out pairs
    reward_margin: float | None = None


@dataclass(frozen=True)
class TrainResult:
    """How training ended. ``stop_reason`` is "completed", "early_stopped" or "stopped"."""

    stop_reason: str
    final_step: int
    total_steps: int
    best_val_loss: float | None
    best_step: int | None
    adapter_dir: Path
    checkpoint_dir: Path | None
    trainable_params: int
    total_params: int
    peak_memory_bytes: int
    wall_seconds: float
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def early_stopped(self) -> bool:
        return self.stop_reason == "early_stopped"


class TrainHooks:
    """No-op defaults; override what you need. Called on the main process only, except
    ``should_stop``, whose main-process answer is shared with every process."""

    def on_start(self, info: StartInfo) -> None:
        """Model loaded and data planned; nothing trained yet (in this process)."""

    def on_step(self, progress: Progress) -> None:
        """An optimizer step finished."""

    def on_evaluate(self, evaluation: Evaluation) -> None:
        """A validation pass finished; ``is_best`` when the adapter on disk was just replaced."""

    def on_checkpoint(self, path: Path, step: int) -> None:
        """A full checkpoint (adapter, optimizer, scheduler, RNG, counters) is on disk."""

    def on_heartbeat(self) -> None:
        """Called after every micro-batch, in training and validation: proof of life."""

    def should_stop(self) -> bool:
        """Return True to stop at the next step boundary with a checkpoint saved."""
        return False


class RecordingHooks(TrainHooks):
    """Remembers everything the loop told it, and asks it to stop once step ``stop_after`` is
    done: what tests and benchmarks inspect a run by."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after = stop_after
        self.start: StartInfo | None = None
        self.steps: list[Progress] = []
        self.evaluations: list[Evaluation] = []
        self.checkpoints: list[tuple[Path, int]] = []
        self.heartbeats = 0
        self.stop_questions = 0

    def on_start(self, info: StartInfo) -> None:
        self.start = info

    def on_step(self, progress: Progress) -> None:
        self.steps.append(progress)

    def on_evaluate(self, evaluation: Evaluation) -> None:
        self.evaluations.append(evaluation)

    def on_checkpoint(self, path: Path, step: int) -> None:
        self.checkpoints.append((path, step))

    def on_heartbeat(self) -> None:
        self.heartbeats += 1

    def should_stop(self) -> bool:
        self.stop_questions += 1
        return (
            self.stop_after is not None
            and bool(self.steps)
            and self.steps[-1].step >= self.stop_after
        )
