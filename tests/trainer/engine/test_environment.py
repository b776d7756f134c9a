import os
import sys

from trainer.engine.environment import describe_environment, prefer_passive_openmp


def test_openmp_threads_are_asked_to_sleep_only_before_torch_loads(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch", object()))
    assert not prefer_passive_openmp()
    assert "OMP_WAIT_POLICY" not in os.environ

    monkeypatch.delitem(sys.modules, "torch")
    assert prefer_passive_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_a_users_own_wait_policy_is_kept(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    prefer_passive_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_the_environment_names_device_precision_and_library_versions():
    import torch

    env = describe_environment(
        "cpu", torch.float32, world_size=1, memory_plan={"optimizer": "adamw"}
    )
    assert env["device"] == "cpu" and env["compute_dtype"] == "float32"
    assert env["memory_plan"] == {"optimizer": "adamw"}
    assert env["versions"]["torch"] == torch.__version__
    assert {"host", "python", "cpu", "cpu_threads", "omp_wait_policy"} <= set(env)
