import os
import sys

from trainer.engine.environment import describe_environment, prefer_runtime_settings


def test_sleeping_threads_and_expandable_segments_are_set_only_before_torch_loads(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)
    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch", object()))
    assert not prefer_runtime_settings()
    assert "OMP_WAIT_POLICY" not in os.environ
    assert "PYTORCH_CUDA_ALLOC_CONF" not in os.environ

    monkeypatch.delitem(sys.modules, "torch")
    assert prefer_runtime_settings()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert os.environ["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"


def test_a_users_own_settings_are_kept(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:128")
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    prefer_runtime_settings()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    assert os.environ["PYTORCH_CUDA_ALLOC_CONF"] == "max_split_size_mb:128"


def test_the_environment_names_device_precision_and_library_versions():
    import torch

    env = describe_environment(
        "cpu", torch.float32, world_size=1, memory_plan={"optimizer": "adamw"}
    )
    assert env["device"] == "cpu" and env["compute_dtype"] == "float32"
    assert env["memory_plan"] == {"optimizer": "adamw"}
    assert env["versions"]["torch"] == torch.__version__
    assert {"host", "python", "cpu", "cpu_threads", "omp_wait_policy"} <= set(env)
