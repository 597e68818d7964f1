"""Starting, watching and stopping one local service process, with its output captured to a log file.

Processes run in their own session (process group) so `stop` takes down anything they spawned, and so a
stack started by `ioc stack up` outlives the command that started it. Readiness is polled with a
caller-supplied check; a process that exits while we wait fails with the tail of its log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

__all__ = [
    "ServiceStartError",
    "every_until_interrupted",
    "free_port",
    "interruptible",
    "is_alive",
    "log_tail",
    "port_open",
    "start_process",
    "stop_process",
    "wait_until",
]


# Popen objects of processes this interpreter started: kept so they are not garbage-collected while the
# service runs (which would warn), and so `stop_process` can reap them.
_children: dict[int, subprocess.Popen[bytes]] = {}


class ServiceStartError(RuntimeError):
    """A service did not become ready; the message carries the tail of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:])


def start_process(
    name: str,
    argv: Sequence[str | os.PathLike[str]],
    log_path: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` detached in its own session, stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {name}: {' '.join(map(str, argv))}\n".encode())
        log.flush()
        process = subprocess.Popen(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    _children[process.pid] = process
    return process


def is_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie counts as gone)."""
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _children[pid]  # reaped through its Popen, which now knows it ended
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def wait_until(
    name: str,
    check: Callable[[], bool],
    *,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
    interval: float = 0.2,
) -> None:
    """Poll `check` until it is true; fail early if `process` exits, and late after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            tail = log_tail(log_path) if log_path else ""
            raise ServiceStartError(f"{name} exited with code {process.returncode} before it was ready:\n{tail}")
        try:
            if check():
                return
        except Exception:  # noqa: BLE001, S110 - a failing probe means "not ready yet"
            pass
        if time.monotonic() > deadline:
            tail = log_tail(log_path) if log_path else ""
            if process is not None:  # never leave a half-started service behind
                stop_process(process.pid, timeout=5)
            raise ServiceStartError(f"{name} was not ready after {timeout:.0f} s:\n{tail}")
        time.sleep(interval)


def stop_process(pid: int, *, timeout: float = 20.0) -> bool:
    """SIGTERM the process group of `pid`, SIGKILL it after `timeout` s; True when something was running."""
    if not is_alive(pid):
        return False
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            break
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    # Reap it if it is our child, so no zombie stays behind in long-running test sessions.
    child = _children.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)
    return True


def every_until_interrupted(every_s: float, tick: Callable[[], None]) -> None:
    """Call `tick` every `every_s` seconds until Ctrl-C or SIGTERM, then restore both signals' handlers.

    Ctrl-C stops it even when started in the background, where the shell hands SIGINT down ignored.
    """
    stop = False

    def on_term(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    previous_term = signal.signal(signal.SIGTERM, on_term)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while not stop:
            tick()
            with contextlib.suppress(InterruptedError):
                time.sleep(every_s)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within it, Ctrl-C and SIGTERM both raise KeyboardInterrupt, so a run stops the way it does on Ctrl-C (it
    flushes and reports what it sent); the handlers are restored after.

    SIGINT is taken back even when the process started with it ignored, as the background of a non-interactive
    shell (`nohup … &`, a CI runner) hands it down: otherwise a test's or `ioc up`'s stop would not stop it.
    """

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
