"""The training configuration: one dataclass, its defaults and why, and its own validation.

Torch-free, so the management command, the web form and the services can build and validate a
config without importing the heavy libraries.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

METHODS = ("sft", "dpo")
SCHEDULERS = ("cosine", "linear", "constant_with_warmup", "constant")
CHECKPOINTING = ("auto", "on", "off")
PACKING = ("auto", "on", "off")
# The settings that take one of a fixed set of values (the command line and the web form offer
# exactly these).
FIELD_CHOICES = {
    "method": METHODS,
    "scheduler": SCHEDULERS,
    "gradient_checkpointing": CHECKPOINTING,
    "packing": PACKING,
}
# What DPO changes when the user does not set it, and why (shown in --help). Preference tuning
# moves an adapter that already writes good answers, so it steps far more gently than SFT.
DPO_DEFAULTS = {"learning_rate": 5e-5, "epochs": 3}
DPO_REASONS = {
    "learning_rate": "LoRA DPO recipes use 5e-6 to 5e-5 (alignment-handbook's QLoRA Zephyr: "
    "5e-6 on 60k pairs); a few hundred expert pairs need the upper end to move at all",
    "epochs": "Zephyr's DPO (Tunstall et al. 2023) ran 3; early stopping on the held-out pairs "
    "ends sooner",
}

MUST_BE_POSITIVE = "{name} must be at least 1, got {value}"
MUST_NOT_BE_NEGATIVE = "{name} must be 0 or more, got {value}"
BAD_BETA = "beta must be in (0, 10], got {value}"
BAD_LEARNING_RATE = "learning_rate must be in (0, 1), got {value}"
BAD_RATIO = "{name} must be in [0, 1), got {value}"
BAD_CHOICE = "{name} must be one of {choices}, got {value!r}"
BAD_TARGET_MODULES = "target_modules must be 'all-linear' or a comma-separated list of names"
BAD_SEQ_LEN = "max_seq_len must be at least 16 tokens, got {value}"
UNKNOWN_FIELDS = "unknown training settings: {names}"
PACKING_NEEDS_SFT = (
    "packing is for SFT: a DPO micro-batch keeps each pair's two answers in rows side by side"
)


class ConfigError(ValueError):
    """A training setting is out of range; the message names the setting."""


# Settings that mean something for one method only: a run records every setting, and what it
# shows (run page, model card) leaves out those its method never read.
METHOD_ONLY = {"beta": "dpo", "packing": "sft"}


def settings_that_apply(hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """``hyperparameters`` (a run's recorded settings) without those its method ignores."""
    method = hyperparameters.get("method", "sft")
    return {
        name: value
        for name, value in hyperparameters.items()
        if METHOD_ONLY.get(name, method) == method
    }


def _opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    """QLoRA hyperparameters. Defaults follow current practice for LoRA on all linear layers."""

    method: str = _opt(
        "sft",
        "sft learns the chosen answers; dpo learns from preference pairs (chosen over rejected) "
        "on top of --from-run's adapter, which is also its reference",
    )
    beta: float = _opt(
        0.1,
        "DPO only: how far the policy may move from the reference; 0.1 as in the DPO paper "
        "(Rafailov et al. 2023) and Zephyr",
    )
    rank: int = _opt(16, "LoRA rank: 16–64 is the useful range; 16 is small and rarely worse")
    alpha: int | None = _opt(None, "LoRA alpha: twice the rank keeps the update scale stable")
    learning_rate: float = _opt(2e-4, "peak learning rate: 2e-4 is the usual QLoRA peak")
    scheduler: str = _opt("cosine", "decay after warm-up: cosine eases the rate smoothly to zero")
    warmup_ratio: float = _opt(0.03, "share of steps spent warming up: avoids early spikes")
    epochs: int = _opt(3, "passes over the training split: 3–5; early stopping ends sooner")
    patience: int = _opt(2, "evaluations without a better validation loss before stopping; 0 off")
    eval_every: int = _opt(0, "optimizer steps between validation runs; 0 = 4 per epoch")
    batch_size: int = _opt(8, "examples per device per micro-batch: lower it when out of memory")
    grad_accum: int = _opt(1, "micro-batches per optimizer step: raise it to keep a lowered batch")
    max_seq_len: int = _opt(1024, "tokens per example; longer ones are cut (and counted)")
    max_steps: int = _opt(0, "stop after this many optimizer steps; 0 = as many as epochs give")
    target_modules: str = _opt("all-linear", "layers that get adapters: all-linear as in QLoRA")
    dropout: float = _opt(0.05, "LoRA dropout: 0.05 is a light regulariser for small data")
    seed: int = _opt(42, "seeds data order, adapter init and dropout: same seed, same run")
    weight_decay: float = _opt(0.0, "AdamW weight decay on the adapter weights")
    max_grad_norm: float = _opt(1.0, "gradient clipping: keeps a bad batch from wrecking training")
    gradient_checkpointing: str = _opt(
        "auto",
        "recompute activations in backward to save memory: auto = per layer, only where the "
        "device's memory requires it (off = keep all, fastest; on = recompute all, leanest)",
    )
    packing: str = _opt(
        "auto",
        "SFT: pack whole examples into rows of up to batch size × the longest example's tokens, "
        "each example attending only to itself (no padding, fuller micro-batches, fewer steps "
        "per epoch): auto = on a GPU with variable-length attention, where it pays",
    )

    def __post_init__(self) -> None:
        if self.alpha is None:
            # frozen dataclass: the resolved default is written once, here.
            object.__setattr__(self, "alpha", 2 * self.rank)
        for name in ("rank", "alpha", "epochs", "batch_size", "grad_accum"):
            _at_least_one(name, getattr(self, name))
        for name in ("patience", "eval_every", "max_steps", "seed"):
            if getattr(self, name) < 0:
                raise ConfigError(MUST_NOT_BE_NEGATIVE.format(name=name, value=getattr(self, name)))
        if not 0 < self.learning_rate < 1:
            raise ConfigError(BAD_LEARNING_RATE.format(value=self.learning_rate))
        for name in ("warmup_ratio", "dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(BAD_RATIO.format(name=name, value=getattr(self, name)))
        if self.weight_decay < 0 or self.max_grad_norm < 0:
            name = "weight_decay" if self.weight_decay < 0 else "max_grad_norm"
            raise ConfigError(MUST_NOT_BE_NEGATIVE.format(name=name, value=getattr(self, name)))
        if self.max_seq_len < 16:
            raise ConfigError(BAD_SEQ_LEN.format(value=self.max_seq_len))
        if not 0 < self.beta <= 10:
            raise ConfigError(BAD_BETA.format(value=self.beta))
        _choice("method", self.method, METHODS)
        _choice("scheduler", self.scheduler, SCHEDULERS)
        _choice("gradient_checkpointing", self.gradient_checkpointing, CHECKPOINTING)
        _choice("packing", self.packing, PACKING)
        if self.packing == "on" and self.method == "dpo":
            raise ConfigError(PACKING_NEEDS_SFT)
        if not self.target_module_list():
            raise ConfigError(BAD_TARGET_MODULES)

    def target_module_list(self) -> list[str]:
        return [name.strip() for name in self.target_modules.split(",") if name.strip()]

    def peft_target_modules(self) -> str | list[str]:
        """What peft's LoraConfig takes: the "all-linear" shorthand or a list of module names."""
        names = self.target_module_list()
        return "all-linear" if names == ["all-linear"] else names

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def for_method(cls, method: str, **settings: Any) -> TrainConfig:
        """A config for ``method`` whose unset settings take that method's defaults."""
        defaults = DPO_DEFAULTS if method == "dpo" else {}
        return cls(method=method, **{**defaults, **settings})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(UNKNOWN_FIELDS.format(names=", ".join(unknown)))
        return cls(**data)


def field_help(name: str) -> str:
    """One line for ``--help``: why the default is what it is, and the default itself."""
    spec = {f.name: f for f in fields(TrainConfig)}[name]
    default = "2 × rank" if name == "alpha" else spec.default
    assert default is not MISSING
    dpo = (
        f"; with --method dpo: {DPO_DEFAULTS[name]}, {DPO_REASONS[name]}"
        if name in DPO_DEFAULTS
        else ""
    )
    return f"{spec.metadata['help']} (default: {default}){dpo}"


def _at_least_one(name: str, value: int) -> None:
    if value < 1:
        raise ConfigError(MUST_BE_POSITIVE.format(name=name, value=value))


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(BAD_CHOICE.format(name=name, choices=", ".join(choices), value=value))
