"""What a run ran on: device, library versions, host; and how much memory it took."""

from __future__ import annotations

import os
import platform
import resource
import socket
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

LIBRARIES = ("torch", "transformers", "peft", "bitsandbytes", "accelerate")


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def prefer_runtime_settings() -> bool:
    """Settings torch reads once, set to what training wants unless the user chose otherwise.

    - ``OMP_WAIT_POLICY=PASSIVE``: idle OpenMP threads sleep instead of spinning. torch's CPU
      kernels run on OpenMP threads that, by default, spin while they wait for each other.
      When other processes use the cores (a shared machine, the web server and a worker beside
      the trainer on a laptop) the spinning threads steal the time their partners need; on a
      busy machine a step takes several times longer (benchmarks/results/train_cpu.md and
      train_cpu.json).
    - ``PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True``: the CUDA caching allocator grows
      segments instead of carving fixed-size blocks, so what one layer's backward frees fits
      the next one's requests. Without it, memory sat reserved but unallocated when a process
      ran out of memory (the capped runs of benchmarks/results/qlora_gpu_2026-11-29.md).

    Both are read when torch loads (the allocator's on first use), so this only acts before
    torch is imported; returns whether it could.
    """
    if "torch" in sys.modules:
        return False
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    return True


def describe_environment(
    device: str, dtype: Any, *, world_size: int, memory_plan: dict[str, Any]
) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {
        "device": device,
        "compute_dtype": str(dtype).removeprefix("torch."),
        "world_size": world_size,
        "memory_plan": memory_plan,
        "host": socket.gethostname(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "versions": library_versions(),
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        env["gpu"] = props.name
        env["gpu_memory_bytes"] = props.total_memory
        env["cuda"] = torch.version.cuda
    return env


def reset_peak_memory(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats(torch.device(device))


def peak_memory_bytes(device: str) -> int:
    """Peak GPU memory allocated by torch on CUDA; on CPU the process's peak resident memory
    (Linux reports it in KiB), which includes the interpreter and the framework."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.max_memory_allocated(torch.device(device)))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
