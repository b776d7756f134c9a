"""AdamW with its fp32 master weights and states in CPU memory, for adapters kept in bf16.

On a small card the adapter's own bookkeeping is a visible share of the memory: for LoRA r16 on
a 7B model (40M weights) fp32 weights, fp32 gradients, autocast's bf16 copies and fp32 AdamW
states take 0.6 GiB. Here the device holds only the bf16 weights and their bf16 gradients
(0.15 GiB); each step brings the gradients to the CPU, runs torch's AdamW on fp32 master copies
there and sends the updated weights back, rounded to bf16.

With one micro-batch per step this is fp32 AdamW's arithmetic exactly: under autocast an fp32
adapter weight is rounded to bf16 for every matmul anyway, and its gradient is computed in bf16
before being widened to fp32. (With gradient accumulation the micro-batch gradients are summed
in bf16 on the device.) The price is the copies and a CPU AdamW pass per step.
"""

from __future__ import annotations

from typing import Any

import torch

MASTERS_KEY = "host_masters"


class HostAdamW(torch.optim.AdamW):
    """AdamW over CPU fp32 masters of ``device_params``, which become ``dtype`` in place."""

    def __init__(
        self,
        device_params: list[torch.Tensor],
        *,
        dtype: torch.dtype,
        lr: float,
        weight_decay: float,
    ) -> None:
        self.device_params = list(device_params)
        pin = all(p.device.type == "cuda" for p in self.device_params)
        self.masters = []
        for param in self.device_params:
            master = param.detach().to("cpu", torch.float32, copy=True)
            self.masters.append(master.pin_memory() if pin else master)
            param.data = param.data.to(dtype)
        super().__init__(self.masters, lr=lr, weight_decay=weight_decay, foreach=True)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        for param, master in zip(self.device_params, self.masters, strict=True):
            master.grad = None if param.grad is None else param.grad.to("cpu", torch.float32)
        loss = super().step(closure)
        self.push_masters()
        return loss

    @torch.no_grad()
    def push_masters(self) -> None:
        for param, master in zip(self.device_params, self.masters, strict=True):
            param.copy_(master, non_blocking=True)

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none=set_to_none)
        for param in self.device_params:
            if set_to_none:
                param.grad = None
            elif param.grad is not None:
                param.grad.zero_()

    def state_dict(self) -> dict[str, Any]:
        # The masters are the weights' full precision: a resumed run must start from them, not
        # from the bf16 adapter in the checkpoint.
        return {**super().state_dict(), MASTERS_KEY: [m.clone() for m in self.masters]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        masters = state_dict.pop(MASTERS_KEY)
        with torch.no_grad():
            for master, saved in zip(self.masters, masters, strict=True):
                master.copy_(saved)
        super().load_state_dict(state_dict)
        self.push_masters()
