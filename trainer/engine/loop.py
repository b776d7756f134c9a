"""The QLoRA training loop: a plain torch loop, meant to be read top to bottom.

    set up (engine/setup.py: tokenise, load, plan memory and steps, resume) -> for each step:
        forward/backward over grad_accum micro-batches, clip, step, report
        every eval_every steps and at each epoch end: validation loss, keep the best adapter,
        checkpoint, maybe stop early
        a stop request (cancel, Ctrl-C, SIGTERM): checkpoint and return
    -> save the adapter (when there was no validation to pick the best one) and report

No Django here: the caller passes conversations in and receives progress through ``TrainHooks``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from trainer.engine import checkpoint as ckpt
from trainer.engine.config import TrainConfig
from trainer.engine.data import padding_share
from trainer.engine.distributed import dist_context
from trainer.engine.environment import peak_memory_bytes
from trainer.engine.hooks import (
    CHECKPOINTING_HINT,
    OUT_OF_MEMORY,
    Evaluation,
    Progress,
    StartInfo,
    TrainHooks,
    TrainingOutOfMemory,
    TrainResult,
)
from trainer.engine.modeling import parameter_counts
from trainer.engine.packing import describe_packing
from trainer.engine.setup import TrainingData, TrainingSession, set_up
from trainer.engine.steps import StepStats, evaluate, train_step

MODEL_DOES_NOT_FIT = (
    "out of memory while loading {model} in 4-bit on {device}, before training: the base model "
    "does not fit; use a smaller base model or a device with more memory"
)
# How allocation failures read on CPU, where torch raises a plain RuntimeError.
CPU_OOM_MARKERS = ("DefaultCPUAllocator", "can't allocate memory", "not enough memory")


def train(
    *,
    model_dir: Path | str,
    config: TrainConfig,
    train_conversations: TrainingData,
    validation_conversations: TrainingData,
    output_dir: Path,
    hooks: TrainHooks | None = None,
    resume_from: Path | None = None,
    adapter_metadata: dict[str, Any] | None = None,
    show_progress: bool = False,
    start_adapter: Path | None = None,
) -> TrainResult:
    """Train a QLoRA adapter; the best one (lowest validation loss) ends in output_dir/adapter.

    Conversations for SFT, ``PreferencePair``s for DPO (``config.method``). ``start_adapter``
    is a saved adapter to start from (for DPO also the reference: required there).
    ``resume_from`` is a checkpoint directory from an earlier call with the same config.
    ``hooks.should_stop`` is asked on every process; the other hooks only on the main one.
    """
    import torch

    try:
        session = set_up(
            model_dir=model_dir,
            config=config,
            train_conversations=train_conversations,
            validation_conversations=validation_conversations,
            output_dir=Path(output_dir),
            hooks=hooks or TrainHooks(),
            resume_from=Path(resume_from) if resume_from else None,
            adapter_metadata=adapter_metadata or {},
            start_adapter=Path(start_adapter) if start_adapter else None,
        )
    except (torch.OutOfMemoryError, MemoryError) as error:
        device = dist_context().device
        raise TrainingOutOfMemory(
            MODEL_DOES_NOT_FIT.format(model=model_dir, device=device)
        ) from error
    stop_reason = run_steps(session, show_progress=show_progress)
    if not session.has_validation and stop_reason != "stopped":
        save_adapter(session, None)  # nothing to choose the best by: the last one is the adapter
    return _result(session, stop_reason)


def run_steps(session: TrainingSession, *, show_progress: bool = False) -> str:
    """Train from the session's current step to the planned last one, validating and
    checkpointing every ``eval_every`` steps and at each epoch end.

    Returns why it ended: "completed", "early_stopped" (validation loss has not improved for
    ``patience`` evaluations) or "stopped" (``should_stop`` said so on some process; a
    checkpoint to resume from is on disk). Out of memory becomes ``TrainingOutOfMemory``
    saying which settings to lower.
    """
    import torch
    from tqdm.auto import tqdm

    config, plan, state = session.config, session.plan, session.state
    session.report.on_start(_start_info(session))
    training_model = session.context.wrap(session.model)
    step_context = session.step_context()
    bar = tqdm(
        total=plan.total_steps,
        initial=state.step,
        unit="step",
        desc="finetune",
        disable=not (show_progress and session.context.is_main),
    )
    loop_start, first_step = time.monotonic(), state.step
    try:
        for batches in islice(_steps_to_do(session), plan.total_steps - state.step):
            micro_batches = [session.batch(b) for b in batches]
            stats = train_step(training_model, micro_batches, step_context)
            state.step += 1
            elapsed = time.monotonic() - loop_start
            eta = elapsed / (state.step - first_step) * (plan.total_steps - state.step)
            session.report.on_step(_progress(session, stats, eta))
            bar.update(1)
            bar.set_postfix_str(_postfix(stats, state))

            evaluates = (
                state.step % plan.eval_every == 0
                or state.step % plan.steps_per_epoch == 0  # an epoch ends
                or state.step == plan.total_steps
            )
            if evaluates:
                evaluate_and_checkpoint(session)
                bar.set_postfix_str(_postfix(stats, state))
                if config.patience and state.evals_since_best >= config.patience:
                    return "early_stopped"
            if session.context.any(session.hooks.should_stop()):
                if not evaluates:
                    save_checkpoint(session)
                return "stopped"
    except (torch.OutOfMemoryError, MemoryError) as error:
        raise _out_of_memory(session) from error
    except RuntimeError as error:
        if any(marker in str(error) for marker in CPU_OOM_MARKERS):
            raise _out_of_memory(session) from error
        raise
    finally:
        bar.close()
    return "completed"


def evaluate_and_checkpoint(session: TrainingSession) -> None:
    """Validation loss (when there is a validation split), best adapter, checkpoint."""
    state = session.state
    if session.has_validation:
        val_loss, rewards = _validate(session)
        improved = state.best_val_loss is None or val_loss < state.best_val_loss
        if improved:
            state.best_val_loss, state.best_step = val_loss, state.step
            state.evals_since_best = 0
            save_adapter(session, val_loss)
        else:
            state.evals_since_best += 1
        session.report.on_evaluate(
            Evaluation(
                step=state.step,
                epoch=state.step / session.plan.steps_per_epoch,
                val_loss=val_loss,
                best_val_loss=state.best_val_loss,
                best_step=state.best_step,
                is_best=improved,
                reward_accuracy=rewards.reward_accuracy if rewards else None,
                reward_margin=rewards.reward_margin if rewards else None,
            )
        )
    save_checkpoint(session)


def _validate(session: TrainingSession) -> tuple[float, Any]:
    """Validation loss, and for DPO the held-out pairs' scores (reward accuracy and margin)."""
    if session.config.method == "dpo":
        from trainer.engine.preference import evaluate_pairs

        scores = evaluate_pairs(
            session.model,
            session.val_split,
            session.val_batches,
            session.pad_id,
            session.val_reference,
            beta=session.config.beta,
            device=session.device,
            head=session.head,
            context=session.context,
            heartbeat=session.report.on_heartbeat,
        )
        return scores.loss, scores
    val_loss = evaluate(
        session.model,
        session.val_split,
        session.val_batches,
        session.pad_id,
        session.context,
        session.report,
        session.device,
        session.head,
    )
    return val_loss, None


