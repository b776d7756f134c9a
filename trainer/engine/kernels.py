"""Memory-lean autograd Functions for the QLoRA training step: cross-entropy over the output
layer in chunks, RMSNorm and SwiGLU, and a patch that routes a Llama-like model through them.

Plain torch (no Triton), so the same code runs on CPU and CUDA. Each Function gives the values
that the Hugging Face computation gives (RMSNorm and SwiGLU bit for bit, the loss up to the
order of summation) but saves less for backward:

- cross-entropy never holds the (tokens x vocab) logits: at Llama-3 scale (128k vocabulary,
  2k tokens) autograd would keep ~0.5 GiB of bf16 logits plus ~1 GiB of fp32 log-probabilities;
  the output layer is frozen, so the gradient for the hidden states is computed in the forward,
  chunk by chunk, and only that (tokens x hidden) gradient is kept;
- RMSNorm keeps its input in the input dtype and one fp32 number per row, instead of the fp32
  copy of the input that autograd keeps;
- SwiGLU keeps gate and up only, and recomputes the sigmoid in backward instead of keeping
  silu(gate) as well.

This module imports torch at the top (the Functions subclass it), so import it only where torch
is needed.
"""

from __future__ import annotations

import types
import warnings
from typing import Any

import torch
import torch.nn.functional as F

from trainer.engine.data import IGNORE_INDEX

# Keep one chunk's fp32 logits near 256 MiB (2**26 fp32 numbers): large enough that the chunk
# matmul keeps the GPU busy, small next to the 1 GiB that the whole 2k x 128k fp32 logits take.
LOGITS_CHUNK_ELEMENTS = 2**26
# Chunks of a multiple of 64 rows keep the matmul tiles full.
CHUNK_ROW_MULTIPLE = 64

TRAINABLE_WEIGHT_ERROR = (
    "chunked_cross_entropy is for a frozen output layer: its gradient for the weight is never "
    "computed, so weight.requires_grad must be False"
)

# RMSNorm classes whose forward is exactly Llama's `weight * normalise(x).to(x.dtype)`.
# Gemma's (and others') `(1 + weight)` variants are deliberately absent.
LLAMA_RMSNORM_CLASSES = frozenset(
    {"LlamaRMSNorm", "MistralRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm"}
)
# MLP classes whose forward is `down_proj(act_fn(gate_proj(x)) * up_proj(x))`.
GATED_MLP_CLASSES = frozenset({"LlamaMLP", "MistralMLP", "Qwen2MLP", "Qwen3MLP"})
SILU_ACTIVATIONS = ("silu", "swish")


def _autocast_off(tensor: torch.Tensor):
    """Run the Function's ops in the dtypes it chooses, not the ones autocast would."""
    return torch.autocast(device_type=tensor.device.type, enabled=False)


def default_chunk_tokens(vocab_size: int) -> int:
    """Rows per chunk so that a chunk of fp32 logits holds about LOGITS_CHUNK_ELEMENTS numbers
    (512 rows for a 128,256-word vocabulary: 250 MiB)."""
    rows = max(1, LOGITS_CHUNK_ELEMENTS // vocab_size)
    if rows >= CHUNK_ROW_MULTIPLE:
        rows -= rows % CHUNK_ROW_MULTIPLE
    return rows


class _ChunkedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, labels, chunk_tokens, ignore_index):
        want_grad = ctx.needs_input_grad[0]
        loss = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_hidden = torch.empty_like(hidden) if want_grad else None
        with _autocast_off(hidden):
            # Cast once per call rather than per chunk: the same peak memory, less work.
            weight = weight.to(hidden.dtype)
            for start in range(0, hidden.shape[0], chunk_tokens):
                rows = slice(start, start + chunk_tokens)
                targets = labels[rows]
                # F.cross_entropy is nll_loss(log_softmax(.)); spelt out so that the
                # log-probabilities can become the softmax in place for the gradient.
                log_probs = F.log_softmax((hidden[rows] @ weight.T).float(), dim=-1)
                loss += F.nll_loss(log_probs, targets, ignore_index=ignore_index, reduction="sum")
                if want_grad:
                    grad_logits = log_probs.exp_()
                    # softmax - one-hot, then zero for ignored rows; no indexing by a mask,
                    # which would make a CUDA step wait for the GPU once per chunk.
                    kept = (targets != ignore_index).unsqueeze(1)
                    columns = torch.where(kept, targets.unsqueeze(1), 0)
                    grad_logits.scatter_add_(1, columns, -kept.to(grad_logits.dtype))
                    grad_logits.masked_fill_(~kept, 0.0)
                    grad_hidden[rows] = grad_logits.to(hidden.dtype) @ weight
                del log_probs
        if want_grad:
            ctx.save_for_backward(grad_hidden)
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        (grad_hidden,) = ctx.saved_tensors
        return grad_hidden * grad_output, None, None, None, None


