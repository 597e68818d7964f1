"""`ioc up` (`make demo`) runs its dashboards on loopback, with the local user an operator who can act."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from iocctl.commands.dashboard import dashboard
from iocctl.localstack import Stack
from iocctl.localstack.platform import Platform


def test_the_demo_dashboards_listen_on_loopback_and_make_you_their_operator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = Platform(Stack(tmp_path / "stack"), dashboards=(("724", 8502),))
    argv = platform.dashboard_argv("724", 8502)
    assert argv[1:4] == ["-m", "iocctl", "dashboard"]
    assert argv[argv.index("--address") + 1] == "127.0.0.1" and argv[argv.index("--role") + 1] == "operator"
    # What `ioc dashboard` makes of those options (a chDB directory instead of the stack, and a dry run).
    for name in [k for k in os.environ if k.startswith("IOC_DASHBOARD_")]:
        monkeypatch.delenv(name)
    result = CliRunner().invoke(dashboard, [*argv[4:], "--chdb", str(tmp_path / "chdb"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "IOC_DASHBOARD_LOCAL_ROLE=operator" in result.output and "--server.address=127.0.0.1" in result.output
    assert not (tmp_path / "stack").exists()  # a dry run writes nothing
