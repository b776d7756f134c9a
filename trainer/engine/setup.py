"""Everything training does before its first step, gathered into one ``TrainingSession``.

    check the checkpoint to resume from -> tokenise -> load NF4 base + LoRA (from the adapter
    to start from, if any) -> plan memory (what to keep, recompute, offload) -> DPO: the
    reference's log-probabilities -> plan steps -> optimizer and schedule -> (resume)

No Django here, and torch, transformers and peft are imported inside the functions.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.engine import checkpoint as ckpt
from trainer.engine.config import TrainConfig
from trainer.engine.data import (
    Message,
    PreferencePair,
    TokenizedSplit,
    collate,
    length_grouped_batches,
    shard,
    sorted_batches,
    tokenize_pairs,
    tokenize_split,
)
from trainer.engine.distributed import DistContext, dist_context
from trainer.engine.environment import describe_environment, reset_peak_memory
from trainer.engine.hooks import CheckpointMismatch, TrainHooks, TrainingError
from trainer.engine.memory_plan import MemoryPlan
from trainer.engine.modeling import (
    OutputHead,
    build_optimizer,
    compute_dtype,
    fingerprint,
    load_qlora_model,
    load_tokenizer,
    prepare_for_training,
)
from trainer.engine.packing import collate_packed, packed_batches, token_budget
from trainer.engine.steps import StepContext

NO_TRAINING_EXAMPLES = (
    "none of the {count} training {what} has an assistant turn left to learn from "
    "(after cutting to --max-seq-len {max_seq_len})"
)
DPO_NEEDS_ADAPTER = (
    "DPO improves an adapter: it needs the adapter to start from, which is also its reference"
)
# What the engine trains on: conversations (SFT) or preference pairs (DPO).
TrainingData = Sequence[Sequence[Message]] | Sequence[PreferencePair]


@dataclass(frozen=True)
class TrainingPlan:
    steps_per_epoch: int
    total_steps: int
    eval_every: int
    warmup_steps: int


def plan_training(config: TrainConfig, batches_per_process: int) -> TrainingPlan:
    steps_per_epoch = math.ceil(batches_per_process / config.grad_accum)
    total = steps_per_epoch * config.epochs
    if config.max_steps:
        total = min(total, config.max_steps)
    return TrainingPlan(
        steps_per_epoch=steps_per_epoch,
        total_steps=total,
        eval_every=config.eval_every or max(1, math.ceil(steps_per_epoch / 4)),
        warmup_steps=math.ceil(config.warmup_ratio * total),
    )


@dataclass
class TrainingSession:
    """A run ready for its first (or, resumed, its next) step; ``state`` moves as it trains."""

    config: TrainConfig
    context: DistContext
    hooks: TrainHooks  # asked should_stop on every process
    report: TrainHooks  # told what happens: the caller's hooks on the main process, else no-ops
    device: str
    started: float  # time.monotonic() when set-up began
    pad_id: int
    train_split: TokenizedSplit
    val_split: TokenizedSplit
    val_batches: list[list[int]]  # this process's share of the validation split
    model: Any
    head: OutputHead | None
    base_fingerprint: dict[str, Any]
    memory_plan: MemoryPlan
    environment: dict[str, Any]
    plan: TrainingPlan
    params: list[Any]
    optimizer: Any
    scheduler: Any
    state: ckpt.LoopState
    adapter_dir: Path
    checkpoint_dir: Path
    adapter_metadata: dict[str, Any]
    # Packed rows of up to this many tokens (engine/packing.py); None: padded batches.
    packed_row_tokens: int | None = None
    # DPO: the reference's summed answer log-probabilities per pair (chosen, rejected).
    train_reference: Any = None
    val_reference: Any = None

    @property
    def has_validation(self) -> bool:
        # Validation needs no gradient exchange, so processes may get unequal shares; whether
        # to validate at all must be decided alike everywhere, from the whole split.
        return bool(self.val_split.examples)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This process's batches (example indices) for one epoch, in training order."""
        return _epoch_batches(
            self.train_split, self.config, self.context, epoch, self.packed_row_tokens
        )

    def batch(self, indices: list[int]) -> dict[str, Any]:
        """The collated training micro-batch of these examples: a packed row, padded rows, or
        for DPO pairs with their reference."""
        if self.config.method == "dpo":
            from trainer.engine.preference import pair_batch

            return pair_batch(self.train_split, indices, self.pad_id, self.train_reference)
        examples = [self.train_split.examples[i] for i in indices]
        if self.packed_row_tokens:
            return collate_packed(examples)
        return collate(examples, self.pad_id)

    def step_context(self) -> StepContext:
        return StepContext(
            params=self.params,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            config=self.config,
            context=self.context,
            report=self.report,
            device=self.device,
            head=self.head,
        )


