"""`ioc api` and `ioc portal`: they explain themselves and say clearly when the local stack is not running."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

IOC = str(Path(sys.executable).with_name("ioc"))


@pytest.mark.parametrize("command", ["api", "portal"])
def test_serving_commands_need_the_local_stack(command: str, tmp_path: Path) -> None:
    shown = subprocess.run([IOC, command, "--help"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "--site" in shown.stdout
    refused = subprocess.run(
        [IOC, command, "--stack", str(tmp_path / "none")], capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 1
    assert "not running" in refused.stderr and "ioc stack up" in refused.stderr
