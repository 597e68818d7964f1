"""Content-addressed file stores: bytes kept by their SHA-256 and type, on disk or in memory.

The one seam (STYLE.md 7) behind camera snapshots (ioc.snapshots) and resolution evidence (dashboards.evidence):
a `Shelf` says what a store takes (types by their bytes' signature, a size limit, the key's pattern and the
words of its refusals); `DirectoryStore` keeps files under a directory and `MemoryStore` serves unit tests; a
bucket would be a third implementation of `put` and `get`. A key is the content's hash and type, so a second
put of the same bytes names the same file, nothing is ever overwritten with other content, and a key read back
from the warehouse cannot name a path outside the store (it is checked against the pattern first). A directory
spreads the files over 256 sub-directories by the key's first two characters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final

__all__ = ["SIGNATURES", "BlobError", "DirectoryStore", "MemoryStore", "Shelf"]

SIGNATURES: Final[Mapping[str, tuple[bytes, str]]] = {
    "jpg": (b"\xff\xd8\xff", "a JPEG image"),
    "png": (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    "pdf": (b"%PDF-", "a PDF file"),
}
"""The types a store may take, by the signature their bytes start with (a file name's extension is not trusted)."""


class BlobError(ValueError):
    """Bytes a store does not take, or a key that names nothing it could hold; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class Shelf:
    """What one store takes, and how its refusals read."""

    noun: str
    """What one item is called in messages ("snapshot", "evidence")."""
    types: frozenset[str]
    max_bytes: int
    key_pattern: str
    unknown_type: str
    """The refusal of bytes of none of the types."""
    error: type[BlobError] = BlobError
    file_mode: int = 0o600
    """Files are readable by their owner only unless the store's readers run as someone else."""

    @property
    def _article(self) -> str:
        return "an" if self.noun[:1] in "aeiou" else "a"

    def key_for(self, data: bytes, kind: str | None = None) -> str:
        """The key `data` is stored under: its SHA-256 and type (`kind`, or found from its signature)."""
        if kind is None:
            kind = next((t for t in sorted(self.types) if data.startswith(SIGNATURES[t][0])), None)
            if kind is None:
                raise self.error(self.unknown_type)
        elif kind not in self.types:
            raise self.error(f"{self.noun}s are {' or '.join(sorted(self.types))}, not {kind!r}")
        elif not data.startswith(SIGNATURES[kind][0]):
            raise self.error(f"the bytes are not {SIGNATURES[kind][1]} (wrong signature)")
        if len(data) > self.max_bytes:
            raise self.error(f"{self._article} {self.noun} is at most {self.max_bytes} bytes, this one is {len(data)}")
        return f"{hashlib.sha256(data).hexdigest()}.{kind}"

    def checked(self, key: str) -> str:
        if not re.match(self.key_pattern, key):
            raise self.error(f"{key!r} is not {self._article} {self.noun} key (SHA-256 hex, then its type)")
        return key


class DirectoryStore:
    """Items as files under `root` (`root/ab/ab…64….jpg`), written whole or not at all."""

    def __init__(self, root: Path, shelf: Shelf) -> None:
        self.root = root
        self.shelf = shelf

    def path(self, key: str) -> Path:
        key = self.shelf.checked(key)
        return self.root / key[:2] / key

    def put(self, data: bytes, kind: str | None = None) -> str:
        """Store `data` (idempotent) and return its key; `kind` None: the type its signature shows."""
        key = self.shelf.key_for(data, kind)
        target = self.path(key)
        if target.exists():
            return key
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.chmod(temporary, self.shelf.file_mode)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return key

    def get(self, key: str) -> bytes | None:
        """The item's bytes, or None when the store does not hold it."""
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None


class MemoryStore:
    """Items in a dict, for unit tests of code that puts or reads them."""

    def __init__(self, shelf: Shelf) -> None:
        self.shelf = shelf
        self.items: dict[str, bytes] = {}

    def put(self, data: bytes, kind: str | None = None) -> str:
        key = self.shelf.key_for(data, kind)
        self.items[key] = data
        return key

    def get(self, key: str) -> bytes | None:
        return self.items.get(self.shelf.checked(key))