def set_up(
    *,
    model_dir: Path | str,
    config: TrainConfig,
    train_conversations: TrainingData,
    validation_conversations: TrainingData,
    output_dir: Path,
    hooks: TrainHooks,
    resume_from: Path | None,
    adapter_metadata: dict[str, Any],
    start_adapter: Path | None = None,
) -> TrainingSession:
    """Tokenise, load, plan memory and steps, build the optimizer and schedule, and resume from
    ``resume_from`` when given. Refuses a checkpoint made for another config or base model.

    ``start_adapter`` is a saved adapter whose weights the trained one starts from; for DPO it
    is also the reference (required: DPO improves an adapter)."""
    import torch
    from transformers import get_scheduler

    from trainer.engine.packed_attention import packing_enabled

    started = time.monotonic()
    context = dist_context()
    report = hooks if context.is_main else TrainHooks()
    device = context.device
    reset_peak_memory(device)
    resume_info = ckpt.read_checkpoint_info(resume_from) if resume_from else None
    if resume_info and (
        problem := ckpt.check_config_matches(
            resume_info, config.as_dict(), defaults=TrainConfig().as_dict()
        )
    ):
        raise CheckpointMismatch(problem)
    if config.method == "dpo" and start_adapter is None:
        raise TrainingError(DPO_NEEDS_ADAPTER)

    tokenizer = load_tokenizer(model_dir)
    name = str(model_dir)
    tokenize = tokenize_pairs if config.method == "dpo" else tokenize_split
    train_split = tokenize(tokenizer, train_conversations, config.max_seq_len, name)
    val_split = tokenize(tokenizer, validation_conversations, config.max_seq_len, name)
    if not train_split.examples:
        raise TrainingError(
            NO_TRAINING_EXAMPLES.format(
                count=len(train_conversations),
                what="pairs" if config.method == "dpo" else "conversations",
                max_seq_len=config.max_seq_len,
            )
        )
    report.on_heartbeat()

    model = load_qlora_model(model_dir, config, device)
    if start_adapter is not None:
        ckpt.load_adapter_weights(model, start_adapter)
    base_fingerprint = fingerprint(model.get_base_model().config.to_dict())
    if resume_info and (problem := ckpt.check_base_matches(resume_info, base_fingerprint)):
        raise CheckpointMismatch(problem)
    packing = packing_enabled(config, device)
    if resume_info:
        packing = ckpt.saved_packing(resume_info, default=packing)
    # Packed rows hold as many tokens as the largest padded micro-batch would.
    row_tokens = token_budget(config.batch_size, train_split.lengths)
    memory_plan, head = prepare_for_training(
        model,
        config,
        device,
        # A DPO micro-batch holds both sides of each pair.
        tokens=row_tokens * (2 if config.method == "dpo" else 1),
        world_size=context.world_size,
        packing=packing,
    )
    if resume_info:
        # The checkpoint's optimizer states go on with the arithmetic they were made by.
        optimizer_kind = ckpt.saved_optimizer_kind(resume_info)
        memory_plan = dataclasses.replace(memory_plan, optimizer=optimizer_kind)
    environment = describe_environment(
        device,
        compute_dtype(device),
        world_size=context.world_size,
        memory_plan=memory_plan.summary(),
    )
    report.on_heartbeat()

    packed_row_tokens = row_tokens if packing else None
    first_epoch = _epoch_batches(train_split, config, context, 0, packed_row_tokens)
    plan = plan_training(config, len(first_epoch))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, config, memory_plan)
    scheduler = get_scheduler(
        config.scheduler,
        optimizer,
        num_warmup_steps=plan.warmup_steps,
        num_training_steps=plan.total_steps,
    )
    session = TrainingSession(
        config=config,
        context=context,
        hooks=hooks,
        report=report,
        device=device,
        started=started,
        pad_id=tokenizer.pad_token_id,
        train_split=train_split,
        val_split=val_split,
        val_batches=sorted_batches(val_split.lengths, config.batch_size)[
            context.rank :: context.world_size
        ],
        model=model,
        head=head,
        base_fingerprint=base_fingerprint,
        memory_plan=memory_plan,
        environment=environment,
        plan=plan,
        params=params,
        optimizer=optimizer,
        scheduler=scheduler,
        state=ckpt.LoopState(),
        adapter_dir=output_dir / ckpt.ADAPTER_DIR,
        checkpoint_dir=output_dir / ckpt.CHECKPOINT_DIR,
        adapter_metadata=adapter_metadata,
        packed_row_tokens=packed_row_tokens,
    )
    if config.method == "dpo":
        # Before any step, and before a resumed run's weights replace the starting adapter's.
        train_batches = sorted_batches(train_split.lengths, config.batch_size)
        session.train_reference = _reference(session, train_split, train_batches)
        session.val_reference = _reference(session, val_split, session.val_batches)
    if resume_from:
        resume(session, resume_from)
    else:
        # The adapter's initial weights were seeded in load_qlora_model; this seeds dropout.
        torch.manual_seed(config.seed)
    return session


def resume(session: TrainingSession, checkpoint: Path) -> None:
    """Weights, optimizer, schedule, counters and RNG from ``checkpoint``; the best adapter
    saved with it becomes the run's adapter again."""
    session.state = ckpt.load_checkpoint(
        checkpoint,
        model=session.model,
        optimizer=session.optimizer,
        scheduler=session.scheduler,
        rank=session.context.rank,
    )
    best = checkpoint / ckpt.BEST_ADAPTER
    adapter_dir = session.adapter_dir
    if session.context.is_main and best.is_dir() and best.resolve() != adapter_dir.resolve():
        ckpt.replace_directory(adapter_dir, lambda tmp: _copy_into(best, tmp))


def _reference(session: TrainingSession, split: TokenizedSplit, batches: list[list[int]]) -> Any:
    from trainer.engine.preference import reference_logps

    return reference_logps(
        session.model,
        split,
        batches,
        session.pad_id,
        session.device,
        session.head,
        session.report.on_heartbeat,
    )


def _epoch_batches(
    split: TokenizedSplit,
    config: TrainConfig,
    context: DistContext,
    epoch: int,
    packed_row_tokens: int | None,
) -> list[list[int]]:
    if packed_row_tokens:
        batches = packed_batches(split.lengths, packed_row_tokens, seed=config.seed, epoch=epoch)
    else:
        batches = length_grouped_batches(
            split.lengths, config.batch_size, seed=config.seed, epoch=epoch
        )
    return shard(batches, context.rank, context.world_size)


def _copy_into(source: Path, target: Path) -> None:
    import shutil

    shutil.copytree(source, target, dirs_exist_ok=True)