def save_checkpoint(session: TrainingSession) -> None:
    # Every process's RNG state goes in, so each resumes its own dropout stream.
    rngs = session.context.gather(ckpt.rng_states())
    if session.context.is_main:
        ckpt.save_checkpoint(
            session.checkpoint_dir,
            model=session.model,
            optimizer=session.optimizer,
            scheduler=session.scheduler,
            state=session.state,
            rng_per_process=rngs,
            config=session.config.as_dict(),
            base_fingerprint=session.base_fingerprint,
            best_adapter=session.adapter_dir,
            optimizer_kind=session.memory_plan.optimizer,
            packed=session.packed_row_tokens is not None,
        )
        session.report.on_checkpoint(session.checkpoint_dir, session.state.step)


def save_adapter(session: TrainingSession, val_loss: float | None) -> None:
    if session.context.is_main:
        metadata = {
            **session.adapter_metadata,
            "config": session.config.as_dict(),
            "base_fingerprint": session.base_fingerprint,
            "step": session.state.step,
            "val_loss": val_loss,
            "environment": session.environment,
        }
        ckpt.save_adapter(session.model, session.adapter_dir, metadata)


def _steps_to_do(session: TrainingSession) -> Iterator[list[list[int]]]:
    """This process's batches for each step, epoch after epoch, from the session's current
    step: a resumed run starts mid-epoch, where the interrupted one stopped."""
    plan, accum = session.plan, session.config.grad_accum
    epoch, done = divmod(session.state.step, plan.steps_per_epoch)
    while True:
        batches = session.epoch_batches(epoch)
        for index in range(done, plan.steps_per_epoch):
            yield batches[index * accum : (index + 1) * accum]
        epoch, done = epoch + 1, 0


