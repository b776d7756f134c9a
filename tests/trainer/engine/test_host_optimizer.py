"""AdamW with CPU masters: the same arithmetic as torch's AdamW, and a state that resumes."""

import pytest
import torch

from trainer.engine.host_optimizer import HostAdamW

OPTIONS = {"lr": 1e-2, "weight_decay": 0.01}


def weights(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 8, generator=generator), torch.randn(8, 3, generator=generator)]


def gradients(step, like):
    """bf16-representable gradients, so rounding them to bf16 on the device loses nothing."""
    generator = torch.Generator().manual_seed(100 + step)
    return [torch.randn(p.shape, generator=generator).to(torch.bfloat16).float() for p in like]


def run(optimizer, params, steps, dtype=torch.float32):
    for step in range(steps):
        for param, grad in zip(params, gradients(step, params), strict=True):
            param.grad = grad.to(dtype)
        optimizer.step()
        optimizer.zero_grad()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_masters_follow_torchs_adamw_and_the_device_holds_them_rounded(dtype):
    reference = [p.clone().requires_grad_() for p in weights()]
    run(torch.optim.AdamW(reference, **OPTIONS), reference, steps=3)

    device = [p.clone().requires_grad_() for p in weights()]
    optimizer = HostAdamW(device, dtype=dtype, **OPTIONS)
    assert all(p.dtype == dtype for p in device)
    run(optimizer, device, steps=3, dtype=dtype)
    for master, param, expected in zip(optimizer.masters, device, reference, strict=True):
        torch.testing.assert_close(master, expected.detach(), rtol=0, atol=1e-6)
        assert torch.equal(param.detach(), master.to(dtype))


def test_zero_grad_clears_the_device_gradients_too():
    device = [p.clone().requires_grad_() for p in weights()]
    optimizer = HostAdamW(device, dtype=torch.bfloat16, **OPTIONS)
    for param in device:
        param.grad = torch.ones_like(param)
    optimizer.zero_grad()
    assert all(p.grad is None for p in device)


def test_a_saved_state_resumes_from_the_full_precision_masters():
    whole = [p.clone().requires_grad_() for p in weights()]
    whole_optimizer = HostAdamW(whole, dtype=torch.bfloat16, **OPTIONS)
    run(whole_optimizer, whole, steps=4, dtype=torch.bfloat16)

    first = [p.clone().requires_grad_() for p in weights()]
    first_optimizer = HostAdamW(first, dtype=torch.bfloat16, **OPTIONS)
    run(first_optimizer, first, steps=2, dtype=torch.bfloat16)
    saved = first_optimizer.state_dict()

    # A new process: other starting weights, then the checkpoint's bf16 adapter and state.
    resumed = [p.clone().requires_grad_() for p in weights(seed=9)]
    resumed_optimizer = HostAdamW(resumed, dtype=torch.bfloat16, **OPTIONS)
    with torch.no_grad():
        for param, saved_param in zip(resumed, first, strict=True):
            param.copy_(saved_param)
    resumed_optimizer.load_state_dict(saved)
    for step in range(2, 4):
        for param, grad in zip(resumed, gradients(step, resumed), strict=True):
            param.grad = grad.to(torch.bfloat16)
        resumed_optimizer.step()
        resumed_optimizer.zero_grad()
    for got, expected in zip(resumed_optimizer.masters, whole_optimizer.masters, strict=True):
        assert torch.equal(got, expected)


def test_a_learning_rate_schedule_drives_it():
    from transformers import get_scheduler

    device = [p.clone().requires_grad_() for p in weights()]
    optimizer = HostAdamW(device, dtype=torch.bfloat16, **OPTIONS)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=0, num_training_steps=4)
    run(optimizer, device, steps=1, dtype=torch.bfloat16)
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(OPTIONS["lr"] * 3 / 4)
