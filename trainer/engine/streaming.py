"""Decoder layers whose 4-bit weights live in host memory and visit the device only to run.

A 70B model's NF4 weights take about 35 GB: more than a 24 GB card holds. A streamed layer keeps
its bitsandbytes storage (each ``Params4bit``'s packed bytes and its ``QuantState``: absmax,
code, offset and the nested state's absmax and code) in one flat buffer of host memory, pinned
when the layer trains on a GPU. Just before the layer runs (forward, and once more for the
recomputation and backward that follow each other), ``LayerStreamer`` copies that buffer into
one of a few device buffers and points the layer's tensors at it; the tensor objects stay the
same, so bitsandbytes, peft and the module tree see nothing different. Everything else of the
layer (norms, the LoRA adapters and their gradients) stays on the device.

On CUDA the copies run on a side stream: while a layer computes, the next one (next in forward
order during forward, previous during backward) is copied into a free buffer, and an event makes
compute wait for its own layer's copy and nothing more. A buffer is refilled only after an event
says the compute that read it is done. At most ``buffers`` layers are on the device at a time.
On a CPU device the copies are plain, synchronous ones: the same bookkeeping, for tests.

The layer modes that drive this are in ``activations.py`` (mode ``"stream"``); how many layers
stream is the memory plan's choice (``memory_plan.py``). This module imports torch: import it
inside the functions that train, as the rest of the engine does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trainer.engine.memory_plan import STREAM_BUFFERS
from trainer.engine.modeling import keep_cpu_weights_differentiable

# Each tensor starts at a multiple of this many bytes in a flat buffer, so that a byte view can
# be reinterpreted as float32 (and the copies stay aligned).
ALIGNMENT = 256
NO_QUANTIZED_WEIGHTS = "layer {index} has no 4-bit weights to stream"
UNEQUAL_LAYERS = "streamed layers must all have the same 4-bit storage layout"


def _nf4_tensors(layer: nn.Module) -> list[tuple[Any, str, torch.Tensor]]:
    """(owner, attribute, tensor) for every tensor of the layer's 4-bit weights, in a fixed
    order: each Params4bit's data, then its quantisation state's tensors, nested ones last."""
    from trainer.engine.weights import quantized_linears

    found: list[tuple[Any, str, torch.Tensor]] = []
    for linear in quantized_linears(layer):
        weight = linear.weight
        found.append((weight, "data", weight.data))
        state = weight.quant_state
        while state is not None:
            for name, value in sorted(vars(state).items()):
                if isinstance(value, torch.Tensor):
                    found.append((state, name, value))
            state = getattr(state, "state2", None)
    return found


def _aligned(nbytes: int) -> int:
    return -(-nbytes // ALIGNMENT) * ALIGNMENT


@dataclass
class LayerStorage:
    """Where each 4-bit tensor of one layer sits in a flat byte buffer, and the host copy."""

    entries: list[tuple[Any, str, torch.dtype, torch.Size, int]]  # owner, name, dtype, shape, at
    nbytes: int
    host: torch.Tensor | None = None

    @classmethod
    def of(cls, layer: nn.Module) -> LayerStorage:
        entries, offset = [], 0
        for owner, name, tensor in _nf4_tensors(layer):
            entries.append((owner, name, tensor.dtype, tensor.shape, offset))
            offset += _aligned(tensor.numel() * tensor.element_size())
        return cls(entries=entries, nbytes=offset)

    def layout(self) -> list[tuple[torch.dtype, torch.Size, int]]:
        return [(dtype, shape, at) for _, _, dtype, shape, at in self.entries]

    def _views(self, flat: torch.Tensor) -> Iterator[tuple[Any, str, torch.Tensor]]:
        for owner, name, dtype, shape, at in self.entries:
            nbytes = shape.numel() * dtype.itemsize
            yield owner, name, flat[at : at + nbytes].view(dtype).view(shape)

    def fill(self, flat: torch.Tensor) -> None:
        """Copy the layer's tensors, wherever they are now, into ``flat``."""
        for owner, name, view in self._views(flat):
            view.copy_(getattr(owner, name))

    def point_at(self, flat: torch.Tensor) -> None:
        """Make the layer's tensors views of ``flat``: the same objects, new storage."""
        for owner, name, view in self._views(flat):
            setattr(owner, name, view)


STORAGE_ATTRIBUTE = "_streamed_storage"


def park(layer: nn.Module) -> LayerStorage:
    """Move the layer's 4-bit weights into one flat buffer of host memory (pinned where CUDA
    is there to copy from it) and free their device memory; nothing else of the layer moves.
    A layer parked already is left as it is."""
    storage = getattr(layer, STORAGE_ATTRIBUTE, None)
    if storage is not None:
        return storage
    storage = LayerStorage.of(layer)
    pinned = torch.cuda.is_available()
    storage.host = torch.empty(storage.nbytes, dtype=torch.uint8, pin_memory=pinned)
    storage.fill(storage.host)
    storage.point_at(storage.host)
    object.__setattr__(layer, STORAGE_ATTRIBUTE, storage)
    return storage


def is_parked(layer: nn.Module) -> bool:
    return getattr(layer, STORAGE_ATTRIBUTE, None) is not None


def unpark(layer: nn.Module, device: torch.device | str) -> None:
    """Bring a parked layer's 4-bit weights back to ``device`` for good."""
    storage = getattr(layer, STORAGE_ATTRIBUTE, None)
    if storage is None:
        return
    flat = torch.empty(storage.nbytes, dtype=torch.uint8, device=device)
    flat.copy_(storage.host)
    storage.point_at(flat)
    object.__delattr__(layer, STORAGE_ATTRIBUTE)


