"""`every_until_interrupted`, the status loop of `ioc up` and `ioc up --on-node`: real signals end it cleanly."""

from __future__ import annotations

import os
import signal

import pytest

from iocctl.localstack.process import every_until_interrupted


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_loop_and_restores_the_handlers(signum: int) -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    ticks = []

    def tick() -> None:
        ticks.append(1)
        if len(ticks) == 3:
            os.kill(os.getpid(), signum)
        assert len(ticks) < 10, "the loop outlived the signal"

    every_until_interrupted(0.01, tick)
    assert len(ticks) == 3
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
