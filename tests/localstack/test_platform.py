"""`ioc up` refuses to start over a dashboard port in use, before it starts any service."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from iocctl.localstack import Stack
from iocctl.localstack.platform import Platform


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
