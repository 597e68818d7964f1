"""`ioc up`: refuses a dashboard port in use before starting anything; a living demo restarts its simulator."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from iocctl.localstack import Stack
from iocctl.localstack.platform import Platform
from iocctl.localstack.process import is_alive, stop_process


def test_a_dashboard_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    said: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        platform = Platform(Stack(tmp_path / "stack"), dashboards=(("74", port),), say=said.append)
        with pytest.raises(RuntimeError, match=f"port {port} for the dashboard of site 74 is in use"):
            platform.start()
    assert said == []  # nothing was started, so nothing needs stopping
    assert platform.processes == []


def _stopped(platform: Platform) -> None:
    deadline = time.monotonic() + 30
    while any(is_alive(p.pid) for p in platform.processes if p.name != "sleeper"):
        assert time.monotonic() < deadline, "the short-lived processes did not end"
        time.sleep(0.1)


def test_a_living_demo_starts_its_simulator_again_and_says_so(tmp_path: Path) -> None:
    platform = Platform(Stack(tmp_path / "stack"), dashboards=())
    # Real processes: a simulator that fails at once, a bridge that ends, a worker that keeps running.
    platform._spawn("simulator", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))
    platform._spawn("bridge", [sys.executable, "-c", "pass"], dict(os.environ))
    platform._spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ))
    try:
        _stopped(platform)
        status = platform.processes_status()
        assert status.startswith(f"restarted: simulator (it had stopped; see {platform.logs})")
        assert "stopped: bridge" in status and "simulator" not in status.split("stopped:")[1]  # others are reported
        simulator = platform.processes[0]
        assert simulator.restarts == 1
        assert (platform.logs / "simulator.log").read_text().count("starting simulator") == 2
        platform.living = False  # a demo told to freeze reports its ended simulator instead
        _stopped(platform)
        assert "stopped: simulator, bridge" in platform.processes_status()
    finally:
        for process in platform.processes:
            stop_process(process.pid, timeout=5)
