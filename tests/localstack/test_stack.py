"""`ioc stack up|status|down` on real services, and clear errors for missing prerequisites."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from iocctl.localstack import Installer, MissingPrerequisite, Stack
from iocctl.localstack.process import is_alive
from iocctl.localstack.services import DEFAULT_SERVICES

IOC = [sys.executable, "-m", "iocctl"]


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_cli_brings_all_five_up_and_down_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    up = subprocess.run([*IOC, "stack", "up", "--dir", str(root)], capture_output=True, text=True, timeout=600)
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        status = subprocess.run([*IOC, "stack", "status", "--dir", str(root), "--json"], capture_output=True, text=True)
        report = json.loads(status.stdout)
        assert set(report["services"]) == set(DEFAULT_SERVICES)  # ZooKeeper only comes with a ClickHouse cluster
        assert all(s["running"] and s["ready"] for s in report["services"].values()), report
        kafka = report["services"]["kafka"]
        assert kafka["bootstrap"].startswith("127.0.0.1:")
        assert report["services"]["mosquitto"]["admin_password"]
        assert Path(report["services"]["kube-apiserver"]["kubeconfig"]).exists()
        pids = [s["pid"] for s in report["services"].values()]
        human = subprocess.run([*IOC, "stack", "status", "--dir", str(root)], capture_output=True, text=True)
        assert "kube-apiserver" in human.stdout and "ready" in human.stdout
    finally:
        down = subprocess.run([*IOC, "stack", "down", "--dir", str(root)], capture_output=True, text=True, timeout=120)
    assert down.returncode == 0 and "kafka" in down.stdout
    assert not any(is_alive(pid) for pid in pids)
    assert _processes_mentioning(str(root)) == []
    after = subprocess.run([*IOC, "stack", "status", "--dir", str(root)], capture_output=True, text=True)
    assert "no local stack" in after.stdout


@pytest.mark.slow
def test_up_is_idempotent_and_replaces_a_dead_service(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "s")
    try:
        first = stack.up(["etcd"])["etcd"]
        assert stack.up(["etcd"])["etcd"]["pid"] == first["pid"]
        os.kill(first["pid"], 9)
        replaced = stack.up(["etcd"])["etcd"]
        assert replaced["pid"] != first["pid"]
        assert stack.status()["services"]["etcd"]["ready"]
    finally:
        assert stack.down() == ["etcd"]


def test_unknown_service_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown service 'redis'"):
        Stack(tmp_path).up(["redis"])


def test_missing_tools_say_which_and_how(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    installer = Installer(tmp_path / "cache")
    with pytest.raises(MissingPrerequisite, match=r"`mvn` is not on PATH; install Maven"):
        installer.kafka()
    with pytest.raises(MissingPrerequisite, match=r"`go` is not on PATH; install Go"):
        installer.etcd()
