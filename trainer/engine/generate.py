"""Batched generation for a base model with or without its LoRA adapter. Stores nothing.

The model is loaded once; base outputs come from the same loaded weights with the adapter
switched off, so base and adapter share one chat template, one tokenizer and one set of decoding
settings. Prompts are sorted by length so each batch carries little padding, padded on the left
(decoder-only models continue from the last position), and answers are handed back in the
caller's order.

Two paths, chosen by ``resolve_precision`` and recorded in ``Precision``:

- the fast path (``lora="merged"``; the CUDA default whenever the unquantised weights fit, see
  ``generation_plan``): the base in bf16, the adapter folded into its weights for adapter outputs
  (peft ``merge_adapter``), a static KV cache, which on CUDA transformers decodes through
  ``torch.compile`` with CUDA graphs, and a batch sized from the free memory. A decoding step is
  bound by reading the weights, so it costs about as much for 64 sequences as for 8; the last
  batch is filled up to the batch size with copies of a prompt (answers thrown away) so that
  every batch has the shape the compiled step was recorded for.
- the plain path: the adapter's product added beside each base layer (peft's LoRA layers), its
  layers bypassed for base outputs (``disable_adapter()``), a dynamic cache, batches of
  ``DEFAULT_BATCH_SIZE``. On CUDA it loads the base in NF4 like training, when the bf16 weights
  do not fit; on CPU it is the default, unquantised in float32 (below).

Merging and unmerging in bf16 is not exact: W + BA − BA rounds twice. Base outputs must come
from the base's own weights, so before the adapter is merged the weights it changes are copied
to host memory, and asking for base outputs afterwards puts that copy back (after peft's
``unmerge_adapter``, which resets its bookkeeping). In the usual order, base first, the copy is
made once and never read back; base outputs never see a merged weight.

Device and precision: the NF4 recipe, the compute dtype and the tokenizer checks are training's
own (``engine/modeling.py``). The fast path runs the adapter on the bf16 weights its NF4 base was
quantised from, as a QLoRA adapter is usually served (merged into the bf16 base);
``quantization="nf4"`` keeps the weights it was trained against. On CPU the base is loaded
unquantised in float32: NF4 is only a little faster there, and only through bitsandbytes' bf16
inference kernel, which exists on some CPUs and not on others
(benchmarks/results/generation_cpu.md has the figures). A gain that small is not worth outputs
that change with the CPU's instruction set: float32 gives the same texts on every machine.
A base whose NF4 weights do not fit the device (a 70B model on a 24 GB card) is loaded as training
loads it, layer by layer, and every layer streams its weights from CPU memory for each forward
(``streaming.py``): slow, since each new token copies the whole model's weights, but it runs.

No Django imports; torch, transformers and peft are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainer.engine import generation_plan, modeling
from trainer.engine.data import Message, sorted_batches

BAD_MAX_NEW_TOKENS = "max_new_tokens must be at least 1, got {value}"
BAD_TEMPERATURE = "temperature must be 0 (greedy) or positive, got {value}"
BAD_TOP_P = "top_p must be in (0, 1], got {value}"
BAD_QUANTIZATION = "quantization must be one of auto, nf4, none; got {value!r}"
BAD_DTYPE = "dtype must be one of float32, bfloat16, float16; got {value!r}"
BAD_LORA = "lora must be one of auto, merged, separate; got {value!r}"
MERGED_NF4 = "an adapter cannot be merged into NF4 weights (it would be rounded away)"
NO_ADAPTER_LOADED = "use_adapter=True but the model was loaded without an adapter"
QUANTIZATIONS = ("auto", "nf4", "none")
DTYPES = ("float32", "bfloat16", "float16")
LORA_MODES = ("auto", "merged", "separate")
DEFAULT_BATCH_SIZE = 8  # the plain path's; the fast path sizes its batches from free memory


@dataclass(frozen=True)
class DecodingConfig:
    """Decoding settings, identical for every system compared. Greedy when temperature is 0."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(BAD_MAX_NEW_TOKENS.format(value=self.max_new_tokens))
        if self.temperature < 0:
            raise ValueError(BAD_TEMPERATURE.format(value=self.temperature))
        if not 0 < self.top_p <= 1:
            raise ValueError(BAD_TOP_P.format(value=self.top_p))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GeneratedText:
    text: str
    token_count: int
    latency_ms: float  # the batch's wall time divided by its size (amortised per item)


