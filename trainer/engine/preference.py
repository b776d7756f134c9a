"""Direct preference optimisation (Rafailov et al. 2023) on the QLoRA engine.

A pair is one prompt with a chosen and a rejected answer; each side is labelled on its final
answer only, and a micro-batch holds the chosen rows then the rejected rows (``collate_pairs``).
The reference policy is the adapter training starts from. Its log-probabilities are computed
once, before the first step, in eval mode without gradients (TRL's precompute_ref_log_probs),
so only one adapter is ever in memory. Per pair, with p and r the summed log-probabilities of
the answer tokens under the policy and the reference:

    reward margin  m = beta * ((p_chosen - r_chosen) - (p_rejected - r_rejected))
    loss             = -log sigmoid(m)

Reward accuracy is the share of pairs with m > 0. Torch is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainer.engine.data import IGNORE_INDEX, TokenizedSplit, collate_pairs
from trainer.engine.modeling import OutputHead
from trainer.engine.steps import forward


@dataclass(frozen=True)
class PairScores:
    """Validation over held-out pairs: mean loss, reward accuracy and mean reward margin."""

    loss: float
    reward_accuracy: float
    reward_margin: float


def dpo_losses(
    policy_chosen: Any,
    policy_rejected: Any,
    reference_chosen: Any,
    reference_rejected: Any,
    beta: float,
) -> tuple[Any, Any]:
    """Per-pair losses and reward margins from summed answer log-probabilities."""
    import torch.nn.functional as F

    margins = beta * ((policy_chosen - reference_chosen) - (policy_rejected - reference_rejected))
    return -F.logsigmoid(margins), margins


def sequence_logps(
    model: Any, batch: dict[str, Any], device: str, head: OutputHead | None = None
) -> Any:
    """Per row, the summed log-probability of its labelled tokens (each predicted from the ones
    before it). With ``head`` the model returns hidden states and the output layer is applied
    in chunks, one row at a time, by the same kernel as the SFT loss."""
    import torch

    from trainer.engine.kernels import causal_lm_loss

    batch, output = forward(model, batch, device)
    labels = batch["labels"]
    if head is not None:
        weight, chunk = head.weight, head.chunk_tokens
        rows = range(output.shape[0])
        sums = [causal_lm_loss(output[[i]], weight, labels[[i]], chunk_tokens=chunk) for i in rows]
        return -torch.stack(sums)
    log_probs = output[:, :-1].float().log_softmax(dim=-1)
    targets = labels[:, 1:]
    kept = targets != IGNORE_INDEX
    picked = log_probs.gather(2, torch.where(kept, targets, 0).unsqueeze(2)).squeeze(2)
    return (picked * kept).sum(dim=1)


def pair_loss(
    model: Any,
    batch: dict[str, Any],
    device: str,
    head: OutputHead | None,
    *,
    beta: float,
) -> tuple[Any, Any]:
    """Summed DPO loss over the batch's pairs, and their (detached) reward margins.
    ``batch["reference"]`` holds the reference's log-probabilities, chosen then rejected."""
    logps = sequence_logps(model, batch, device, head)
    policy_chosen, policy_rejected = logps.chunk(2)
    reference_chosen, reference_rejected = batch["reference"].to(logps.device).chunk(2)
    losses, margins = dpo_losses(
        policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta
    )
    return losses.sum(), margins.detach()


def pair_count(batch: dict[str, Any]) -> int:
    return int(batch["input_ids"].shape[0]) // 2


def pair_batch(split: TokenizedSplit, indices: Sequence[int], pad_id: int, reference: Any) -> dict:
    """Collated pairs with their reference log-probabilities beside them."""
    import torch

    batch = collate_pairs([split.examples[i] for i in indices], pad_id)
    rows = torch.as_tensor(list(indices))
    batch["reference"] = torch.cat([reference[rows, 0], reference[rows, 1]])
    return batch


def reference_logps(
    model: Any,
    split: TokenizedSplit,
    batches: Sequence[Sequence[int]],
    pad_id: int,
    device: str,
    head: OutputHead | None,
    heartbeat: Any,
) -> Any:
    """A (pairs, 2) tensor of the model's summed answer log-probabilities, chosen and rejected,
    in eval mode (no dropout) and without gradients: the fixed reference DPO measures against."""
    import torch

    reference = torch.zeros((len(split.examples), 2), dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        for indices in batches:
            batch = collate_pairs([split.examples[i] for i in indices], pad_id)
            chosen, rejected = sequence_logps(model, batch, device, head).float().cpu().chunk(2)
            reference[list(indices), 0], reference[list(indices), 1] = chosen, rejected
            heartbeat()
    model.train()  # gradient checkpointing only acts in training mode
    return reference


def evaluate_pairs(
    model: Any,
    split: TokenizedSplit,
    batches: Sequence[Sequence[int]],
    pad_id: int,
    reference: Any,
    *,
    beta: float,
    device: str,
    head: OutputHead | None,
    context: Any,
    heartbeat: Any,
) -> PairScores:
    """Mean DPO loss, reward accuracy and mean margin over this split, on all processes."""
    import torch

    model.eval()
    loss_sum, correct, margin_sum, pairs = 0.0, 0, 0.0, 0
    with torch.no_grad():
        for indices in batches:
            batch = pair_batch(split, indices, pad_id, reference)
            loss, margins = pair_loss(model, batch, device, head, beta=beta)
            loss_sum += loss.item()
            correct += int((margins > 0).sum())
            margin_sum += margins.sum().item()
            pairs += len(indices)
            heartbeat()
    model.train()
    loss_sum, correct, margin_sum, pairs = context.sum([loss_sum, correct, margin_sum, pairs])
    return PairScores(
        loss=loss_sum / pairs, reward_accuracy=correct / pairs, reward_margin=margin_sum / pairs
    )
