"""The connector's durable memory (SQLite): versions sent per dossier, poll cursors, children's reports.

- `versions`: the highest `status_version` of each dossier that Kafka has taken. A webhook replayed, or a
  status arriving after a newer one, is recognised here and not sent again; the warehouse would collapse
  it anyway (dossiers are a ReplacingMergeTree by status_version), this keeps Kafka and the 766 scoring
  free of the noise. A version is recorded only after Kafka acknowledged it.
- `cursors`: where each polled feed stands, saved only once a page's events are all in Kafka.
- `reports`: every signed upward report a child site pushed, once per idempotency key, with its bytes.

One file per connector replica (PortalGatewaySettings.state_db); the dedupe is an optimisation, never
the only guard, so replicas need not share it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
import threading
from pathlib import Path
from typing import Final

__all__ = ["GatewayState", "StoredReport"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS versions (
    dossier_id TEXT PRIMARY KEY,
    status_version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    feed TEXT PRIMARY KEY,
    cursor TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reports (
    idempotency_key TEXT PRIMARY KEY,
    report_id TEXT NOT NULL,
    unit TEXT NOT NULL,
    period_kind TEXT NOT NULL,
    period_label TEXT NOT NULL,
    revision TEXT NOT NULL,
    generated_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    envelope BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_by_id ON reports (report_id, generated_at);
"""
_ALL_REPORTS: Final = "SELECT * FROM reports ORDER BY report_id, generated_at DESC"
_REPORTS_OF: Final = "SELECT * FROM reports WHERE report_id = ? ORDER BY generated_at DESC"


@dataclasses.dataclass(frozen=True, slots=True)
class StoredReport:
    """A child's report as received: its identity, when it was made and received, and the signed envelope."""

    idempotency_key: str
    report_id: str
    unit: str
    period_kind: str
    period_label: str
    revision: str
    generated_at: dt.datetime
    received_at: dt.datetime
    envelope: bytes


class GatewayState:
    """Thread-safe access to the connector's SQLite file (or memory, for tests)."""

    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a version or a report recorded here was acknowledged to its sender; losing it in a power
        # cut would only cause a harmless re-send, but a cursor moving backwards re-reads a page, so keep it.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    # --- dossier versions -------------------------------------------------------------------------------

    def version(self, dossier_id: str) -> int | None:
        """The highest status_version of the dossier Kafka has taken, if any."""
        with self._lock:
            row = self._db.execute("SELECT status_version FROM versions WHERE dossier_id = ?", (dossier_id,)).fetchone()
        return None if row is None else int(row[0])

    def record_version(self, dossier_id: str, status_version: int) -> None:
        """Remember that Kafka has this version (keeping the highest ever recorded)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO versions (dossier_id, status_version) VALUES (?, ?) "
                "ON CONFLICT (dossier_id) DO UPDATE SET status_version = max(status_version, excluded.status_version)",
                (dossier_id, status_version),
            )

    # --- poll cursors -------------------------------------------------------------------------------------

    def cursor(self, feed: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT cursor FROM cursors WHERE feed = ?", (feed,)).fetchone()
        return None if row is None else str(row[0])

    def save_cursor(self, feed: str, cursor: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO cursors (feed, cursor) VALUES (?, ?) "
                "ON CONFLICT (feed) DO UPDATE SET cursor = excluded.cursor",
                (feed, cursor),
            )

    # --- children's reports ------------------------------------------------------------------------------------

    def has_report(self, idempotency_key: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM reports WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
        return row is not None

    def store_report(self, report: StoredReport) -> bool:
        """Keep a report; False when its idempotency key was already kept (nothing changes then)."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO reports (idempotency_key, report_id, unit, period_kind, period_label, "
                "revision, generated_at, received_at, envelope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    report.idempotency_key,
                    report.report_id,
                    report.unit,
                    report.period_kind,
                    report.period_label,
                    report.revision,
                    report.generated_at.isoformat(),
                    report.received_at.isoformat(),
                    report.envelope,
                ),
            )
            return cursor.rowcount == 1

    def reports(self, report_id: str | None = None, *, latest_only: bool = True) -> list[StoredReport]:
        """Kept reports (of one report id), newest revision per report id first unless `latest_only` is off."""
        with self._lock:
            if report_id is None:
                rows = self._db.execute(_ALL_REPORTS).fetchall()
            else:
                rows = self._db.execute(_REPORTS_OF, (report_id,)).fetchall()
        found = [
            StoredReport(
                idempotency_key=r[0],
                report_id=r[1],
                unit=r[2],
                period_kind=r[3],
                period_label=r[4],
                revision=r[5],
                generated_at=dt.datetime.fromisoformat(r[6]),
                received_at=dt.datetime.fromisoformat(r[7]),
                envelope=bytes(r[8]),
            )
            for r in rows
        ]
        if not latest_only:
            return found
        seen: set[str] = set()
        latest = []
        for report in found:
            if report.report_id not in seen:
                seen.add(report.report_id)
                latest.append(report)
        return latest

    def close(self) -> None:
        with self._lock:
            self._db.close()