@dataclass(frozen=True)
class Precision:
    """Where and in which number format the base model runs: part of what produced an output."""

    device: str
    quantization: str  # "nf4" or "none"
    dtype: str  # compute dtype: float32, bfloat16 or float16
    # "merged": the fast path, adapter folded into the weights (see the module docstring);
    # "separate": the plain path, the adapter's product added beside each base layer.
    lora: str = "separate"

    @property
    def merged(self) -> bool:
        return self.lora == "merged"

    def as_dict(self) -> dict[str, str]:
        record = {"quantization": self.quantization, "dtype": self.dtype}
        if self.merged:  # records made before the fast path existed say nothing: separate
            record["lora"] = self.lora
        return record


@dataclass
class LoadedModel:
    """A base model (with its adapter attached when one was given) ready to generate."""

    model: Any
    tokenizer: Any
    precision: Precision
    has_adapter: bool
    # While the adapter is merged (fast path): the exact base values of the parameters the merge
    # changed, in host memory, to put back for base outputs.
    saved_base: list[Any] | None = None

    @property
    def device(self) -> str:
        return self.precision.device


def resolve_precision(
    device: str | None = None,
    quantization: str = "auto",
    dtype: str | None = None,
    *,
    lora: str = "auto",
    model_dir: str | Path | None = None,
) -> Precision:
    """Fill in the defaults: CUDA if there is one; the compute dtype training would use there.

    ``quantization="auto"``: on CUDA unquantised when the model in ``model_dir`` fits in the
    free memory with room for a batch (``generation_plan.unquantised_fits``), else NF4 (also
    when no ``model_dir`` is given); unquantised on CPU (see the module docstring).
    ``lora="auto"``: merged (the fast path) on CUDA when unquantised, separate otherwise.
    """
    import torch

    if quantization not in QUANTIZATIONS:
        raise ValueError(BAD_QUANTIZATION.format(value=quantization))
    if dtype is not None and dtype not in DTYPES:
        raise ValueError(BAD_DTYPE.format(value=dtype))
    if lora not in LORA_MODES:
        raise ValueError(BAD_LORA.format(value=lora))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or str(modeling.compute_dtype(device)).removeprefix("torch.")
    cuda = device.startswith("cuda")
    if quantization == "auto":
        quantization = "none" if not cuda or _unquantised_fits(model_dir, device, dtype) else "nf4"
    if lora == "auto":
        lora = "merged" if cuda and quantization == "none" else "separate"
    if lora == "merged" and quantization == "nf4":
        raise ValueError(MERGED_NF4)
    return Precision(device, quantization, dtype, lora)


def _unquantised_fits(model_dir: str | Path | None, device: str, dtype: str) -> bool:
    import torch

    if model_dir is None:
        return False
    element_bytes = getattr(torch, dtype).itemsize
    footprint = generation_plan.model_footprint(model_dir, element_bytes=element_bytes)
    return generation_plan.unquantised_fits(footprint, modeling.memory_budget(device))


def load_model(
    model_dir: str | Path,
    *,
    adapter_dir: str | Path | None = None,
    device: str | None = None,
    quantization: str = "auto",
    dtype: str | None = None,
    lora: str = "auto",
) -> LoadedModel:
    """Load the base model once, with the LoRA adapter attached if ``adapter_dir`` is given.

    ``quantization``, ``dtype`` (float32, bfloat16, float16: the compute dtype, by default
    training's) and ``lora`` as ``resolve_precision`` fills them in.
    """
    import torch
    from transformers import AutoModelForCausalLM

    precision = resolve_precision(device, quantization, dtype, lora=lora, model_dir=model_dir)
    torch_dtype = getattr(torch, precision.dtype)

    tokenizer = load_tokenizer(model_dir, adapter_dir)
    if precision.quantization == "nf4":
        model = modeling.load_nf4_base(model_dir, precision.device, torch_dtype)
    else:
        # Straight onto the device: an 8B model in bf16 is 16 GB that need not pass through
        # host memory.
        model = AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=torch_dtype, device_map={"": precision.device}
        )
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=False)
    stream_parked_layers(model, precision.device)
    model.eval()  # dropout off: greedy outputs must not depend on chance
    return LoadedModel(
        model=model, tokenizer=tokenizer, precision=precision, has_adapter=adapter_dir is not None
    )


