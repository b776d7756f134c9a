"""Adapters and checkpoints on disk.

``<output>/adapter/``      the best adapter so far (peft format) plus ``training.json``.
``<output>/checkpoint/``   everything needed to resume: the current adapter weights, the best
                           adapter, optimizer and scheduler state, every process's RNG states,
                           the step, the best validation loss, the config and the base model's
                           fingerprint.

Both are written to a temporary sibling and swapped in by renames, so an interruption while
saving leaves the previous version intact.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.engine.hooks import AdapterMismatch

ADAPTER_DIR = "adapter"
CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"
TENSORS_FILE = "trainer_state.pt"
BEST_ADAPTER = "best_adapter"
CURRENT_ADAPTER = "current_adapter"
METADATA_FILE = "training.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"

NOT_A_CHECKPOINT = "{path} is not a training checkpoint (no {name})"
ADAPTER_DOES_NOT_FIT = (
    "the adapter in {path} does not fit the model being trained ({problem}); a run that starts "
    "from an adapter keeps its rank, target modules and base model"
)
CONFIG_MISMATCH = "the checkpoint was trained with other settings: {fields}"
BASE_MISMATCH = (
    "the checkpoint's adapter was trained on another base model: {details}; resume with the "
    "base model the run used"
)


@dataclass
class LoopState:
    """The counters the loop needs to continue where it stopped."""

    step: int = 0
    best_val_loss: float | None = None
    best_step: int | None = None
    evals_since_best: int = 0


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def replace_directory(target: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a fresh temporary directory, then swap it in for ``target``."""
    tmp = target.with_name(target.name + ".tmp")
    old = target.with_name(target.name + ".old")
    for leftover in (tmp, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    tmp.mkdir(parents=True)
    write(tmp)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    if old.exists():
        shutil.rmtree(old)


def save_adapter(model: Any, target: Path, metadata: dict[str, Any]) -> None:
    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str))

    replace_directory(target, write)


def load_adapter_weights(model: Any, adapter_dir: Path) -> None:
    """Copy a saved adapter's weights into ``model``'s adapter, refusing one of another shape
    (rank, target modules or base model)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(Path(adapter_dir) / ADAPTER_WEIGHTS)
    try:
        result = set_peft_model_state_dict(model, weights)
    except RuntimeError as error:  # a size mismatch
        message = ADAPTER_DOES_NOT_FIT.format(path=adapter_dir, problem=error)
        raise AdapterMismatch(message) from None
    missing = [key for key in result.missing_keys if "lora_" in key]
    if result.unexpected_keys or missing:
        problem = f"{len(missing)} adapter weights missing, {len(result.unexpected_keys)} unknown"
        raise AdapterMismatch(ADAPTER_DOES_NOT_FIT.format(path=adapter_dir, problem=problem))


def rng_states() -> dict[str, Any]:
    import torch

    states = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    import torch

    random.setstate(states["python"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(
    target: Path,
    *,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    state: LoopState,
    rng_per_process: list[dict[str, Any]],
    config: dict[str, Any],
    base_fingerprint: dict[str, Any],
    best_adapter: Path,
    optimizer_kind: str,
    packed: bool,
) -> None:
    """Everything a resume needs, written whole or not at all (``replace_directory``): the
    current adapter, a copy of the best one so far, optimizer and scheduler state, every
    process's random state, the loop counters, the config, the base model's fingerprint (a
    resume on another base is refused) and which optimizer arithmetic the run uses."""
    import torch

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp / CURRENT_ADAPTER)
        if best_adapter.is_dir():
            shutil.copytree(best_adapter, tmp / BEST_ADAPTER)
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng_per_process": rng_per_process,
            },
            tmp / TENSORS_FILE,
        )
        info = {
            "loop": state.__dict__,
            "config": config,
            "base_fingerprint": base_fingerprint,
            "world_size": len(rng_per_process),
            # A resumed run keeps the optimizer arithmetic it started with, whatever memory
            # the machine it resumes on has.
            "optimizer": optimizer_kind,
            # Likewise its batches: "--packing auto" may decide otherwise on another machine,
            # and other batches would put the resumed steps elsewhere in the epoch.
            "packed": packed,
        }
        (tmp / STATE_FILE).write_text(json.dumps(info, indent=2))

    replace_directory(target, write)


def read_checkpoint_info(path: Path) -> dict[str, Any]:
    """The JSON half of a checkpoint (loop counters, config, fingerprint); torch-free."""
    state_file = Path(path) / STATE_FILE
    if not state_file.is_file():
        raise FileNotFoundError(NOT_A_CHECKPOINT.format(path=path, name=STATE_FILE))
    return json.loads(state_file.read_text())


def saved_optimizer_kind(info: dict[str, Any]) -> str:
    """The memory plan's optimizer a checkpoint was written with (older ones: plain AdamW)."""
    return info.get("optimizer", "adamw")


def saved_packing(info: dict[str, Any], *, default: bool) -> bool:
    """Whether the run a checkpoint was written by packs its examples into rows (older
    checkpoints do not say: ``default``, what this machine decides)."""
    return info.get("packed", default)


def check_base_matches(info: dict[str, Any], base_fingerprint: dict[str, Any]) -> str | None:
    """None when the checkpoint fits the base model, else a message naming the differences."""
    expected = info["base_fingerprint"]
    differences = [
        f"{key} {expected.get(key)} ≠ {base_fingerprint.get(key)}"
        for key in sorted(set(expected) | set(base_fingerprint))
        if expected.get(key) != base_fingerprint.get(key)
    ]
    return BASE_MISMATCH.format(details=", ".join(differences)) if differences else None


def check_config_matches(
    info: dict[str, Any], config: dict[str, Any], defaults: dict[str, Any]
) -> str | None:
    """Differences between the checkpoint's settings and ``config``; a setting added to the
    engine after the checkpoint was written counts as its default there."""
    saved = {**defaults, **info["config"]}
    differences = [
        f"{key} {saved.get(key)!r} ≠ {config.get(key)!r}"
        for key in sorted(set(saved) | set(config))
        if saved.get(key) != config.get(key)
    ]
    return CONFIG_MISMATCH.format(fields=", ".join(differences)) if differences else None


def load_checkpoint(
    path: Path, *, model: Any, optimizer: Any, scheduler: Any, rank: int
) -> LoopState:
    """Load weights, optimizer, scheduler and this process's RNG states; return the counters."""
    import torch

    path = Path(path)
    load_adapter_weights(model, path / CURRENT_ADAPTER)
    tensors = torch.load(path / TENSORS_FILE, weights_only=False)
    optimizer.load_state_dict(tensors["optimizer"])
    scheduler.load_state_dict(tensors["scheduler"])
    rngs = tensors["rng_per_process"]
    restore_rng_states(rngs[rank % len(rngs)])
    return LoopState(**read_checkpoint_info(path)["loop"])
