"""How each decoder layer keeps its activations for backward, chosen per layer.

Three modes, from fastest to leanest on accelerator memory:

- ``"keep"``: plain autograd. Every intermediate the layer's backward needs (attention and MLP
  inputs, norms, LoRA inputs, dropout masks...) stays on the device until backward: the most
  memory, no extra compute.
- ``"recompute"``: activation checkpointing (``torch.utils.checkpoint``, non-reentrant). Only
  the layer's inputs stay on the device; backward runs the layer's forward once more, about a
  third more compute for the layer.
- ``"offload"``: like recompute, but the layer's input hidden states are copied to CPU memory
  (pinned, asynchronously, on CUDA) during forward and back during backward, so the device holds
  nothing for the layer between the two. Costs the recompute plus two host-device copies of one
  hidden-state tensor, and pinned host memory of that size per layer. It is a re-entrant
  backward (``torch.autograd.backward`` inside a ``torch.autograd.Function``), which
  DistributedDataParallel supports only with ``static_graph=True``: use it in a single process.
- ``"stream"``: the layer's 4-bit weights live in CPU memory and are copied to the device for
  its forward and once more for its backward (``streaming.LayerStreamer``, which prefetches the
  next layer on a side stream). Its input stays on the device; backward replays the layer as
  offload does, under the same single copy of its weights as the backward through it. Outside
  training (validation, generation) a streamed layer still fetches its weights to run.

We wrap the layers ourselves rather than use transformers' gradient-checkpointing switches,
whose API differs between transformers versions. The wrapper is an instance attribute
``forward``, so module names and state_dict keys, by which peft saves adapters, do not change.
It acts only in training mode with grad enabled; validation and generation run the layer as is
(a streamed one with its weights fetched). Leave transformers' own gradient checkpointing off
when using these modes, or layers are checkpointed twice. Recompute, offload and stream replay
the layer in backward, so they drop any KV cache passed to the layer, as transformers' own
checkpointing does.

This module imports torch: import it inside the functions that train, as the rest of the engine
imports torch, so that the web process never loads it.
"""

from __future__ import annotations

from contextlib import ExitStack, nullcontext
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from trainer.engine import streaming
from trainer.engine.streaming import LayerStreamer

LAYER_MODES = ("keep", "recompute", "offload", "stream")
# The KV cache's keyword in transformers 5, and in older versions.
CACHE_ARGUMENTS = ("cache", "past_key_values", "past_key_value", "layer_past")

