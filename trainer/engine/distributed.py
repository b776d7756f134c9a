r"""Several processes (``accelerate launch --multi_gpu`` or ``torchrun``) or just one.

The launchers set RANK, WORLD_SIZE and LOCAL_RANK; with WORLD_SIZE > 1 the process group is
started here (NCCL on CUDA, gloo on CPU) and the model is wrapped in DistributedDataParallel.
Only the main process (rank 0) reports progress and writes files.

    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no \
        --dynamo_backend no manage.py finetune --dataset NAME

``--multi_gpu`` works on a CPU-only machine too (two processes over gloo; tested with two CPU
processes). The batch size is per process: two processes make each optimizer step twice as big.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def device(self) -> str:
        import torch

        return f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over all processes."""
        if not self.distributed:
            return list(values)
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    def any(self, flag: bool) -> bool:
        """True on every process when it is True on any: a stop request reaches them all."""
        return self.sum([float(flag)])[0] > 0

    def gather(self, obj: Any) -> list[Any]:
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def broadcast(self, obj: Any) -> Any:
        """The main process's ``obj`` on every process."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def wrap(self, model: Any) -> Any:
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.local_rank] if self.device.startswith("cuda") else None
        return DistributedDataParallel(model, device_ids=ids)


def dist_context() -> DistContext:
    """The context of this process, starting the process group on first use."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistContext()
    import torch
    import torch.distributed as dist

    context = DistContext(
        rank=int(os.environ["RANK"]),
        world_size=world_size,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(context.local_rank)
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        # A group left standing at exit has its communication threads killed under it: gloo
        # then aborts the process ("terminate called without an active exception") after the
        # work is done, in about one run of four of test_distributed here.
        atexit.register(_destroy_process_group)
    return context


def _destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
