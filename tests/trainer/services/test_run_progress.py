"""Stop requests from signals: what the first and the second signal do, and what Ctrl-C means
in a worker and in a command trained in the foreground. The hooks' writes: test_run_training.py."""

import os
import signal

import pytest

from trainer.models import RunStatus
from trainer.services.run_progress import (
    CTRL_C_CANCELS,
    CTRL_C_INTERRUPTS,
    StopRequest,
    stop_on_signals,
)


def test_first_signal_stops_at_the_next_step_and_tells_the_worker():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        stop = StopRequest()
        with stop_on_signals(stop, CTRL_C_INTERRUPTS):
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.status == RunStatus.INTERRUPTED
            assert seen == [signal.SIGTERM]  # the worker's own handler still ran
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM, signal.SIGTERM]  # the worker's handler is back
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def python_sigint():
    """SIGINT as Python sets it up in a foreground process. A shell starts background jobs
    with SIGINT ignored (a CI script run with ``&``), and the handler put back must be this."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("python_sigint")
def test_ctrl_c_in_a_worker_interrupts_and_does_not_raise_at_once():
    stop = StopRequest()
    with stop_on_signals(stop, CTRL_C_INTERRUPTS):
        os.kill(os.getpid(), signal.SIGINT)
    assert stop.status == RunStatus.INTERRUPTED
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.usefixtures("python_sigint")
def test_ctrl_c_in_the_foreground_cancels_and_a_second_one_stops_at_once():
    stop = StopRequest()
    with stop_on_signals(stop, CTRL_C_CANCELS):
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.status == RunStatus.CANCELLED
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_in_the_foreground_interrupts():
    stop = StopRequest()
    with stop_on_signals(stop, CTRL_C_CANCELS):
        os.kill(os.getpid(), signal.SIGTERM)
    assert stop.status == RunStatus.INTERRUPTED
