"""The demo's local mailbox: an SMTP server on loopback (aiosmtpd) saving each message it accepts as .eml.

`ioc up` runs it (`python -m iocctl.localstack.mailbox --dir <stack>/mailbox --port <port>`) and points the stream
workers' notifier at it, so an operator reads what the platform sent (open a .eml in any mail client or text
editor); the notification tests run the same `SavingHandler` in aiosmtpd's `Controller`. Loopback only, no TLS,
no authentication: a demo's mailbox, never a relay.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

__all__ = ["SavingHandler", "main", "read_mailbox"]


class SavingHandler:
    """aiosmtpd handler: each accepted message becomes `<unix ms>-<recipient>-<id>.eml` in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.accepted = 0

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd names it
        content = envelope.original_content or envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode("utf-8")
        first = re.sub(r"[^A-Za-z0-9@._-]", "_", (envelope.rcpt_tos or ["unknown"])[0])[:80]
        name = f"{int(time.time() * 1000)}-{first}-{uuid.uuid4().hex[:6]}.eml"
        with self._lock:
            (self.directory / name).write_bytes(raw)
            self.accepted += 1
        return "250 Message accepted for delivery"


def read_mailbox(directory: Path) -> list[email.message.EmailMessage]:
    """The messages saved in `directory`, oldest first."""
    messages = []
    for path in sorted(directory.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        messages.append(message)
    return messages


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="where the .eml files go")
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    args = parser.parse_args(argv)
    controller = Controller(SavingHandler(args.dir), hostname="127.0.0.1", port=args.port)
    controller.start()
    print(f"mailbox: SMTP on 127.0.0.1:{args.port}, saving to {args.dir}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
