"""The dashboards' audit log: who signed in or out, who revealed personal data, who acted on an incident."""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

# Each record is one JSON object per line, appended under an exclusive file lock (several Streamlit
# sessions, or replicas sharing a volume, may write at once) and also emitted on the `ioc.audit` logger,
# which a pod's log collector keeps even when no file is configured. Records name the actor (the OIDC
# subject and e-mail), the site, the action, what it touched, and when (UTC). Nothing here is read back
# by the dashboards; it is evidence for the people who audit the IOC.

__all__ = ["AuditEntry", "AuditLog"]

_LOGGER: Final = logging.getLogger("ioc.audit")


@dataclasses.dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited event."""

    actor: str
    site: str
    action: str
    targets: Sequence[str] = ()
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    at: dt.datetime = dataclasses.field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def to_json(self) -> str:
        return json.dumps(
            {
                "at": self.at.astimezone(dt.UTC).isoformat(timespec="seconds"),
                "actor": self.actor,
                "site": self.site,
                "action": self.action,
                "targets": list(self.targets),
                "detail": dict(self.detail),
            },
            ensure_ascii=False,
            sort_keys=True,
            default=str,
        )


class AuditLog:
    """Appends entries to `path` (if given) and to the `ioc.audit` logger."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, entry: AuditEntry) -> None:
        line = entry.to_json()
        _LOGGER.info("%s", line)
        if self.path is None:
            return
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Owner-only from its creation: it names people and what they revealed.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    handle.write(line + "\n")
                    handle.flush()
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def record(
        self,
        actor: str,
        site: str,
        action: str,
        targets: Sequence[str] = (),
        **detail: Any,
    ) -> AuditEntry:
        """Write one entry built from its parts and return it."""
        entry = AuditEntry(actor=actor, site=site, action=action, targets=tuple(targets), detail=detail)
        self.write(entry)
        return entry
