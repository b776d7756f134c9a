"""Attention for packed rows (``engine/packing.py``): each example attends only to itself.

Registered in transformers' ``AttentionInterface`` (and its mask interface) as
``PACKED_ATTENTION``. A model switched to it (``use_packed_attention``) attends as with SDPA to
ordinary batches, padded (with their attention mask) or not, and to a packed row when it is
also given the row's example boundaries, under the names transformers' own flash-attention
path reads: ``cu_seq_lens_q``/``cu_seq_lens_k`` and ``max_length_q``/``max_length_k``
(``packed_model_inputs``). A packed row is called with no attention mask: no (tokens × tokens)
mask is ever built for it. Two ways to attend:

- ``varlen``: torch's variable-length flash attention (``torch.nn.attention.varlen``, torch
  2.10 and later; CUDA, bf16/fp16, no attention dropout): one kernel for the whole row, with
  work in proportion to the sum of the squared example lengths;
- ``per-example``: SDPA over each example's slice in turn. Exact everywhere (CPU, float32, an
  older torch), one call per example per layer.

This module imports torch and transformers: import it inside the functions that train.
"""

from __future__ import annotations

import inspect
import warnings
from functools import cache
from itertools import pairwise
from typing import Any, NamedTuple

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from trainer.engine.config import TrainConfig

PACKED_ATTENTION = "evalhub_packed"
FLASH_DTYPES = (torch.float16, torch.bfloat16)


class VarlenKernel(NamedTuple):
    """torch's varlen_attn and what this torch's version of it takes."""

    function: Any
    causal: dict[str, Any]  # the keyword arguments that make it causal
    takes_scale: bool
    takes_gqa: bool  # fewer key/value heads than query heads


@cache
def varlen_kernel() -> VarlenKernel | None:
    """torch's variable-length attention, None where this torch has none. Its signature changed
    between releases: torch 2.10 says ``is_causal=True``, later ones ``window_size=(-1, 0)``;
    ``scale`` and ``enable_gqa`` came later."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    parameters = inspect.signature(varlen_attn).parameters
    if "window_size" in parameters:
        causal = {"window_size": (-1, 0)}
    elif "is_causal" in parameters:
        causal = {"is_causal": True}
    else:
        return None
    return VarlenKernel(
        function=varlen_attn,
        causal=causal,
        takes_scale="scale" in parameters,
        takes_gqa="enable_gqa" in parameters,
    )


def varlen_available(device: str) -> bool:
    """Whether packed rows on ``device`` run through one variable-length attention kernel: one
    that this torch has, this GPU runs, and that gave what SDPA gives on a small packed row."""
    return device.startswith("cuda") and _flash_gpu(device) and _varlen_checked(device)


@cache
def _varlen_checked(device: str) -> bool:
    kernel = varlen_kernel()
    return kernel is not None and kernel_agrees(kernel, device)


def kernel_agrees(kernel: VarlenKernel, device: str, dtype: torch.dtype = torch.bfloat16) -> bool:
    """The kernel against SDPA example by example, on a row of two short examples with grouped
    key/value heads, before packing relies on it. A torch whose ``varlen_attn`` takes other
    arguments, fails, or gives other numbers turns ``--packing auto`` off (with a warning)
    instead of failing a run at its first step."""
    generator = torch.Generator().manual_seed(0)
    lengths, heads, kv_heads, width = [5, 3], 4, 2, 16

    def states(count: int) -> torch.Tensor:
        return torch.randn(1, count, sum(lengths), width, generator=generator).to(device, dtype)

    query, key, value = states(heads), states(kv_heads), states(kv_heads)
    bounds = torch.tensor([0, 5, 8], dtype=torch.int32, device=device)
    module = _Grouped(num_key_value_groups=heads // kv_heads)
    try:
        got, _ = _varlen(kernel, query, key, value, bounds, max(lengths), None)
        want, _ = _per_example(module, query, key, value, lengths, 0.0, None)
        agrees = torch.allclose(got.float(), want.float(), atol=2e-2, rtol=2e-2)
        reason = "gave other values than SDPA"
    except (RuntimeError, TypeError, ValueError) as error:
        agrees, reason = False, f"failed ({error!r:.200})"
    if not agrees:
        warnings.warn(
            f"variable-length attention {reason} on {device}; --packing auto stays off",
            RuntimeWarning,
            stacklevel=2,
        )
    return agrees


class _Grouped(NamedTuple):
    """What ``sdpa_attention_forward`` reads of an attention module."""

    num_key_value_groups: int
    is_causal: bool = True


@cache
def _flash_gpu(device: str) -> bool:
    """Flash attention needs an Ampere GPU or newer (compute capability 8.0)."""
    return torch.cuda.get_device_capability(torch.device(device)) >= (8, 0)


def packing_enabled(config: TrainConfig, device: str) -> bool:
    """``config.packing`` resolved: "auto" packs SFT on a GPU with variable-length attention,
    where a row of many short examples keeps the GPU far busier than a padded batch of a few.
    On a CPU the work grows with the tokens alone, and length-grouped batches carry little
    padding, so packing there would only cut the number of steps."""
    if config.method != "sft" or config.packing == "off":
        return False
    return config.packing == "on" or varlen_available(device)


def attention_kind(device: str) -> str:
    """How packed rows attend on ``device``: "varlen" or "per-example"."""
    return "varlen" if varlen_available(device) else "per-example"


def packed_model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """The model's keyword arguments for a row from ``packing.collate_packed``."""
    bounds, longest = batch["cu_seq_lens"], batch["max_length"]
    return {
        "input_ids": batch["input_ids"],
        "position_ids": batch["position_ids"],
        "cu_seq_lens_q": bounds,
        "cu_seq_lens_k": bounds,
        "max_length_q": longest,
        "max_length_k": longest,
    }


