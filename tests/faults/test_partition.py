"""A partition really cuts traffic: a process's established loopback connection stops answering, then works again."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from iocctl.faults.partition import Partition, reaches

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="partitions need root")]

CLIENT = """
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.settimeout(1.5)
for _ in range(int(sys.argv[2])):
    try:
        s.sendall(b'x')
        s.recv(1)
        print('ok', flush=True)
    except OSError:
        print('cut', flush=True)
    time.sleep(0.5)
"""


def _echo(server: socket.socket) -> None:
    connection, _ = server.accept()
    with connection, contextlib.suppress(OSError):  # the client may leave with bytes unread: a reset
        while data := connection.recv(16):
            connection.sendall(data)


def test_an_established_connection_is_cut_and_healed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        threading.Thread(target=_echo, args=(server,), daemon=True).start()
        child = subprocess.Popen([sys.executable, "-c", CLIENT, str(port), "14"], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        with Partition(f"ioc-test-{uuid.uuid4().hex[:6]}", 0x10EE00F0) as partition:
            assert child.stdout.readline().strip() == "ok"
            partition.isolate(child.pid)
            assert child.stdout.readline().strip() == "ok"  # in the group, nothing cut yet
            assert reaches(partition, port)
            partition.cut([port])
            time.sleep(0.1)
            assert child.stdout.readline().strip() == "cut"
            assert not reaches(partition, port, timeout=1.0)
            assert reaches_from_outside(port)  # only the group is cut off
            partition.heal()
            lines = [child.stdout.readline().strip() for _ in range(4)]
            assert "ok" in lines[1:], lines  # TCP retransmits what was dropped; the connection lives on
        child.wait(20)
        child.stdout.close()


def reaches_from_outside(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        return True
