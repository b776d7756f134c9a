"""The QLoRA training loop: a plain torch loop, meant to be read top to bottom.

    tokenise -> load NF4 base + LoRA -> plan memory (what to keep, recompute, offload) ->
    plan steps -> (resume) -> for each optimizer step:
        forward/backward over grad_accum micro-batches, clip, step, report
        every eval_every steps and at each epoch end: validation loss, keep the best adapter,
        checkpoint, maybe stop early
        a stop request (cancel, Ctrl-C, SIGTERM): checkpoint and return

No Django here: the caller passes conversations in and receives progress through ``TrainHooks``.
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
    collate,
    length_grouped_batches,
    padding_share,
    shard,
    sorted_batches,
    tokenize_split,
)
from trainer.engine.distributed import dist_context
from trainer.engine.environment import describe_environment, peak_memory_bytes, reset_peak_memory
from trainer.engine.hooks import (
    CHECKPOINTING_HINT,
    OUT_OF_MEMORY,
    CheckpointMismatch,
    Evaluation,
    Progress,
    StartInfo,
    TrainHooks,
    TrainingError,
    TrainingOutOfMemory,
    TrainResult,
)
from trainer.engine.modeling import (
    build_optimizer,
    compute_dtype,
    fingerprint,
    load_qlora_model,
    load_tokenizer,
    parameter_counts,
    prepare_for_training,
)
from trainer.engine.steps import StepStats, evaluate, train_step

NO_TRAINING_EXAMPLES = (
    "none of the {count} training conversations has an assistant turn left to learn from "
    "(after cutting to --max-seq-len {max_seq_len})"
)
MODEL_DOES_NOT_FIT = (
    "out of memory while loading {model} in 4-bit on {device}, before training: the base model "
    "does not fit; use a smaller base model or a device with more memory"
)
# How allocation failures read on CPU, where torch raises a plain RuntimeError.
CPU_OOM_MARKERS = ("DefaultCPUAllocator", "can't allocate memory", "not enough memory")


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


def train(
    *,
    model_dir: Path | str,
    config: TrainConfig,
    train_conversations: Sequence[Sequence[Message]],
    validation_conversations: Sequence[Sequence[Message]],
    output_dir: Path,
    hooks: TrainHooks | None = None,
    resume_from: Path | None = None,
    adapter_metadata: dict[str, Any] | None = None,
    show_progress: bool = False,
) -> TrainResult:
    """Train a QLoRA adapter; the best one (lowest validation loss) ends in output_dir/adapter.

    ``resume_from`` is a checkpoint directory from an earlier call with the same config.
    ``hooks.should_stop`` is asked on every process; the other hooks only on the main one.
    """
    import torch

    try:
        trainer = Trainer(
            model_dir=model_dir,
            config=config,
            train_conversations=train_conversations,
            validation_conversations=validation_conversations,
            output_dir=Path(output_dir),
            hooks=hooks or TrainHooks(),
            resume_from=Path(resume_from) if resume_from else None,
            adapter_metadata=adapter_metadata or {},
        )
    except (torch.OutOfMemoryError, MemoryError) as error:
        device = dist_context().device
        raise TrainingOutOfMemory(
            MODEL_DOES_NOT_FIT.format(model=model_dir, device=device)
        ) from error
    return trainer.fit(show_progress=show_progress)


class Trainer:
    """Set-up in ``__init__`` (tokenise, load, plan, resume), the loop in ``fit``."""

    def __init__(
        self,
        *,
        model_dir: Path | str,
        config: TrainConfig,
        train_conversations: Sequence[Sequence[Message]],
        validation_conversations: Sequence[Sequence[Message]],
        output_dir: Path,
        hooks: TrainHooks,
        resume_from: Path | None,
        adapter_metadata: dict[str, Any],
    ) -> None:
        import torch
        from transformers import get_scheduler

        self.started = time.monotonic()
        self.config = config
        self.hooks = hooks
        self.context = dist_context()
        self.report = hooks if self.context.is_main else TrainHooks()
        self.device = self.context.device
        reset_peak_memory(self.device)
        self.adapter_dir = output_dir / ckpt.ADAPTER_DIR
        self.checkpoint_dir = output_dir / ckpt.CHECKPOINT_DIR
        self.adapter_metadata = adapter_metadata
        resume_info = ckpt.read_checkpoint_info(resume_from) if resume_from else None
        if resume_info and (problem := ckpt.check_config_matches(resume_info, config.as_dict())):
            raise CheckpointMismatch(problem)

        tokenizer = load_tokenizer(model_dir)
        self.pad_id = tokenizer.pad_token_id
        name = str(model_dir)
        self.train_split = tokenize_split(tokenizer, train_conversations, config.max_seq_len, name)
        self.val_split = tokenize_split(
            tokenizer, validation_conversations, config.max_seq_len, name
        )
        if not self.train_split.examples:
            count, max_seq_len = len(train_conversations), config.max_seq_len
            raise TrainingError(NO_TRAINING_EXAMPLES.format(count=count, max_seq_len=max_seq_len))
        self.report.on_heartbeat()

        self.model = load_qlora_model(model_dir, config, self.device)
        self.base_fingerprint = fingerprint(self.model.get_base_model().config.to_dict())
        if resume_info and (problem := ckpt.check_base_matches(resume_info, self.base_fingerprint)):
            raise CheckpointMismatch(problem)
        self.memory_plan, self.head = prepare_for_training(
            self.model,
            config,
            self.device,
            tokens=config.batch_size * max(self.train_split.lengths),
            world_size=self.context.world_size,
        )
        if resume_info:
            optimizer = ckpt.saved_optimizer_kind(resume_info)
            self.memory_plan = dataclasses.replace(self.memory_plan, optimizer=optimizer)
        self.environment = describe_environment(
            self.device,
            compute_dtype(self.device),
            world_size=self.context.world_size,
            memory_plan=self.memory_plan.summary(),
        )
        self.report.on_heartbeat()

        self.plan = plan_training(config, len(self.epoch_batches(0)))
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.params, config, self.memory_plan)
        self.scheduler = get_scheduler(
            config.scheduler,
            self.optimizer,
            num_warmup_steps=self.plan.warmup_steps,
            num_training_steps=self.plan.total_steps,
        )
        self.state = ckpt.LoopState()
        if resume_from:
            self.resume(resume_from)
        else:
            # The adapter's initial weights were seeded in load_qlora_model; this seeds dropout.
            torch.manual_seed(config.seed)
        # Validation needs no gradient exchange, so processes may get unequal shares; whether
        # to validate at all must be decided alike everywhere, from the whole split.
        self.has_validation = bool(self.val_split.examples)
        self.val_batches = sorted_batches(self.val_split.lengths, config.batch_size)[
            self.context.rank :: self.context.world_size
        ]

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This process's batches (example indices) for one epoch, in training order."""
        batches = length_grouped_batches(
            self.train_split.lengths, self.config.batch_size, seed=self.config.seed, epoch=epoch
        )
        return shard(batches, self.context.rank, self.context.world_size)

    def resume(self, checkpoint: Path) -> None:
        self.state = ckpt.load_checkpoint(
            checkpoint,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            rank=self.context.rank,
        )
        best = checkpoint / ckpt.BEST_ADAPTER
        if self.context.is_main and best.is_dir() and best.resolve() != self.adapter_dir.resolve():
            ckpt.replace_directory(self.adapter_dir, lambda tmp: _copy_into(best, tmp))

    def fit(self, *, show_progress: bool) -> TrainResult:
        import torch
        from tqdm.auto import tqdm

        config, plan, state = self.config, self.plan, self.state
        trainable, total = parameter_counts(self.model)
        self.report.on_start(self.start_info(trainable, total))
        training_model = self.context.wrap(self.model)
        bar = tqdm(
            total=plan.total_steps,
            initial=state.step,
            unit="step",
            desc="finetune",
            disable=not (show_progress and self.context.is_main),
        )
        session_start, session_first_step = time.monotonic(), state.step
        stop_reason = "completed"
        try:
            while stop_reason == "completed" and state.step < plan.total_steps:
                epoch = state.step // plan.steps_per_epoch
                batches = self.epoch_batches(epoch)
                steps = [
                    batches[i : i + config.grad_accum]
                    for i in range(0, len(batches), config.grad_accum)
                ]
                # A resumed run starts mid-epoch: the steps before were done before it stopped.
                for index in range(state.step - epoch * plan.steps_per_epoch, len(steps)):
                    stats = self.train_step(training_model, steps[index])
                    state.step += 1
                    remaining = plan.total_steps - state.step
                    elapsed = time.monotonic() - session_start
                    eta = elapsed / (state.step - session_first_step) * remaining
                    self.report.on_step(self.progress(stats, eta))
                    bar.update(1)
                    bar.set_postfix_str(_postfix(stats, state))

                    evaluated = False
                    if (
                        state.step % plan.eval_every == 0
                        or index == len(steps) - 1
                        or not remaining
                    ):
                        self.evaluate_and_checkpoint()
                        bar.set_postfix_str(_postfix(stats, state))
                        evaluated = True
                        if config.patience and state.evals_since_best >= config.patience:
                            stop_reason = "early_stopped"
                            break
                    if self.context.any(self.hooks.should_stop()):
                        if not evaluated:
                            self.save_checkpoint()
                        stop_reason = "stopped"
                        break
                    if not remaining:
                        break
        except (torch.OutOfMemoryError, MemoryError) as error:
            raise self.out_of_memory() from error
        except RuntimeError as error:
            if any(marker in str(error) for marker in CPU_OOM_MARKERS):
                raise self.out_of_memory() from error
            raise
        finally:
            bar.close()

        if not self.has_validation and stop_reason != "stopped":
            self.save_adapter(None)  # nothing to choose the best by: the last one is the adapter
        return TrainResult(
            stop_reason=stop_reason,
            final_step=state.step,
            total_steps=plan.total_steps,
            best_val_loss=state.best_val_loss,
            best_step=state.best_step,
            adapter_dir=self.adapter_dir,
            checkpoint_dir=self.checkpoint_dir if self.checkpoint_dir.is_dir() else None,
            trainable_params=trainable,
            total_params=total,
            peak_memory_bytes=peak_memory_bytes(self.device),
            wall_seconds=time.monotonic() - self.started,
            environment=self.environment,
        )

    def train_step(self, model: Any, batches: list[list[int]]) -> StepStats:
        micro_batches = [
            collate([self.train_split.examples[i] for i in batch], self.pad_id) for batch in batches
        ]
        return train_step(
            model,
            micro_batches,
            self.params,
            self.optimizer,
            self.scheduler,
            self.config,
            self.context,
            self.report,
            self.device,
            self.head,
        )

    def evaluate_and_checkpoint(self) -> None:
        """Validation loss (when there is a validation split), best adapter, checkpoint."""
        state = self.state
        if self.has_validation:
            val_loss = evaluate(
                self.model,
                self.val_split,
                self.val_batches,
                self.pad_id,
                self.context,
                self.report,
                self.device,
                self.head,
            )
            improved = state.best_val_loss is None or val_loss < state.best_val_loss
            if improved:
                state.best_val_loss, state.best_step = val_loss, state.step
                state.evals_since_best = 0
                self.save_adapter(val_loss)
            else:
                state.evals_since_best += 1
            self.report.on_evaluate(
                Evaluation(
                    step=state.step,
                    epoch=state.step / self.plan.steps_per_epoch,
                    val_loss=val_loss,
                    best_val_loss=state.best_val_loss,
                    best_step=state.best_step,
                    is_best=improved,
                )
            )
        self.save_checkpoint()

    def save_checkpoint(self) -> None:
        # Every process's RNG state goes in, so each resumes its own dropout stream.
        rngs = self.context.gather(ckpt.rng_states())
        if self.context.is_main:
            ckpt.save_checkpoint(
                self.checkpoint_dir,
                model=self.model,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                state=self.state,
                rng_per_process=rngs,
                config=self.config.as_dict(),
                base_fingerprint=self.base_fingerprint,
                best_adapter=self.adapter_dir,
                optimizer_kind=self.memory_plan.optimizer,
            )
            self.report.on_checkpoint(self.checkpoint_dir, self.state.step)

    def save_adapter(self, val_loss: float | None) -> None:
        if self.context.is_main:
            metadata = {
                **self.adapter_metadata,
                "config": self.config.as_dict(),
                "base_fingerprint": self.base_fingerprint,
                "step": self.state.step,
                "val_loss": val_loss,
                "environment": self.environment,
            }
            ckpt.save_adapter(self.model, self.adapter_dir, metadata)

    def start_info(self, trainable: int, total: int) -> StartInfo:
        train, val = self.train_split, self.val_split
        return StartInfo(
            total_steps=self.plan.total_steps,
            steps_per_epoch=self.plan.steps_per_epoch,
            start_step=self.state.step,
            eval_every=self.plan.eval_every,
            trainable_params=trainable,
            total_params=total,
            train_examples=len(train.examples),
            validation_examples=len(val.examples),
            truncated_examples=train.truncated + val.truncated,
            dropped_examples=train.dropped + val.dropped,
            padding_share=padding_share(train.lengths, self.epoch_batches(0)),
            environment=self.environment,
        )

    def progress(self, stats: StepStats, eta: float) -> Progress:
        return Progress(
            step=self.state.step,
            total_steps=self.plan.total_steps,
            epoch=self.state.step / self.plan.steps_per_epoch,
            train_loss=stats.loss,
            learning_rate=stats.learning_rate,
            grad_norm=stats.grad_norm,
            tokens_per_s=stats.tokens_per_s,
            elapsed_seconds=time.monotonic() - self.started,
            eta_seconds=eta,
        )

    def out_of_memory(self) -> TrainingOutOfMemory:
        everything_recomputed = "keep" not in self.memory_plan.layer_modes
        hint = "" if everything_recomputed else CHECKPOINTING_HINT
        return TrainingOutOfMemory(
            OUT_OF_MEMORY.format(
                device=self.device,
                batch_size=self.config.batch_size,
                max_seq_len=self.config.max_seq_len,
                checkpointing_hint=hint,
            )
        )


def _postfix(stats: StepStats, state: ckpt.LoopState) -> str:
    best = f" best val {state.best_val_loss:.4f}" if state.best_val_loss is not None else ""
    return f"loss {stats.loss:.4f} lr {stats.learning_rate:.2e}{best}"


def _copy_into(source: Path, target: Path) -> None:
    import shutil

    shutil.copytree(source, target, dirs_exist_ok=True)