def _result(session: TrainingSession, stop_reason: str) -> TrainResult:
    state = session.state
    trainable, total = parameter_counts(session.model)
    return TrainResult(
        stop_reason=stop_reason,
        final_step=state.step,
        total_steps=session.plan.total_steps,
        best_val_loss=state.best_val_loss,
        best_step=state.best_step,
        adapter_dir=session.adapter_dir,
        checkpoint_dir=session.checkpoint_dir if session.checkpoint_dir.is_dir() else None,
        trainable_params=trainable,
        total_params=total,
        peak_memory_bytes=peak_memory_bytes(session.device),
        wall_seconds=time.monotonic() - session.started,
        environment=session.environment,
    )


def _start_info(session: TrainingSession) -> StartInfo:
    train, val = session.train_split, session.val_split
    trainable, total = parameter_counts(session.model)
    packed = session.packed_row_tokens is not None
    return StartInfo(
        total_steps=session.plan.total_steps,
        steps_per_epoch=session.plan.steps_per_epoch,
        start_step=session.state.step,
        eval_every=session.plan.eval_every,
        trainable_params=trainable,
        total_params=total,
        train_examples=len(train.examples),
        validation_examples=len(val.examples),
        truncated_examples=train.truncated + val.truncated,
        dropped_examples=train.dropped + val.dropped,
        padding_share=0.0 if packed else padding_share(train.lengths, session.epoch_batches(0)),
        environment=session.environment,
        packing=_packing(session) if packed else "off",
    )


def _packing(session: TrainingSession) -> str:
    from trainer.engine.packed_attention import attention_kind

    return describe_packing(
        session.train_split.lengths,
        session.packed_row_tokens,
        seed=session.config.seed,
        attention=attention_kind(session.device),
    )


def _progress(session: TrainingSession, stats: StepStats, eta: float) -> Progress:
    step, plan = session.state.step, session.plan
    return Progress(
        step=step,
        total_steps=plan.total_steps,
        epoch=step / plan.steps_per_epoch,
        train_loss=stats.loss,
        learning_rate=stats.learning_rate,
        grad_norm=stats.grad_norm,
        tokens_per_s=stats.tokens_per_s,
        elapsed_seconds=time.monotonic() - session.started,
        eta_seconds=eta,
        reward_accuracy=stats.reward_accuracy,
        reward_margin=stats.reward_margin,
    )


def _out_of_memory(session: TrainingSession) -> TrainingOutOfMemory:
    everything_recomputed = "keep" not in session.memory_plan.layer_modes
    hint = "" if everything_recomputed else CHECKPOINTING_HINT
    return TrainingOutOfMemory(
        OUT_OF_MEMORY.format(
            device=session.device,
            batch_size=session.config.batch_size,
            max_seq_len=session.config.max_seq_len,
            checkpointing_hint=hint,
        )
    )


def _postfix(stats: StepStats, state: ckpt.LoopState) -> str:
    best = f" best val {state.best_val_loss:.4f}" if state.best_val_loss is not None else ""
    return f"loss {stats.loss:.4f} lr {stats.learning_rate:.2e}{best}"
