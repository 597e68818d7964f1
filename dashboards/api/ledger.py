"""What the citizen API remembers between requests: Idempotency-Keys and the reports it just took (SQLite)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import msgspec

from ioc import codecs
from ioc.events import CitizenReport

# A client that retries a submission with the same `Idempotency-Key` gets the first answer: the same
# report id and submission time (which the incident id is derived from), so a retry after a timeout never
# makes a second report. A key reused for a different request is refused. The ledger also keeps each
# accepted report, without its contact details, for a day, so `GET requests/{id}.json` answers `received`
# before the stream workers have stored it. It remembers, for `duplicate_window_s`, a key per report (text,
# place and reporter, hashed: no personal data) so the same report sent twice gets the first's id. A file
# (CitizenApiSettings.idempotency_db) keeps all this across restarts; without one it lives in memory.

__all__ = ["Claim", "Ledger"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS idempotency (
    client TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    report_id TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    PRIMARY KEY (client, key)
);
CREATE TABLE IF NOT EXISTS submitted (
    report_id TEXT PRIMARY KEY,
    report BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS recent (
    duplicate_key TEXT PRIMARY KEY,
    report_id TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency (created);
CREATE INDEX IF NOT EXISTS recent_expires ON recent (expires);
CREATE INDEX IF NOT EXISTS submitted_created ON submitted (created);
"""


@dataclasses.dataclass(frozen=True, slots=True)
class Claim:
    """The report id and time a key stands for; `done` once Kafka took it; `same` if the request matches."""

    report_id: str
    submitted_at: dt.datetime
    done: bool
    same: bool


class Ledger:
    """Idempotency keys per client and recently accepted reports, pruned after `ttl_s`."""

    def __init__(self, path: Path | None, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Owner-only: it holds what citizens reported (never their contacts) and clients' keys' uses.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            os.chmod(path, 0o600)
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a power cut may forget the last commits, never corrupt; an answer is only
        # lost if the machine dies before the client got it, and then the client's retry starts afresh.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._ttl_s = ttl_s
        self._clock = clock
        self._last_prune = 0.0

    def claim(self, client: str, key: str, fingerprint: str, report_id: str, submitted_at: dt.datetime) -> Claim:
        """Bind `key` to this report id and time, or return what it is already bound to."""
        now = self._clock()
        with self._lock:
            self._prune(now)
            row = self._db.execute(
                "SELECT fingerprint, report_id, submitted_at, done FROM idempotency WHERE client = ? AND key = ?",
                (client, key),
            ).fetchone()
            if row is not None:
                return Claim(row[1], dt.datetime.fromisoformat(row[2]), bool(row[3]), row[0] == fingerprint)
            self._db.execute(
                "INSERT INTO idempotency (client, key, fingerprint, report_id, submitted_at, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (client, key, fingerprint, report_id, submitted_at.isoformat(), now),
            )
            return Claim(report_id, submitted_at, False, True)

    def accepted(self, report: CitizenReport, client: str | None = None, key: str | None = None) -> None:
        """Record that Kafka took `report` (under `key`, if one was given)."""
        # Personal data stays out of this file: only what the public status answer needs is kept.
        public = msgspec.structs.replace(report, contact=None)
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR REPLACE INTO submitted (report_id, report, created) VALUES (?, ?, ?)",
                (report.report_id, codecs.encode(public), self._clock()),
            )
            if key is not None:
                self._db.execute("UPDATE idempotency SET done = 1 WHERE client = ? AND key = ?", (client, key))
            self._db.execute("COMMIT")

    def claim_report(self, duplicate_key: str, report_id: str, window_s: float) -> str:
        """`report_id` if no report with this key was taken within `window_s`, else the earlier report's id."""
        now = self._clock()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute(
                "SELECT report_id FROM recent WHERE duplicate_key = ? AND expires > ?", (duplicate_key, now)
            ).fetchone()
            if row is None:
                self._db.execute(
                    "INSERT OR REPLACE INTO recent (duplicate_key, report_id, expires) VALUES (?, ?, ?)",
                    (duplicate_key, report_id, now + window_s),
                )
            self._db.execute("COMMIT")
        return report_id if row is None else str(row[0])

    def release_report(self, duplicate_key: str, report_id: str) -> None:
        """Forget a claim whose report was never stored (Kafka refused it): a retry is then not a duplicate."""
        with self._lock:
            self._db.execute("DELETE FROM recent WHERE duplicate_key = ? AND report_id = ?", (duplicate_key, report_id))

    def submitted(self, report_id: str) -> CitizenReport | None:
        """A report this API accepted within the last `ttl_s`, if any."""
        with self._lock:
            row = self._db.execute("SELECT report FROM submitted WHERE report_id = ?", (report_id,)).fetchone()
        return None if row is None else codecs.decode(row[0], CitizenReport)

    def _prune(self, now: float) -> None:
        if now - self._last_prune < 60:
            return
        self._last_prune = now
        cutoff = now - self._ttl_s
        self._db.execute("DELETE FROM idempotency WHERE created < ?", (cutoff,))
        self._db.execute("DELETE FROM submitted WHERE created < ?", (cutoff,))
        self._db.execute("DELETE FROM recent WHERE expires < ?", (now,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