def stream_parked_layers(model: Any, device: str) -> None:
    """A base too big for the device came with its layers in CPU memory: every layer streams
    its weights in for each forward (each new token passes every layer once), the adapter
    stays on the device."""
    from trainer.engine import activations, streaming

    if not any(streaming.is_parked(module) for module in model.modules()):
        return
    streaming.gather_parameters(model, device)
    layers = activations.decoder_layers(model)
    activations.apply_layer_modes(layers, ["stream"] * len(layers), device)


def load_tokenizer(model_dir: str | Path, adapter_dir: str | Path | None = None) -> Any:
    """The adapter's tokenizer when the trainer saved one beside it (it carries the chat template
    used in training), else the base model's; checked as training checks it, padded on the left."""
    source = model_dir
    if adapter_dir is not None and (Path(adapter_dir) / "tokenizer_config.json").is_file():
        source = adapter_dir
    tokenizer = modeling.load_tokenizer(source)
    tokenizer.padding_side = "left"
    return tokenizer


def render_prompts(tokenizer: Any, conversations: Sequence[Sequence[Message]]) -> list[str]:
    """Each conversation through the chat template, ending with the assistant's turn opener."""
    return [
        tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        for messages in conversations
    ]


def generate(
    loaded: LoadedModel,
    conversations: Sequence[Sequence[Message]],
    *,
    decoding: DecodingConfig,
    use_adapter: bool,
    batch_size: int | None = None,
    compiled: bool = True,
    progress: bool = False,
    on_batch: Callable[[list[int], list[GeneratedText]], None] | None = None,
) -> list[GeneratedText]:
    """Answer every conversation; results are in the order of ``conversations``.

    ``batch_size`` None: from the free memory on the fast path, ``DEFAULT_BATCH_SIZE`` on the
    plain one. ``compiled=False`` runs the fast path's static-cache step eagerly: compiling
    costs time once per shape, which few prompts may not earn back (benchmarks/generation_gpu.py
    measures both). ``on_batch(indices, results)`` is called after each batch (indices into
    ``conversations``), so a caller can store results as they come and resume after an
    interruption.
    """
    import torch
    from tqdm import tqdm

    if use_adapter and not loaded.has_adapter:
        raise ValueError(NO_ADAPTER_LOADED)
    if not conversations:
        return []
    tokenizer, model = loaded.tokenizer, loaded.model
    texts = render_prompts(tokenizer, conversations)
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    fast = loaded.precision.merged
    if batch_size is None:
        batch_size = _fast_batch_size(loaded, lengths, decoding) if fast else DEFAULT_BATCH_SIZE
    batch_size = min(batch_size, len(texts))  # the fast path fills batches up to this size
    batches = sorted_batches(lengths, batch_size)
    # One cache length for the whole call, so every batch has the shape the compiled step knows.
    cache_tokens = max(lengths) + decoding.max_new_tokens if fast else None
    generation_config = _generation_config(loaded, decoding, cache_tokens, compiled=compiled)
    stop_ids = _stop_token_ids(loaded)
    if decoding.seed is not None:
        torch.manual_seed(decoding.seed)
    if fast and loaded.has_adapter:
        _select_weights(loaded, use_adapter)

    results: list[GeneratedText | None] = [None] * len(texts)
    # Base outputs come from the same loaded weights with the LoRA layers bypassed.
    switch = (
        model.disable_adapter()
        if loaded.has_adapter and not use_adapter
        else contextlib.nullcontext()
    )
    bar = tqdm(
        total=len(texts),
        unit="prompt",
        desc="adapter" if use_adapter else "base",
        disable=not progress,
        file=sys.stderr,
    )
    with bar, torch.inference_mode(), switch:
        for indices in batches:
            # Fast path: the last batch filled up with copies of its last prompt (answers dropped).
            rows = indices + indices[-1:] * (batch_size - len(indices)) if fast else indices
            encoded = tokenizer(
                [texts[i] for i in rows],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            ).to(loaded.device)
            started = time.perf_counter()
            sequences = _generate_batch(model, encoded, generation_config)
            elapsed_ms = (time.perf_counter() - started) * 1000
            new_tokens = sequences[: len(indices), encoded["input_ids"].shape[1] :].tolist()
            batch = [
                _decode(tokenizer, ids, stop_ids, elapsed_ms / len(indices)) for ids in new_tokens
            ]
            for i, item in zip(indices, batch, strict=True):
                results[i] = item
            if on_batch is not None:
                on_batch(indices, batch)
            bar.update(len(indices))
    return [item for item in results if item is not None]


