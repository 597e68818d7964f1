"""What the local services' modules share: the loopback host, the `ServiceInfo` record, secrets, HTTP probes.

Also how a service is launched so that `services.relaunch` can start it again the same way.
"""

from __future__ import annotations

import secrets
import ssl
import subprocess
import urllib.request
from pathlib import Path
from typing import Any, Final

from iocctl.localstack.process import ServiceStartError, start_process

__all__ = ["HOST", "ServiceInfo", "http_get", "launch", "new_secret", "run_setup"]

# A service's pid, log and everything a client needs (endpoints, credentials), as recorded in stack.json.
ServiceInfo = dict[str, Any]
HOST: Final = "127.0.0.1"


def new_secret() -> str:
    """A fresh password for a service account."""
    # Hex, not urlsafe: a password starting with "-" would be read as an option by mosquitto_ctrl.
    return secrets.token_hex(16)


def http_get(
    url: str, *, token: str | None = None, ca_file: str | None = None, timeout: float = 2.0
) -> tuple[int, str]:
    """GET a loopback URL (optionally with a bearer token and a CA); the status and the body as text."""
    request = urllib.request.Request(url)  # noqa: S310 - loopback URLs we built ourselves
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
        return int(response.status), response.read().decode("utf-8", "replace")


def launch(
    name: str, argv: list[Any], log: Path, cwd: Path | None = None
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start a service and remember how, so `relaunch` can start it again the same way (outage tests)."""
    process = start_process(name, argv, log, cwd=cwd)
    return process, {"argv": [str(a) for a in argv], "cwd": str(cwd) if cwd else None, "stdout_log": str(log)}


def run_setup(what: str, argv: list[str]) -> None:
    """Run a one-off setup command; a failure raises `ServiceStartError` with its output."""
    done = subprocess.run(argv, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise ServiceStartError(f"{what} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
