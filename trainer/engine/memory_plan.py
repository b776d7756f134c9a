"""Choosing speed/memory trade-offs from the memory a device has, before the first step.

The fastest QLoRA step keeps every layer's activations for backward (no recomputation: about
4N instead of 6N FLOPs per token) and a bf16 copy of each dequantised weight (no dequantisation
on every pass; numerically the same). Both cost memory. ``plan_memory`` starts from the fastest
plan and gives up speed only where the estimate says the memory is not there, in this order:

1. drop the bf16 weight copies, layer by layer: each copy saves a dequantisation per pass;
2. recompute layers instead of keeping their activations: recomputing a layer costs one more
   forward through it, a little more time per byte saved than the copies;
3. keep the input embedding table in CPU memory (an untied table only): one lookup on the CPU
   and one small copy a step free its whole size (1 GiB for Llama-3.1-8B);
4. offload recomputed layers' inputs to CPU memory: two copies of a hidden-state tensor per
   layer and step for a few MiB each, so it comes after the table;
5. 8-bit AdamW states instead of fp32 ones (the only lever that changes the arithmetic);
6. AdamW in CPU memory: fp32 master weights and states there, the adapter in bf16 on the
   device (``host_optimizer.HostAdamW``; the arithmetic is fp32 AdamW's again);
7. stream the 4-bit weights of as few decoder layers as it takes from CPU memory
   (``streaming.py``): only where the model does not fit with every lever above, since every
   step then copies those layers' weights to the device twice (forward; recomputation and
   backward). The device holds ``STREAM_BUFFERS`` layers' weights instead of theirs, and a
   streamed layer recomputes from its input, kept on the device. Once layers stream, a few
   more of them cost less than levers 5 and 6 (a layer's copies mostly overlap compute; a CPU
   AdamW pass over a 70B adapter's 207 M weights does not), so the plan streams as many as it
   takes to keep fp32 AdamW on the device, and reaches for 5 and 6 only if that is not enough.

The sizes and timings behind this order (what a layer's copy and its activations weigh, what
each saves a step) are in benchmarks/results/qlora_gpu_2026-11-29.md.

Pure arithmetic, no torch: the estimates are checked against measured peaks in
benchmarks/qlora_gpu.py (estimate and measurement are both in its results).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

GIB = 1024**3
BF16 = 2
# Plan to this share of the memory there is: the allocator's fragmentation and cuBLAS
# workspaces take the rest.
HEADROOM = 0.88
# Output-layer logits are computed this many tokens at a time when memory is ample, and in
# smaller chunks when it is not (each chunk holds fp32 logits, their softmax and a bf16 copy).
LOSS_CHUNK_TOKENS = 1024
LEAN_LOSS_CHUNK_TOKENS = 128
LOSS_BYTES_PER_LOGIT = 4 + 4 + BF16
# Device buffers a streamed model's layers take turns in: one computing, one being copied.
STREAM_BUFFERS = 2


@dataclass(frozen=True)
class ModelShape:
    hidden: int
    intermediate: int
    layers: int
    kv_dim: int  # key/value width: kv_heads × head_dim
    vocab: int
    tied_embeddings: bool
    quantized_params_per_layer: int  # weights of the 4-bit linear layers of one decoder block
    largest_linear_params: int
    lora_params: int  # trainable adapter weights (fp32)
    lora_inputs_per_layer: int  # sum of the input widths of one block's adapted layers
    element_bytes: int = BF16  # of the compute dtype: activations and dequantised copies
    quantized_bytes_per_layer: int = 0  # one block's 4-bit weights and quantisation state

    @classmethod
    def from_config(cls, config: Any, **measured: int) -> ModelShape:
        """From a transformers config object (its attribute map gives GPT-2's ``n_embd`` as
        ``hidden_size`` and so on); widths a config leaves out take the usual defaults."""
        hidden, heads = config.hidden_size, config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or hidden // heads
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        return cls(
            hidden=hidden,
            intermediate=getattr(config, "intermediate_size", None) or 4 * hidden,
            layers=config.num_hidden_layers,
            kv_dim=kv_heads * head_dim,
            vocab=config.vocab_size,
            tied_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
            **measured,
        )

    def activation_bytes_per_token(self, *, dropout: bool, fused: bool) -> int:
        """What one decoder block keeps for backward, per token, when nothing is recomputed.

        bf16 tensors: the block input and the attention residual (RMSNorm inputs), both norm
        outputs, q and the attention output (flash attention keeps q, k, v, out), its copy
        before o_proj, k and v; gate, up and their product. LoRA dropout adds the dropped
        input and its mask for every adapted layer. Without the fused RMSNorm and SwiGLU the
        norms also keep fp32 copies of their inputs and SiLU its output.
        """
        h, i, e = self.hidden, self.intermediate, self.element_bytes
        per_token = e * (7 * h + 2 * self.kv_dim + 3 * i)
        if dropout:
            per_token += (e + 1) * self.lora_inputs_per_layer
        if not fused:
            per_token += 2 * 4 * h + e * i
        return per_token


@dataclass(frozen=True)
class MemoryPlan:
    layer_modes: tuple[str, ...]  # per decoder block: "keep", "recompute", "offload", "stream"
    cached_layers: int  # blocks (from the first) whose weights are also kept dequantised
    embeddings_on_cpu: bool
    optimizer: str  # "adamw", "adamw_8bit" or "adamw_host"
    loss_chunk_tokens: int
    budget_bytes: int
    estimated_peak_bytes: int

    @property
    def fits(self) -> bool:
        return self.estimated_peak_bytes <= self.budget_bytes

    def summary(self) -> dict[str, Any]:
        modes = ("keep", "recompute", "offload", "stream")
        counts = {mode: self.layer_modes.count(mode) for mode in modes}
        return {
            **{k: v for k, v in asdict(self).items() if k != "layer_modes"},
            "layers": counts,
            "budget_gib": round(self.budget_bytes / GIB, 2),
            "estimated_peak_gib": round(self.estimated_peak_bytes / GIB, 2),
        }


@dataclass(frozen=True)
class _Costs:
    """Bytes each lever decides, for one shape and micro-batch size."""

    fixed: int
    keep: int  # per kept layer
    recompute: int  # per recomputed layer (its input)
    cache: int  # per layer with a bf16 weight copy
    embeddings: int
    adam_fp32_extra: int  # fp32 AdamW states over 8-bit ones
    host_saving: int  # the optimizer in CPU memory, over 8-bit states on the device
    lean_loss_saving: int


def _costs(
    shape: ModelShape, tokens: int, loaded_bytes: int, dropout: bool, fused: bool, chunked: bool
) -> _Costs:
    per_token = shape.activation_bytes_per_token(dropout=dropout, fused=fused)
    params = shape.lora_params
    # Gradients (fp32), the autocast bf16 copies of the adapter weights, 8-bit AdamW states.
    adapters = 4 * params + BF16 * params + 2 * params
    # Backward through one block: its recomputed activations plus their gradients, and a
    # dequantised weight (two when both the weight and the activation gradients are live).
    e = shape.element_bytes
    transient = 2 * per_token * tokens + 2 * e * shape.largest_linear_params
    # The final norm's output and the gradient the fused loss keeps for it.
    head = 2 * e * shape.hidden * tokens
    # Logits of one chunk; of every token where the loss must take the model's own logits.
    rows, lean_rows = (LOSS_CHUNK_TOKENS, LEAN_LOSS_CHUNK_TOKENS) if chunked else (tokens, tokens)
    loss, lean_loss = _loss_bytes(shape, rows), _loss_bytes(shape, lean_rows)
    return _Costs(
        fixed=loaded_bytes + adapters + transient + head + loss,
        keep=per_token * tokens,
        recompute=e * shape.hidden * tokens,
        cache=e * shape.quantized_params_per_layer,
        embeddings=0 if shape.tied_embeddings else e * shape.vocab * shape.hidden,
        adam_fp32_extra=6 * params,
        # bf16 weights (half the fp32 ones loaded) and gradients, no autocast copies, no states.
        host_saving=(4 - BF16) * params + (4 - BF16) * params + BF16 * params + 2 * params,
        lean_loss_saving=loss - lean_loss,
    )


def _loss_bytes(shape: ModelShape, chunk_tokens: int) -> int:
    return chunk_tokens * shape.vocab * LOSS_BYTES_PER_LOGIT


def plan_memory(
    shape: ModelShape,
    *,
    tokens: int,
    loaded_bytes: int,
    budget_bytes: int,
    dropout: bool,
    fused: bool,
    chunked_loss: bool = True,
    checkpointing: str = "auto",
    can_use_host_memory: bool = True,
    host_layers: int = 0,
) -> MemoryPlan:
    """The fastest plan whose estimated peak fits ``budget_bytes``, or the leanest one.

    ``tokens`` is the largest micro-batch (batch size × longest sequence); ``loaded_bytes`` what
    the loaded model and its adapters already take on the device, less the 4-bit weights of
    ``host_layers`` layers that were loaded into CPU memory (a model too big to load whole).
    ``checkpointing`` "on" recomputes every layer and "off" none (the user's choice wins over
    the estimate); "auto" decides per layer. ``can_use_host_memory``: one process on a GPU may
    park layer inputs, the optimizer and layers' weights in CPU memory (their hand-made copies
    do not mix with DDP's gradient hooks).
    """
    options = (tokens, budget_bytes, dropout, fused, chunked_loss, checkpointing)
    layer_bytes = shape.quantized_bytes_per_layer
    whole = loaded_bytes + host_layers * layer_bytes  # every layer's weights on the device
    plan = _plan(shape, *options, can_use_host_memory, loaded=whole, streamed=0)
    if plan.fits or checkpointing == "off" or not (can_use_host_memory and layer_bytes):
        return plan
    leanest = plan
    for optimizer_levers in (False, True):
        for streamed in range(1, shape.layers + 1):
            loaded = whole - (streamed - min(streamed, STREAM_BUFFERS)) * layer_bytes
            plan = _plan(
                shape,
                *options,
                can_use_host_memory,
                loaded=loaded,
                streamed=streamed,
                optimizer_levers=optimizer_levers,
            )
            if plan.fits:
                return plan
            leanest = plan
    return leanest


def _plan(
    shape: ModelShape,
    tokens: int,
    budget_bytes: int,
    dropout: bool,
    fused: bool,
    chunked_loss: bool,
    checkpointing: str,
    can_use_host_memory: bool,
    *,
    loaded: int,
    streamed: int,
    optimizer_levers: bool = True,
) -> MemoryPlan:
    """The plan with the last ``streamed`` layers streamed and the levers 1-6 for the rest
    (1-4 only without ``optimizer_levers``)."""
    layers = shape.layers - streamed
    costs = _costs(shape, tokens, loaded, dropout, fused, chunked_loss)
    fixed = costs.fixed + costs.adam_fp32_extra + streamed * costs.recompute
    chunk, embeddings_on_cpu, optimizer = LOSS_CHUNK_TOKENS, False, "adamw"

    if checkpointing == "off":
        kept = layers
    elif checkpointing == "on":
        kept = 0
    else:
        spare = budget_bytes - fixed - layers * costs.recompute
        kept = max(0, min(layers, spare // max(1, costs.keep - costs.recompute)))
    activations = kept * costs.keep + (layers - kept) * costs.recompute
    offloaded = 0
    if checkpointing == "auto" and fixed + activations > budget_bytes:
        # Recomputing everything is not enough: shrink the loss chunks, move the embedding
        # table to CPU, then layer inputs, then the optimizer, until the estimate fits.
        fixed -= costs.lean_loss_saving
        chunk = LEAN_LOSS_CHUNK_TOKENS
        if fixed + activations > budget_bytes and costs.embeddings:
            embeddings_on_cpu = True
            fixed -= costs.embeddings
        if fixed + activations > budget_bytes and can_use_host_memory:
            excess = fixed + activations - budget_bytes
            offloaded = min(layers, -(-excess // max(1, costs.recompute)))
            activations -= offloaded * costs.recompute
        if fixed + activations > budget_bytes and optimizer_levers:
            optimizer = "adamw_8bit"
            fixed -= costs.adam_fp32_extra
        if fixed + activations > budget_bytes and optimizer_levers and can_use_host_memory:
            optimizer = "adamw_host"
            fixed -= costs.host_saving
    peak = fixed + activations
    # Memory the levers above freed beyond the need goes back to the loss: larger chunks are
    # fewer, fuller matrix products. Doubling a chunk adds one chunk's worth of logits.
    while (
        chunked_loss
        and chunk < LOSS_CHUNK_TOKENS
        and peak + _loss_bytes(shape, chunk) <= budget_bytes
    ):
        peak += _loss_bytes(shape, chunk)
        chunk *= 2
    cached = max(0, min(layers, (budget_bytes - peak) // max(1, costs.cache)))
    peak += cached * costs.cache
    modes = ("keep",) * kept + ("recompute",) * (layers - kept - offloaded)
    modes += ("offload",) * offloaded + ("stream",) * streamed
    return MemoryPlan(
        layer_modes=modes,
        cached_layers=cached,
        embeddings_on_cpu=embeddings_on_cpu,
        optimizer=optimizer,
        loss_chunk_tokens=chunk,
        budget_bytes=budget_bytes,
        estimated_peak_bytes=peak,
    )