def packed_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    cu_seq_lens_q: torch.Tensor | None = None,
    max_length_q: int | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature: query (batch, heads, tokens, head_dim), key
    and value (batch, kv_heads, tokens, head_dim); returns (batch, tokens, heads, head_dim)."""
    if cu_seq_lens_q is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    kernel = varlen_kernel()
    if kernel is not None and _fits(kernel, query, dropout, scaling):
        return _varlen(kernel, query, key, value, cu_seq_lens_q, max_length_q, scaling)
    lengths = [end - start for start, end in pairwise(cu_seq_lens_q.tolist())]
    return _per_example(module, query, key, value, lengths, dropout, scaling)


def _per_example(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    lengths: list[int],
    dropout: float,
    scaling: float | None,
) -> tuple[torch.Tensor, None]:
    # split, not slicing: the backward of a split is one concatenation, while each slice's
    # backward would write its gradient into a zeroed tensor of the whole row.
    outputs = [
        sdpa_attention_forward(
            module, q, k, v, None, dropout=dropout, scaling=scaling, is_causal=True
        )[0]
        for q, k, v in zip(
            query.split(lengths, dim=2),
            key.split(lengths, dim=2),
            value.split(lengths, dim=2),
            strict=True,
        )
    ]
    return torch.cat(outputs, dim=1), None


def _fits(kernel: VarlenKernel, query: torch.Tensor, dropout: float, scaling: Any) -> bool:
    """Whether the flash kernel can do what SDPA would: CUDA, half precision, no attention
    dropout, and the model's scale (the kernel's default where it takes none)."""
    default_scale = scaling is None or abs(scaling * query.shape[-1] ** 0.5 - 1) < 1e-6
    return (
        varlen_available(str(query.device))
        and query.dtype in FLASH_DTYPES
        and dropout == 0
        and (kernel.takes_scale or default_scale)
    )


def _varlen(
    kernel: VarlenKernel,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    bounds: torch.Tensor,
    longest: int,
    scaling: float | None,
) -> tuple[torch.Tensor, None]:
    groups = query.shape[1] // key.shape[1]
    options = dict(kernel.causal)
    if kernel.takes_scale:
        options["scale"] = scaling
    if groups > 1 and kernel.takes_gqa:
        options["enable_gqa"] = True
    elif groups > 1:
        key, value = repeat_kv(key, groups), repeat_kv(value, groups)

    def tokens_first(states: torch.Tensor) -> torch.Tensor:  # (1, h, t, d) -> (t, h, d)
        return states[0].transpose(0, 1).contiguous()

    output = kernel.function(
        tokens_first(query),
        tokens_first(key),
        tokens_first(value),
        bounds,
        bounds,
        longest,
        longest,
        **options,
    )
    return output.unsqueeze(0), None


def packed_attention_mask(*args: Any, attention_mask: Any = None, **kwargs: Any) -> Any:
    """No mask for a row without an attention mask (a packed row, or an unpadded batch, which
    SDPA runs as causal); SDPA's mask for a padded batch."""
    if attention_mask is None:
        return None
    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def use_packed_attention(model: Any) -> None:
    """Switch ``model`` (a transformers model, peft-wrapped or not) to ``packed_attention``."""
    AttentionInterface.register(PACKED_ATTENTION, packed_attention)
    AttentionMaskInterface.register(PACKED_ATTENTION, packed_attention_mask)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.set_attn_implementation(PACKED_ATTENTION)
