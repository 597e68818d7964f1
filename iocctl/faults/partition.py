"""Network partitions for fault runs: cut a running process off from loopback ports, then heal it (root).

The process is moved into a cgroup v1 `net_cls` group with its own class id, and one iptables rule drops its packets
to the given ports on `lo`. `net_cls` marks the sockets a process already holds when it moves (the kernel walks its
open files), so established connections are cut too, not only new ones; healing deletes the rule. Loopback traffic
cannot be held up by a TCP proxy here: Kafka clients reconnect to the brokers' advertised listeners after bootstrap.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Final

__all__ = ["NET_CLS", "Partition", "PartitionError", "reaches"]

NET_CLS: Final = Path("/sys/fs/cgroup/net_cls")


class PartitionError(RuntimeError):
    """The machine cannot partition a process (not root, no net_cls, no iptables), said plainly."""


def _mount_net_cls() -> None:
    if (NET_CLS / "net_cls.classid").exists():
        return
    if os.geteuid() != 0:
        raise PartitionError("network partitions need root (a net_cls cgroup and an iptables rule)")
    NET_CLS.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "cgroup", "-o", "net_cls", "net_cls", str(NET_CLS)], capture_output=True, check=False
    )
    if done.returncode != 0:
        raise PartitionError(f"cannot mount the net_cls cgroup at {NET_CLS}: {done.stderr.decode().strip()}")


class Partition:
    """One named partition: `isolate(pid)` puts processes in it, `cut(ports)` drops their traffic, `heal()` ends it."""

    def __init__(self, name: str, classid: int) -> None:
        if shutil.which("iptables") is None:
            raise PartitionError("iptables is not installed (Debian package iptables)")
        _mount_net_cls()
        self.name = name
        self.classid = classid
        self.group = NET_CLS / name
        self.group.mkdir(exist_ok=True)
        (self.group / "net_cls.classid").write_text(f"{classid:#x}\n")
        self._rule: list[str] | None = None

    def isolate(self, pid: int) -> None:
        """Move `pid` (all its threads) into the group; its open sockets move with it."""
        (self.group / "cgroup.procs").write_text(f"{pid}\n")

    def _iptables(self, op: str, ports: Iterable[int]) -> list[str]:
        listed = ",".join(str(p) for p in sorted(set(ports)))
        rule = ["OUTPUT", "-o", "lo", "-p", "tcp", "-m", "multiport", "--dports", listed]
        rule += ["-m", "cgroup", "--cgroup", f"{self.classid:#x}", "-j", "DROP"]
        done = subprocess.run(["iptables", "-w", op, *rule], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PartitionError(f"iptables {op} for partition {self.name} failed: {done.stderr.strip()}")
        return rule

    def cut(self, ports: Iterable[int]) -> None:
        """Drop every packet the group's processes send to `ports` on loopback, established connections included."""
        if self._rule is not None:
            raise PartitionError(f"partition {self.name} is already cut")
        self._rule = self._iptables("-I", ports)

    def heal(self) -> None:
        if self._rule is not None:
            ports = self._rule[self._rule.index("--dports") + 1].split(",")
            self._rule = None
            self._iptables("-D", (int(p) for p in ports))

    def close(self) -> None:
        """Heal, move what is left in the group back to the root group and remove the group."""
        self.heal()
        with contextlib.suppress(OSError):
            for pid in (self.group / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    (NET_CLS / "cgroup.procs").write_text(f"{pid}\n")
            self.group.rmdir()

    def __enter__(self) -> Partition:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def reaches(partition: Partition, port: int, timeout: float = 2.0) -> bool:
    """Whether a process inside `partition` can open a TCP connection to 127.0.0.1:`port` now (the cut's proof)."""
    probe = (
        "import socket, sys\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout={timeout}).close()\n"
        "except OSError:\n"
        "    sys.exit(1)\n"
    )
    # The probe joins the group before it opens its socket: a tiny child that moves itself, then tries.
    code = f"open({str(partition.group / 'cgroup.procs')!r}, 'w').write(str(__import__('os').getpid()))\n" + probe
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=timeout + 10, check=False)
    return done.returncode == 0
