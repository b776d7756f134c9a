"""The arithmetic of one optimizer step and of a validation pass.

Losses are sums over a step's items divided by the number of such items in the whole step
(all micro-batches, all processes), so a step's loss does not depend on how its items happen
to fall into batches or processes. An ``Objective`` says what the items are: assistant tokens
for SFT, preference pairs for DPO (``engine/preference.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any

from trainer.engine.config import TrainConfig
from trainer.engine.data import IGNORE_INDEX, TokenizedSplit, collate
from trainer.engine.distributed import DistContext
from trainer.engine.hooks import TrainHooks
from trainer.engine.modeling import OutputHead, compute_dtype


@dataclass(frozen=True)
class Objective:
    """What a step minimises. ``loss(model, batch, device, head)`` is the loss summed over the
    micro-batch's items and, for preference pairs, their reward margins (else None);
    ``items(batch)`` counts the items."""

    loss: Callable[..., tuple[Any, Any]]
    items: Callable[[dict[str, Any]], int]


def objective_for(config: TrainConfig) -> Objective:
    if config.method == "dpo":
        from trainer.engine.preference import pair_count, pair_loss

        return Objective(loss=partial(pair_loss, beta=config.beta), items=pair_count)
    return Objective(loss=_sft_loss, items=label_count)


@dataclass(frozen=True)
class StepContext:
    """What every optimizer step of a run works with."""

    params: list[Any]  # the trainable (adapter) weights
    optimizer: Any
    scheduler: Any
    config: TrainConfig
    context: DistContext
    report: TrainHooks
    device: str
    head: OutputHead | None = None  # the output layer the loss applies itself, if any

    @property
    def objective(self) -> Objective:
        return objective_for(self.config)


@dataclass(frozen=True)
class StepStats:
    loss: float
    grad_norm: float
    learning_rate: float
    tokens_per_s: float
    reward_accuracy: float | None = None  # preference pairs only
    reward_margin: float | None = None


def train_step(model: Any, micro_batches: list[dict[str, Any]], ctx: StepContext) -> StepStats:
    """One optimizer step over ``grad_accum`` micro-batches; the loss is the mean over every
    item (assistant token or pair) of the step, on all processes, however they fall into
    batches."""
    import torch

    context, device, head, objective = ctx.context, ctx.device, ctx.head, ctx.objective
    started = time.monotonic()
    (global_items,) = context.sum([sum(objective.items(b) for b in micro_batches)])
    # DDP averages gradients over processes, so each one divides by its share of the items.
    normaliser = global_items / context.world_size
    loss_sum, tokens, correct, margin_sum = 0.0, 0, 0, 0.0
    for number, batch in enumerate(micro_batches):
        last = number == len(micro_batches) - 1
        # Gradients are exchanged once per optimizer step, not once per micro-batch.
        sync = nullcontext() if last or not context.distributed else model.no_sync()
        with sync:
            loss, margins = objective.loss(model, batch, device, head)
            (loss / normaliser).backward()
        loss_sum += loss.item()
        tokens += token_count(batch)
        if margins is not None:
            correct += int((margins > 0).sum())
            margin_sum += margins.sum().item()
        ctx.report.on_heartbeat()
    max_norm = ctx.config.max_grad_norm or math.inf
    grad_norm = float(torch.nn.utils.clip_grad_norm_(ctx.params, max_norm))
    learning_rate = ctx.scheduler.get_last_lr()[0]
    ctx.optimizer.step()
    ctx.scheduler.step()
    ctx.optimizer.zero_grad(set_to_none=True)
    total_loss, total_tokens, correct, margin_sum = context.sum(
        [loss_sum, tokens, correct, margin_sum]
    )
    seconds = max(time.monotonic() - started, 1e-9)
    pairs = ctx.config.method == "dpo"
    return StepStats(
        loss=total_loss / global_items,
        grad_norm=grad_norm,
        learning_rate=learning_rate,
        tokens_per_s=total_tokens / seconds,
        reward_accuracy=correct / global_items if pairs else None,
        reward_margin=margin_sum / global_items if pairs else None,
    )


def evaluate(
    model: Any,
    split: TokenizedSplit,
    batches: list[list[int]],
    pad_id: int,
    context: DistContext,
    report: TrainHooks,
    device: str,
    head: OutputHead | None = None,
) -> float:
    """Mean loss over every assistant token of the validation split."""
    import torch

    model.eval()
    loss_sum, items = 0.0, 0
    with torch.no_grad():
        for batch_indices in batches:
            batch = collate([split.examples[i] for i in batch_indices], pad_id)
            loss_sum += assistant_loss(model, batch, device, head).item()
            items += label_count(batch)
            report.on_heartbeat()
    model.train()  # gradient checkpointing only acts in training mode
    total_loss, total_items = context.sum([loss_sum, items])
    return total_loss / total_items


def forward(model: Any, batch: dict[str, Any], device: str) -> tuple[dict[str, Any], Any]:
    """(the batch on ``device``, the model's output for it): logits, or the final hidden states
    when the output layer is applied in chunks by the loss; on CUDA under autocast to the
    training's compute dtype. A packed row (``packing.collate_packed``) goes in with its
    examples' positions and boundaries instead of an attention mask."""
    import torch

    batch = {key: _to(value, device) for key, value in batch.items()}
    autocast = (
        torch.autocast("cuda", dtype=compute_dtype(device))
        if device.startswith("cuda")
        else nullcontext()
    )
    if "cu_seq_lens" in batch:
        from trainer.engine.packed_attention import packed_model_inputs

        inputs = packed_model_inputs(batch)
    else:
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with autocast:
        output = model(**inputs).logits
    return batch, output


def _to(value: Any, device: str) -> Any:
    """Tensors onto the device; plain numbers (a packed row's longest length) stay as they are."""
    return value.to(device) if hasattr(value, "to") else value


def assistant_loss(
    model: Any, batch: dict[str, Any], device: str, head: OutputHead | None = None
) -> Any:
    """Summed cross-entropy over the batch's assistant tokens (each predicted from the ones
    before it, hence the shift by one).

    With ``head`` the model returns its final hidden states (``prepare_for_training``) and the
    output layer is applied in chunks inside the loss; without, the model returns logits.
    """
    import torch.nn.functional as F

    from trainer.engine.kernels import causal_lm_loss

    batch, output = forward(model, batch, device)
    if head is not None:
        return causal_lm_loss(output, head.weight, batch["labels"], chunk_tokens=head.chunk_tokens)
    shifted_logits = output[:, :-1].float()
    shifted_labels = batch["labels"][:, 1:]
    return F.cross_entropy(
        shifted_logits.reshape(-1, shifted_logits.size(-1)),
        shifted_labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )


def _sft_loss(
    model: Any, batch: dict[str, Any], device: str, head: OutputHead | None
) -> tuple[Any, None]:
    return assistant_loss(model, batch, device, head), None


def label_count(batch: dict[str, Any]) -> int:
    return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())


def token_count(batch: dict[str, Any]) -> int:
    """Real (non-padding) tokens of a micro-batch; a packed row has no padding."""
    mask = batch.get("attention_mask")
    return int(mask.sum()) if mask is not None else batch["input_ids"].numel()
