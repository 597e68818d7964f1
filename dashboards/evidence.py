"""A site's evidence store: photos and files attached to resolutions, kept by content, served to operators.

A small seam (STYLE.md 7): `EvidenceStore` is `put` and `get`; `DirectoryStore` keeps files under a directory
(`DashboardSettings.evidence_dir`: a volume, or a bucket mounted as one), `MemoryStore` serves unit tests, and an
object store would be a third implementation. Keys are the bytes' SHA-256 and their type
(`ioc.events.EVIDENCE_KEY_PATTERN`): the incident carries only keys (`Incident.evidence`), a second upload of the
same photo names the same file, and a key read back from the warehouse cannot name a path outside the store.
Only the dashboard reads the store, for operators of the incident's units (each view audited by the page).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Final, Protocol

from ioc.events import EVIDENCE_KEY_PATTERN
from ioc.settings import DashboardSettings

__all__ = [
    "IMAGE_TYPES",
    "MAX_BYTES",
    "TYPES",
    "DirectoryStore",
    "EvidenceError",
    "EvidenceStore",
    "MemoryStore",
    "key_for",
    "store_for",
]

MAX_BYTES: Final = 10 * 1024 * 1024
"""The largest file taken: a phone photo or a scanned page, not a video."""
TYPES: Final[dict[str, bytes]] = {
    "jpg": b"\xff\xd8\xff",
    "png": b"\x89PNG\r\n\x1a\n",
    "pdf": b"%PDF-",
}
"""The file types taken, by the signature their bytes start with (the name's extension is not trusted)."""
IMAGE_TYPES: Final = frozenset({"jpg", "png"})
_KEY = re.compile(EVIDENCE_KEY_PATTERN)


class EvidenceError(ValueError):
    """A file that cannot be stored, or a key that names none; the message says which and why."""


def key_for(data: bytes) -> str:
    """The key `data` is stored under, or EvidenceError when it is not a JPEG, PNG or PDF, or too large."""
    if len(data) > MAX_BYTES:
        raise EvidenceError(f"a file is at most {MAX_BYTES // (1024 * 1024)} MB; this one is {len(data)} bytes")
    kind = next((name for name, magic in TYPES.items() if data.startswith(magic)), None)
    if kind is None:
        raise EvidenceError("only JPEG or PNG photos and PDF files are taken")
    return f"{hashlib.sha256(data).hexdigest()}.{kind}"


def _checked(key: str) -> str:
    if not _KEY.match(key):
        raise EvidenceError(f"{key!r} is not an evidence key (SHA-256 hex and a type)")
    return key


class EvidenceStore(Protocol):
    def put(self, data: bytes) -> str:
        """Store `data` (idempotent) and return its key."""
        ...

    def get(self, key: str) -> bytes | None:
        """The file's bytes, or None when the store does not hold it."""
        ...


class DirectoryStore:
    """Files under `root/<first two hex>/<key>`, written whole or not at all, readable by their owner only."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, data: bytes) -> str:
        key = key_for(data)
        target = self.root / key[:2] / key
        if target.exists():
            return key
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return key

    def get(self, key: str) -> bytes | None:
        key = _checked(key)
        try:
            return (self.root / key[:2] / key).read_bytes()
        except FileNotFoundError:
            return None


class MemoryStore:
    """Evidence in a dict, for unit tests."""

    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        key = key_for(data)
        self.items[key] = data
        return key

    def get(self, key: str) -> bytes | None:
        return self.items.get(_checked(key))


def store_for(settings: DashboardSettings) -> EvidenceStore | None:
    """The site's evidence store, or None when none is configured (attaching files is then not offered)."""
    return None if settings.evidence_dir is None else DirectoryStore(settings.evidence_dir)
