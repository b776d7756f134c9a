"""Batched generation for a base model with or without its LoRA adapter. Stores nothing.

The model is loaded once; base outputs come from the same loaded weights with the adapter
switched off (peft's ``disable_adapter()``), so base and adapter share one chat template, one
tokenizer and one set of decoding settings. Prompts are sorted by length so each batch carries
little padding, padded on the left (decoder-only models continue from the last position), and
answers are handed back in the caller's order.

Device and precision: the NF4 recipe, the compute dtype and the tokenizer checks are training's
own (``engine/modeling.py``), so an adapter is evaluated in the precision it was trained in. On
CUDA the base is loaded in NF4 like in training. On CPU it is loaded unquantised in float32: NF4
is only a little faster there, and only through bitsandbytes' bf16 inference kernel, which
exists on some CPUs and not on others (benchmarks/results/generation_cpu.md has the figures). A
gain that small is not worth outputs that change with the CPU's instruction set: float32 gives
the same texts on every machine. ``quantization="nf4"`` is there for those who want the weights
the adapter was trained against. A base whose NF4 weights do not fit the device (a 70B model on
a 24 GB card) is loaded as training loads it, layer by layer, and every layer streams its
weights from CPU memory for each forward (``streaming.py``): slow, since each new token copies
the whole model's weights, but it runs.

No Django imports; torch, transformers and peft are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainer.engine import modeling
from trainer.engine.data import Message, sorted_batches

BAD_MAX_NEW_TOKENS = "max_new_tokens must be at least 1, got {value}"
BAD_TEMPERATURE = "temperature must be 0 (greedy) or positive, got {value}"
BAD_TOP_P = "top_p must be in (0, 1], got {value}"
BAD_QUANTIZATION = "quantization must be one of auto, nf4, none; got {value!r}"
BAD_DTYPE = "dtype must be one of float32, bfloat16, float16; got {value!r}"
NO_ADAPTER_LOADED = "use_adapter=True but the model was loaded without an adapter"
QUANTIZATIONS = ("auto", "nf4", "none")
DTYPES = ("float32", "bfloat16", "float16")


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

    def as_dict(self) -> dict[str, str]:
        return {"quantization": self.quantization, "dtype": self.dtype}


@dataclass
class LoadedModel:
    """A base model (with its adapter attached when one was given) ready to generate."""

    model: Any
    tokenizer: Any
    precision: Precision
    has_adapter: bool

    @property
    def device(self) -> str:
        return self.precision.device


def resolve_precision(
    device: str | None = None, quantization: str = "auto", dtype: str | None = None
) -> Precision:
    """Fill in the defaults: CUDA if there is one; NF4 on CUDA, unquantised on CPU (see the
    module docstring for why); the compute dtype training would use on that device."""
    import torch

    if quantization not in QUANTIZATIONS:
        raise ValueError(BAD_QUANTIZATION.format(value=quantization))
    if dtype is not None and dtype not in DTYPES:
        raise ValueError(BAD_DTYPE.format(value=dtype))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if quantization == "auto":
        quantization = "nf4" if device.startswith("cuda") else "none"
    dtype = dtype or str(modeling.compute_dtype(device)).removeprefix("torch.")
    return Precision(device, quantization, dtype)


def load_model(
    model_dir: str | Path,
    *,
    adapter_dir: str | Path | None = None,
    device: str | None = None,
    quantization: str = "auto",
    dtype: str | None = None,
) -> LoadedModel:
    """Load the base model once, with the LoRA adapter attached if ``adapter_dir`` is given.

    ``quantization="auto"`` means NF4 on CUDA and none on CPU (NF4 on CPU works through
    bitsandbytes, see the module docstring); ``dtype`` (float32, bfloat16, float16) is the
    compute dtype, by default training's (``modeling.compute_dtype``).
    """
    import torch
    from transformers import AutoModelForCausalLM

    precision = resolve_precision(device, quantization, dtype)
    torch_dtype = getattr(torch, precision.dtype)

    tokenizer = load_tokenizer(model_dir, adapter_dir)
    if precision.quantization == "nf4":
        model = modeling.load_nf4_base(model_dir, precision.device, torch_dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype)
        model.to(precision.device)
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
    batch_size: int = 8,
    progress: bool = False,
    on_batch: Callable[[list[int], list[GeneratedText]], None] | None = None,
) -> list[GeneratedText]:
    """Answer every conversation; results are in the order of ``conversations``.

    ``on_batch(indices, results)`` is called after each batch (indices into ``conversations``),
    so a caller can store results as they come and resume after an interruption.
    """
    import torch
    from tqdm import tqdm

    if use_adapter and not loaded.has_adapter:
        raise ValueError(NO_ADAPTER_LOADED)
    tokenizer, model = loaded.tokenizer, loaded.model
    texts = render_prompts(tokenizer, conversations)
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    batches = sorted_batches(lengths, batch_size)
    generation_config = _generation_config(loaded, decoding)
    stop_ids = _stop_token_ids(loaded)
    if decoding.seed is not None:
        torch.manual_seed(decoding.seed)

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
            encoded = tokenizer(
                [texts[i] for i in indices],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            ).to(loaded.device)
            started = time.perf_counter()
            sequences = model.generate(**encoded, generation_config=generation_config)
            elapsed_ms = (time.perf_counter() - started) * 1000
            new_tokens = sequences[:, encoded["input_ids"].shape[1] :].tolist()
            batch = [
                _decode(tokenizer, ids, stop_ids, elapsed_ms / len(indices)) for ids in new_tokens
            ]
            for i, item in zip(indices, batch, strict=True):
                results[i] = item
            if on_batch is not None:
                on_batch(indices, batch)
            bar.update(len(indices))
    return [item for item in results if item is not None]


def _generation_config(loaded: LoadedModel, decoding: DecodingConfig) -> Any:
    """Only the settings we choose: the model's own generation_config.json may carry sampling
    defaults or a repetition penalty, which would make the recorded settings incomplete."""
    from transformers import GenerationConfig

    tokenizer = loaded.tokenizer
    eos = sorted(_stop_token_ids(loaded))
    sampling = {} if decoding.greedy else {"temperature": decoding.temperature}
    if not decoding.greedy and decoding.top_p < 1:
        sampling["top_p"] = decoding.top_p
    return GenerationConfig(
        max_new_tokens=decoding.max_new_tokens,
        do_sample=not decoding.greedy,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        **sampling,
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