def _generate_batch(model: Any, encoded: Any, generation_config: Any) -> Any:
    """One batch through ``model.generate``. Where compiling the static-cache step fails (a
    compiler or CUDA-graph error on this card and torch), the call is made again uncompiled
    and the rest of the run stays uncompiled, with a warning: slower answers, not a failed
    run. The same call failing uncompiled raises as before."""
    import torch

    try:
        return model.generate(**encoded, generation_config=generation_config)
    except torch.OutOfMemoryError:
        raise
    except Exception as error:  # any compiler failure: fall back, once
        if generation_config.cache_implementation != "static" or generation_config.disable_compile:
            raise
        warnings.warn(
            f"compiled decoding failed ({error!r:.200}); decoding uncompiled",
            RuntimeWarning,
            stacklevel=2,
        )
        generation_config.disable_compile = True
        return model.generate(**encoded, generation_config=generation_config)


def _fast_batch_size(loaded: LoadedModel, lengths: list[int], decoding: DecodingConfig) -> int:
    """The batch the memory left beside the loaded weights holds, for the longest prompt."""
    import torch

    model, device = loaded.model, loaded.device
    footprint = generation_plan.footprint_from_config(
        model.config.get_text_config(),
        parameters=sum(p.numel() for p in model.parameters()),
        element_bytes=getattr(torch, loaded.precision.dtype).itemsize,
    )
    return generation_plan.batch_size_for(
        footprint,
        free_bytes=modeling.memory_budget(device) - modeling.allocated_bytes(device),
        prompt_tokens=max(lengths),
        new_tokens=decoding.max_new_tokens,
        prompts=len(lengths),
    )


def _select_weights(loaded: LoadedModel, use_adapter: bool) -> None:
    """Fast path: the adapter merged into the weights for adapter outputs, the exact base
    weights back for base outputs (why a copy: see the module docstring)."""
    import torch

    model = loaded.model
    with torch.no_grad():
        if use_adapter and loaded.saved_base is None:
            loaded.saved_base = [p.detach().to("cpu", copy=True) for p in _merged_params(model)]
            model.merge_adapter()
        elif not use_adapter and loaded.saved_base is not None:
            model.unmerge_adapter()
            for param, saved in zip(_merged_params(model), loaded.saved_base, strict=True):
                param.copy_(saved)
            loaded.saved_base = None


def _merged_params(model: Any) -> list[Any]:
    """The parameters a merge changes: those of every LoRA layer's base layer."""
    from peft.tuners.lora import LoraLayer

    return [
        param
        for module in model.modules()
        if isinstance(module, LoraLayer)
        for param in module.get_base_layer().parameters()
    ]


def _generation_config(
    loaded: LoadedModel,
    decoding: DecodingConfig,
    cache_tokens: int | None = None,
    *,
    compiled: bool = True,
) -> Any:
    """Only the settings we choose: the model's own generation_config.json may carry sampling
    defaults or a repetition penalty, which would make the recorded settings incomplete.
    ``cache_tokens``: a static KV cache that long, whose step transformers compiles on CUDA
    unless ``compiled`` is False."""
    from transformers import GenerationConfig

    tokenizer = loaded.tokenizer
    eos = sorted(_stop_token_ids(loaded))
    options = {} if decoding.greedy else {"temperature": decoding.temperature}
    if not decoding.greedy and decoding.top_p < 1:
        options["top_p"] = decoding.top_p
    if cache_tokens is not None:
        options.update(cache_implementation="static", max_cache_len=cache_tokens)
        options["disable_compile"] = not compiled
    return GenerationConfig(
        max_new_tokens=decoding.max_new_tokens,
        do_sample=not decoding.greedy,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        **options,
    )


def _stop_token_ids(loaded: LoadedModel) -> set[int]:
    ids = {loaded.tokenizer.eos_token_id}
    configured = getattr(loaded.model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    return {i for i in ids if i is not None}


def _decode(tokenizer: Any, ids: list[int], stop_ids: set[int], latency_ms: float) -> GeneratedText:
    """The answer up to (not including) the first stop token; what follows it is padding."""
    count = next((n for n, token in enumerate(ids) if token in stop_ids), len(ids))
    text = tokenizer.decode(ids[:count], skip_special_tokens=True).strip()
    return GeneratedText(text=text, token_count=count, latency_ms=latency_ms)
