"""The SDK's offline queue on disk: what `VendorClient` accepted and the broker has not yet acknowledged.

A SQLite file (write-ahead log, every accepted message committed before `publish` returns) holds each message's
topic and payload until its PUBACK, and each device's next sequence number, so a gateway that restarts while
the broker is away sends what it had accepted, in order, and numbers on where it stopped (the bridge refuses a
sequence that would overwrite an earlier reading). Delivery is at least once: a message acknowledged just
before a crash may be sent again, and the warehouse keeps one row per device and sequence.

`sync="full"` also survives losing power (an fsync per accepted message); `"normal"` survives the process being
killed, not the machine (the write-ahead log is synced at checkpoints only): measured in docs/durability.md.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Final, Literal

__all__ = ["DiskOutbox", "Entry"]

Entry = tuple[int, str, bytes]
"""One waiting message: its number in the outbox (the order it was accepted in), topic and payload."""

_SCHEMA: Final = (
    # AUTOINCREMENT: a number is never reused, even once the queue is empty, so it orders a restart's backlog too.
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
    "payload BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS devices (vendor TEXT NOT NULL, device TEXT NOT NULL, next_seq INTEGER NOT NULL, "
    "PRIMARY KEY (vendor, device))",
)


class DiskOutbox:
    """The outbox file of one gateway (one `VendorClient` at a time: the file is locked while open). Thread-safe."""

    def __init__(self, path: Path, *, sync: Literal["full", "normal"] = "full") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # isolation_level=None: statements run as written; explicit BEGIN and COMMIT group a message's writes.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=1.0)
        self._lock = threading.Lock()
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={sync.upper()}")
            # One process per outbox: a second gateway on the same file would send every message twice.
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._db.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                self._db.execute(statement)
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            self._db.close()
            raise RuntimeError(f"disk queue {path} is in use by another client ({exc}): one gateway per file") from None

    def add(self, topic: str, payload: bytes, *, device: tuple[str, str, int] | None = None) -> int:
        """Store a message (and, for a device's event, the device's next sequence number) at once; its number."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute("INSERT INTO outbox (topic, payload) VALUES (?, ?)", (topic, payload))
                if device is not None:
                    self._db.execute(
                        "INSERT INTO devices (vendor, device, next_seq) VALUES (?, ?, ?) "
                        "ON CONFLICT (vendor, device) DO UPDATE SET next_seq = excluded.next_seq",
                        device,
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            number = cursor.lastrowid
            assert number is not None  # an INSERT always has one
            return number

    def remove(self, numbers: Iterable[int]) -> None:
        """Forget acknowledged messages."""
        rows = [(n,) for n in numbers]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM outbox WHERE id = ?", rows)
            self._db.execute("COMMIT")

    def after(self, number: int, limit: int) -> list[Entry]:
        """Up to `limit` waiting messages accepted after message `number` (0: from the first), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (number, limit)
            ).fetchall()
        return [(int(n), str(t), bytes(p)) for n, t, p in rows]

    def newest(self) -> int:
        """The number of the newest waiting message (0: none)."""
        with self._lock:
            (number,) = self._db.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()
        return int(number)

    def waiting(self) -> int:
        """How many messages are not yet acknowledged."""
        with self._lock:
            (count,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        return int(count)

    def next_seq(self, vendor: str, device: str) -> int | None:
        """The next sequence number of a device this outbox has seen, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT next_seq FROM devices WHERE vendor = ? AND device = ?", (vendor, device)
            ).fetchone()
        return None if row is None else int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