NO_LAYERS = "found no decoder layers: no nn.ModuleList of {count} modules of one class in {name}"
MODE_COUNT = "got {modes} modes for {layers} layers"
UNKNOWN_MODE = "unknown layer mode {mode!r}; expected one of " + ", ".join(LAYER_MODES)
NO_HIDDEN_STATES = "offload needs the hidden states as first positional argument or keyword"
GRAD_ARGUMENT = (
    "offload treats arguments other than the hidden states as constants, "
    "but argument {name!r} requires grad"
)


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The repeated decoder blocks of a causal LM, peft-wrapped or not.

    The first ``nn.ModuleList`` of ``num_hidden_layers`` modules all of one class: in Llama,
    Mistral and Qwen that is ``model.layers``, found whatever peft or a task head puts above it.
    """
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "get_text_config"):
        config = config.get_text_config()
    count = getattr(config, "num_hidden_layers", None)
    for module in model.modules():
        if (
            isinstance(module, nn.ModuleList)
            and len(module) == count
            and len({type(layer) for layer in module}) == 1
        ):
            return list(module)
    raise ValueError(NO_LAYERS.format(count=count, name=type(model).__name__))


def apply_layer_modes(
    layers: list[nn.Module], modes: list[str] | tuple[str, ...], device: Any = None
) -> LayerStreamer | None:
    """Give ``layers[i]`` the mode ``modes[i]``; a layer already wrapped is re-wrapped.

    Streamed layers share one ``LayerStreamer`` on ``device`` (by default where the first
    layer's norms and adapters are), which is returned; a layer whose 4-bit weights are in CPU
    memory (``streaming.park``) and that does not stream gets them back on that device.
    """
    if len(layers) != len(modes):
        raise ValueError(MODE_COUNT.format(modes=len(modes), layers=len(layers)))
    for mode in modes:
        if mode not in LAYER_MODES:
            raise ValueError(UNKNOWN_MODE.format(mode=mode))
    if device is None:
        device = _home_device(layers[0])
    streamed = [layer for layer, mode in zip(layers, modes, strict=True) if mode == "stream"]
    streamer = streaming.LayerStreamer(streamed, device) if streamed else None
    for layer, mode in zip(layers, modes, strict=True):
        _unwrap(layer)
        if mode != "stream":
            streaming.unpark(layer, device)
        if mode != "keep":
            layer.forward = _wrapped_forward(layer, mode, streamer)
    return streamer


def _home_device(layer: nn.Module) -> torch.device:
    """Where a layer computes: the device of its floating-point parameters (norms, adapters;
    packed 4-bit weights are integers and may be parked in CPU memory)."""
    floating = (p.device for p in layer.parameters() if p.is_floating_point())
    return next(floating, torch.device("cpu"))


def layer_modes(layers: list[nn.Module]) -> list[str]:
    """The mode each layer has now."""
    return [getattr(layer.__dict__.get("forward"), "layer_mode", "keep") for layer in layers]


def layer_streamer(layers: list[nn.Module]) -> LayerStreamer | None:
    """The streamer the streamed layers share (its copy counters), or None."""
    streamers = (getattr(layer.__dict__.get("forward"), "streamer", None) for layer in layers)
    return next((streamer for streamer in streamers if streamer is not None), None)


def _unwrap(layer: nn.Module) -> None:
    """Put back the forward our wrapper replaced: the class's, or an instance forward set
    before ours (accelerate's device hooks set one)."""
    wrapper = layer.__dict__.get("forward")
    if not hasattr(wrapper, "layer_mode"):
        return
    if wrapper.inner_forward is None:
        del layer.forward
    else:
        layer.forward = wrapper.inner_forward


def _wrapped_forward(layer: nn.Module, mode: str, streamer: LayerStreamer | None) -> Any:
    inner_forward = layer.__dict__.get("forward")
    original = inner_forward or layer.forward  # without an instance one: the class's, bound
    streamer = streamer if mode == "stream" else None

    def forward(*args: Any, **kwargs: Any) -> Any:
        if not (layer.training and torch.is_grad_enabled()):
            if streamer is None:
                return original(*args, **kwargs)
            with streamer.resident(layer, cyclic=True):
                return original(*args, **kwargs)
        kwargs = _without_cache(kwargs)
        if mode == "recompute":
            return checkpoint(original, *args, use_reentrant=False, **kwargs)
        return _offloaded(layer, original, args, kwargs, streamer)

    forward.layer_mode = mode
    forward.inner_forward = inner_forward
    forward.streamer = streamer
    return forward


def _without_cache(kwargs: dict) -> dict:
    """A training step has no use for a KV cache, and the replay in backward would write the
    layer's keys and values into it a second time (transformers' own checkpointing drops it too)."""
    dropped = {name: None for name in CACHE_ARGUMENTS if kwargs.get(name) is not None}
    if kwargs.get("use_cache"):
        dropped["use_cache"] = False
    return {**kwargs, **dropped}


def _offloaded(
    layer: nn.Module, original: Any, args: tuple, kwargs: dict, streamer: LayerStreamer | None
) -> Any:
    """Run ``original`` through ``_OffloadedLayer`` with every argument but the hidden states
    held by a closure; rebuild a tuple output (older transformers) around its hidden states.
    With a ``streamer`` the input stays on the device and the weights come and go instead."""
    if args:
        hidden_states, constants = args[0], {"positional": args[1:], **kwargs}

        def run(hidden: torch.Tensor) -> Any:
            return original(hidden, *args[1:], **kwargs)

    elif "hidden_states" in kwargs:
        hidden_states = kwargs["hidden_states"]
        constants = {name: value for name, value in kwargs.items() if name != "hidden_states"}

        def run(hidden: torch.Tensor) -> Any:
            return original(**{**kwargs, "hidden_states": hidden})

    else:
        raise ValueError(NO_HIDDEN_STATES)
    for name, value in constants.items():
        _check_constant(value, name)
    # Without an input that requires grad autograd would skip the Function's backward, and the
    # LoRA weights inside would get no gradient (layer 0 reads a frozen embedding's output).
    needs_grad = any(parameter.requires_grad for parameter in layer.parameters())
    anchor = torch.empty(0, device=hidden_states.device, requires_grad=needs_grad)
    extra_outputs: list = []
    residency = None if streamer is None else partial(streamer.resident, layer)
    hidden_out = _OffloadedLayer.apply(run, extra_outputs, hidden_states, anchor, residency)
    return (hidden_out, *extra_outputs) if extra_outputs else hidden_out


def _check_constant(value: Any, name: str) -> None:
    """Offload's backward differentiates only through the hidden states: refuse, rather than
    silently drop, a gradient some other argument would need."""
    if isinstance(value, torch.Tensor) and value.requires_grad:
        raise ValueError(GRAD_ARGUMENT.format(name=name))
    if isinstance(value, (tuple, list)):
        for item in value:
            _check_constant(item, name)


class _OffloadedLayer(torch.autograd.Function):
    """Forward without a graph, the input parked on CPU; backward brings it back and replays
    the layer, with the same RNG and autocast state, to backpropagate through it.

    With ``residency`` (a streamed layer: ``residency(backward=...)`` is the context in which its
    weights are on the device) the input stays where it is, and forward, and the replay with
    the backward through it, each run inside that context."""

    @staticmethod
    def forward(
        ctx: Any, run: Any, extra_outputs: list, hidden: torch.Tensor, anchor: Any, residency: Any
    ) -> Any:
        on_cuda = hidden.device.type == "cuda"
        if residency is None:
            parked = torch.empty(hidden.shape, dtype=hidden.dtype, device="cpu", pin_memory=on_cuda)
            # Stream-ordered: the device memory of `hidden` is not reused before the copy ends.
            parked.copy_(hidden, non_blocking=on_cuda)
        else:
            parked = hidden.detach()
        ctx.run, ctx.parked, ctx.device, ctx.residency = run, parked, hidden.device, residency
        ctx.rng_devices = [hidden.device] if on_cuda else []
        ctx.cpu_rng = torch.get_rng_state()
        ctx.device_rng = torch.cuda.get_rng_state(hidden.device) if on_cuda else None
        ctx.autocast = _autocast_state(hidden.device.type)
        with torch.no_grad(), _resident(residency, backward=False):
            output = run(hidden)
        if isinstance(output, tuple):
            extra_outputs.extend(output[1:])
            output = output[0]
        return output

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple:
        hidden = ctx.parked.to(ctx.device, non_blocking=ctx.device.type == "cuda")
        hidden.requires_grad_(ctx.needs_input_grad[2])
        # One fetch of a streamed layer's weights serves the replay and the backward through it.
        with _resident(ctx.residency, backward=True):
            with ExitStack() as stack:
                stack.enter_context(torch.random.fork_rng(devices=ctx.rng_devices))
                torch.set_rng_state(ctx.cpu_rng)
                if ctx.device_rng is not None:
                    torch.cuda.set_rng_state(ctx.device_rng, ctx.device)
                for device_type, kwargs in ctx.autocast:
                    stack.enter_context(torch.autocast(device_type, **kwargs))
                with torch.enable_grad():
                    output = ctx.run(hidden)
            if isinstance(output, tuple):
                output = output[0]
            if output.requires_grad:
                torch.autograd.backward(output, grad_output)
        return None, None, hidden.grad, None, None


def _resident(residency: Any, *, backward: bool) -> Any:
    return nullcontext() if residency is None else residency(backward=backward)


def _autocast_state(device_type: str) -> list[tuple[str, dict]]:
    """Autocast as forward saw it, for the device and the CPU: backward runs outside the
    caller's ``torch.autocast`` block but must replay the same dtypes."""
    return [
        (
            kind,
            {
                "enabled": torch.is_autocast_enabled(kind),
                "dtype": torch.get_autocast_dtype(kind),
                "cache_enabled": torch.is_autocast_cache_enabled(),
            },
        )
        for kind in dict.fromkeys([device_type, "cpu"])
    ]