def chunked_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    chunk_tokens: int | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Summed cross-entropy of the logits ``hidden @ weight.T`` against ``labels``.

    Equals ``F.cross_entropy((hidden @ weight.T).float(), labels, ignore_index=ignore_index,
    reduction="sum")``, with the matmul in ``hidden.dtype`` whether or not autocast is on, but
    holds only ``chunk_tokens`` rows of logits at a time (default: ``default_chunk_tokens``).
    hidden: (N, H); weight: (V, H), frozen, any float dtype; labels: (N,) int64.
    """
    if weight.requires_grad:
        raise ValueError(TRAINABLE_WEIGHT_ERROR)
    if hidden.dim() != 2 or labels.shape != hidden.shape[:1]:
        raise ValueError(
            f"expected hidden (N, H) and labels (N,), got {tuple(hidden.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if chunk_tokens is None:
        chunk_tokens = default_chunk_tokens(weight.shape[0])
    elif chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be at least 1, got {chunk_tokens}")
    return _ChunkedCrossEntropy.apply(hidden, weight, labels, chunk_tokens, ignore_index)


def causal_lm_loss(
    hidden_states: torch.Tensor, lm_head_weight: torch.Tensor, labels: torch.Tensor, **kw: Any
) -> torch.Tensor:
    """Summed next-token cross-entropy: position t of (B, T, H) hidden states predicts label
    t + 1 of (B, T) labels. Keyword arguments go to ``chunked_cross_entropy``."""
    hidden = hidden_states[:, :-1].reshape(-1, hidden_states.shape[-1])
    return chunked_cross_entropy(hidden, lm_head_weight, labels[:, 1:].reshape(-1), **kw)


class _FusedOnGpu:
    """A pure tensor function, compiled by torch.compile into one or two kernels on a GPU.

    Eager on CPU (inductor there needs a C++ compiler the machine may lack) and wherever the
    compilation fails; the failure is reported once and training goes on eagerly.
    """

    def __init__(self, function: Any) -> None:
        self.function = function
        self.compiled: Any = None
        self.failed = False

    def __call__(self, *args: Any) -> Any:
        if self.failed or args[0].device.type != "cuda":
            return self.function(*args)
        if self.compiled is None:
            self.compiled = torch.compile(self.function, dynamic=True)
        try:
            return self.compiled(*args)
        except torch.OutOfMemoryError:
            raise
        except Exception as error:  # any compiler failure: fall back, once
            self.failed = True
            warnings.warn(
                f"torch.compile failed for {self.function.__name__} ({error!r:.200}); "
                "running it uncompiled",
                RuntimeWarning,
                stacklevel=2,
            )
            return self.function(*args)


def _rms_norm_math(hidden, weight, eps):
    hidden32 = hidden.float()
    rstd = torch.rsqrt(hidden32.pow(2).mean(-1, keepdim=True) + eps)
    return weight * (hidden32 * rstd).to(hidden.dtype), rstd


def _rms_norm_input_grad(grad_output, hidden, rstd, weight):
    # y = x * rstd:  dL/dx = rstd * (g - y * mean(g * y)), with g = dL/dy.
    normed = hidden.float() * rstd
    grad_normed = grad_output.float() * weight.float()
    projection = (grad_normed * normed).mean(-1, keepdim=True)
    return ((grad_normed - normed * projection) * rstd).to(hidden.dtype)


def _swiglu_math(gate, up):
    return F.silu(gate) * up


def _swiglu_grads(grad_output, gate, up):
    dtype = torch.promote_types(gate.dtype, torch.float32)
    grad, gate_c = grad_output.to(dtype), gate.to(dtype)
    sigmoid = torch.sigmoid(gate_c)
    grad_up = (gate_c * sigmoid * grad).to(up.dtype)
    # silu'(x) = sigmoid(x) * (1 + x * (1 - sigmoid(x)))
    dsilu = sigmoid * (1.0 + gate_c * (1.0 - sigmoid))
    grad_gate = (dsilu * grad * up.to(dtype)).to(gate.dtype)
    return grad_gate, grad_up


_rms_norm_fused = _FusedOnGpu(_rms_norm_math)
_rms_norm_input_grad_fused = _FusedOnGpu(_rms_norm_input_grad)
_swiglu_fused = _FusedOnGpu(_swiglu_math)
_swiglu_grads_fused = _FusedOnGpu(_swiglu_grads)


class _RMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, eps):
        with _autocast_off(hidden):
            output, rstd = _rms_norm_fused(hidden, weight, eps)
        ctx.save_for_backward(hidden, rstd, weight)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        hidden, rstd, weight = ctx.saved_tensors
        grad_hidden = grad_weight = None
        if ctx.needs_input_grad[1]:
            # What the forward multiplied the weight by, rounded as it was there.
            rounded = (hidden.float() * rstd).to(hidden.dtype).float()
            grad_weight = (grad_output.float() * rounded).sum_to_size(weight.shape)
            grad_weight = grad_weight.to(weight.dtype)
            del rounded
        if ctx.needs_input_grad[0]:
            grad_hidden = _rms_norm_input_grad_fused(grad_output, hidden, rstd, weight)
        return grad_hidden, grad_weight, None


def rms_norm(hidden: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """LlamaRMSNorm's forward (bit for bit on CPU); backward in fp32 from the input and one
    fp32 reciprocal RMS per row."""
    return _RMSNorm.apply(hidden, weight, eps)


class _SwiGLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gate, up):
        with _autocast_off(gate):
            output = _swiglu_fused(gate, up)
        ctx.save_for_backward(gate, up)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        gate, up = ctx.saved_tensors
        grad_gate, grad_up = _swiglu_grads_fused(grad_output, gate, up)
        return (
            grad_gate if ctx.needs_input_grad[0] else None,
            grad_up if ctx.needs_input_grad[1] else None,
        )


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """``F.silu(gate) * up``, saving only gate and up for backward."""
    return _SwiGLU.apply(gate, up)


def _fused_lora_forward(self, x, *args, **kwargs):
    """base(x) + scaling · B(A(dropout(x))) as one matrix product accumulating into base(x).

    peft's forward copies base(x) (a defensive clone), scales the adapter's output and adds
    it: three passes over a (tokens × out_features) tensor each way, for every adapted layer.
    ``addmm`` adds the low-rank product into the base output in the same kernel.
    """
    if self.disable_adapters or self.merged or args or kwargs or len(self.active_adapters) != 1:
        return type(self).forward(self, x, *args, **kwargs)
    name = self.active_adapters[0]
    if name not in self.lora_A or name in self.lora_variant:
        return type(self).forward(self, x, *args, **kwargs)
    result = self.base_layer(x)
    a, b = self.lora_A[name].weight, self.lora_B[name].weight
    down = F.linear(self.lora_dropout[name](x).to(result.dtype), a.to(result.dtype))
    fused = torch.addmm(
        result.reshape(-1, result.shape[-1]),
        down.reshape(-1, down.shape[-1]),
        b.to(result.dtype).t(),
        alpha=self.scaling[name],
    )
    return fused.view(result.shape)


def fuse_lora_forward(model: Any) -> int:
    """Route every adapted (peft LoRA) linear layer of ``model`` through ``addmm``; returns
    how many. Only single-adapter, unmerged layers take the fused path; anything else (several
    adapters, a DoRA variant, disabled adapters) falls back to peft's own forward."""
    fused = 0
    for module in model.modules():
        if (
            hasattr(module, "lora_A")
            and hasattr(module, "base_layer")
            and "forward" not in vars(module)
        ):
            module.forward = types.MethodType(_fused_lora_forward, module)
            fused += 1
    return fused