def storage_bytes(layer: nn.Module) -> int:
    """Bytes of one layer's 4-bit weights as streamed: what each copy moves."""
    return LayerStorage.of(layer).nbytes


def gather_parameters(model: nn.Module, device: torch.device | str) -> None:
    """Put every parameter but parked 4-bit weights on ``device``.

    peft creates each LoRA adapter on the device of the weight it adapts, so the adapters of
    layers parked before peft wrapped them start in host memory; they train on the device.
    """
    from bitsandbytes.nn import Params4bit

    device = torch.device(device)
    for parameter in model.parameters():
        if not isinstance(parameter, Params4bit) and parameter.device != device:
            parameter.data = parameter.data.to(device)


@dataclass(eq=False)
class _Slot:
    buffer: torch.Tensor
    layer: int | None = None  # index into the streamer's layers
    in_use: bool = False
    last_used: int = 0
    ready: Any = None  # CUDA event: the copy into the buffer is done
    freed: Any = None  # CUDA event: the compute that read the buffer is done


class LayerStreamer:
    """Copies each streamed layer's 4-bit weights into one of ``buffers`` device buffers just
    before it runs, and the next layer's while it runs.

    ``resident(layer)`` is the context the layer runs in. ``fetches`` and ``bytes_copied``
    count the copies made (a layer found still in a buffer is not copied again).
    """

    def __init__(
        self, layers: list[nn.Module], device: torch.device | str, buffers: int = STREAM_BUFFERS
    ) -> None:
        self.device = torch.device(device)
        self.layers = layers
        self.position = {id(layer): index for index, layer in enumerate(layers)}
        for index, layer in enumerate(layers):
            if not _nf4_tensors(layer):
                raise ValueError(NO_QUANTIZED_WEIGHTS.format(index=index))
        self.storages = [park(layer) for layer in layers]
        for layer in layers:
            # bitsandbytes' CPU inference kernel would repack the weights into new tensors,
            # which are no longer the streamed storage.
            keep_cpu_weights_differentiable(layer)
        if len({tuple(s.layout()) for s in self.storages}) > 1:
            raise ValueError(UNEQUAL_LAYERS)
        size = self.storages[0].nbytes
        on_cuda = self.device.type == "cuda"
        self.copy_stream = torch.cuda.Stream(self.device) if on_cuda else None
        self.slots = [
            _Slot(torch.empty(size, dtype=torch.uint8, device=self.device))
            for _ in range(min(buffers, len(layers)))
        ]
        self._clock = itertools.count(1)
        self.fetches = 0
        self.bytes_copied = 0

    def resident_layers(self) -> list[int]:
        """Indices (into the streamed layers) of the layers in a device buffer now."""
        return [slot.layer for slot in self.slots if slot.layer is not None]

    def buffer_storages(self) -> set[int]:
        """Data pointers of the device buffers' storage, to tell which tensors live there."""
        return {slot.buffer.untyped_storage().data_ptr() for slot in self.slots}

    @contextmanager
    def resident(
        self, layer: nn.Module, *, backward: bool = False, cyclic: bool = False
    ) -> Iterator[None]:
        """Run the block inside with ``layer``'s weights on the device.

        ``backward``: layers come in reverse order, so the one before is fetched ahead.
        ``cyclic``: after the last layer the first one comes again (generation, token after
        token); a training forward is followed by its backward instead, from the last layer.
        """
        index = self.position[id(layer)]
        slot = self._load(index)
        slot.in_use = True
        if slot.ready is not None:
            torch.cuda.current_stream(self.device).wait_event(slot.ready)
        self.storages[index].point_at(slot.buffer)
        following = self._following(index, backward=backward, cyclic=cyclic)
        if following is not None and len(self.slots) > 1:
            self._load(following)
        try:
            yield
        finally:
            slot.in_use = False
            if self.copy_stream is not None:
                slot.freed = torch.cuda.Event()
                slot.freed.record(torch.cuda.current_stream(self.device))

    def _following(self, index: int, *, backward: bool, cyclic: bool) -> int | None:
        following = index - 1 if backward else index + 1
        if 0 <= following < len(self.layers):
            return following
        return 0 if cyclic and not backward else None

    def _load(self, index: int) -> _Slot:
        """The slot holding layer ``index``, after starting its copy if it holds none."""
        for slot in self.slots:
            if slot.layer == index:
                slot.last_used = next(self._clock)
                return slot
        slot = min((s for s in self.slots if not s.in_use), key=lambda s: s.last_used)
        if slot.layer is not None:
            evicted = self.storages[slot.layer]
            evicted.point_at(evicted.host)  # a stale use reads the right numbers, not garbage
        storage = self.storages[index]
        target = slot.buffer[: storage.nbytes]
        if self.copy_stream is None:
            target.copy_(storage.host)
        else:
            with torch.cuda.stream(self.copy_stream):
                if slot.freed is not None:
                    self.copy_stream.wait_event(slot.freed)
                target.copy_(storage.host, non_blocking=True)
                slot.ready = torch.cuda.Event()
                slot.ready.record(self.copy_stream)
        slot.layer, slot.last_used = index, next(self._clock)
        self.fetches += 1
        self.bytes_copied += storage.nbytes
        return slot
