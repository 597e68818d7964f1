"""A site's evidence store: photos and files attached to resolutions, kept by content, served to operators.

A shelf of ioc.blobstore: JPEG, PNG or PDF up to 10 MB under `DashboardSettings.evidence_dir` (a volume, or a
bucket mounted as one), keyed as `ioc.events.EVIDENCE_KEY_PATTERN` says, so the incident carries only keys
(`Incident.evidence`). Only the dashboard reads the store, for operators of the incident's units (each view
audited by the page); files are readable by their owner only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Protocol

from ioc import blobstore
from ioc.events import EVIDENCE_KEY_PATTERN
from ioc.settings import DashboardSettings

__all__ = [
    "IMAGE_TYPES",
    "MAX_BYTES",
    "SHELF",
    "DirectoryStore",
    "EvidenceError",
    "EvidenceStore",
    "MemoryStore",
    "key_for",
    "store_for",
]

MAX_BYTES: Final = 10 * 1024 * 1024
"""The largest file taken: a phone photo or a scanned page, not a video."""
IMAGE_TYPES: Final = frozenset({"jpg", "png"})


class EvidenceError(blobstore.BlobError):
    """A file that cannot be stored, or a key that names none; the message says which and why."""


SHELF: Final = blobstore.Shelf(
    noun="evidence",
    types=IMAGE_TYPES | {"pdf"},
    max_bytes=MAX_BYTES,
    key_pattern=EVIDENCE_KEY_PATTERN,
    unknown_type="only JPEG or PNG photos and PDF files are taken",
    error=EvidenceError,
)


def key_for(data: bytes) -> str:
    """The key `data` is stored under, or EvidenceError when it is not a JPEG, PNG or PDF, or too large."""
    return SHELF.key_for(data)


class EvidenceStore(Protocol):
    def put(self, data: bytes, kind: str | None = None) -> str:
        """Store `data` (idempotent) and return its key."""
        ...

    def get(self, key: str) -> bytes | None:
        """The file's bytes, or None when the store does not hold it."""
        ...


class DirectoryStore(blobstore.DirectoryStore):
    """Evidence files under `root/<first two hex>/<key>`, written whole or not at all."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, SHELF)


class MemoryStore(blobstore.MemoryStore):
    """Evidence in a dict, for unit tests."""

    def __init__(self) -> None:
        super().__init__(SHELF)


def store_for(settings: DashboardSettings) -> EvidenceStore | None:
    """The site's evidence store, or None when none is configured (attaching files is then not offered)."""
    return None if settings.evidence_dir is None else DirectoryStore(settings.evidence_dir)