def _rms_norm_forward(self, hidden_states):
    return rms_norm(hidden_states, self.weight, self.variance_epsilon)


def _swiglu_mlp_forward(self, x):
    return self.down_proj(swiglu(self.gate_proj(x), self.up_proj(x)))


def _is_silu_mlp(module: Any) -> bool:
    hidden_act = getattr(getattr(module, "config", None), "hidden_act", None)
    return type(module).__name__ in GATED_MLP_CLASSES and hidden_act in SILU_ACTIVATIONS


def patch_llama_modules(model: Any) -> int:
    """Route the Llama-formula RMSNorms and SiLU gated MLPs of ``model`` (a transformers model,
    peft-wrapped or not) through ``rms_norm`` and ``swiglu``; return how many modules changed.

    Only the instances' ``forward`` is replaced, so parameter names, state dicts and adapters
    are untouched; a module already given its own forward is left alone, so patching twice
    changes nothing the second time.
    """
    patched = 0
    for module in model.modules():
        if "forward" in vars(module):
            continue
        if type(module).__name__ in LLAMA_RMSNORM_CLASSES:
            module.forward = types.MethodType(_rms_norm_forward, module)
        elif _is_silu_mlp(module):
            module.forward = types.MethodType(_swiglu_mlp_forward, module)
        else:
            continue
        patched += 1
    return patched
