"""The snapshot store: camera images kept by their content's SHA-256, put by cameras, read by the dashboards.

A small seam (STYLE.md 7): `SnapshotStore` with a directory on disk (`DirectoryStore`, the local default) and
an in-memory one for unit tests; a bucket would be a third implementation of the same two methods.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Final, Literal, Protocol

from ioc.events import SNAPSHOT_KEY_PATTERN

# Keys are the bytes' SHA-256 and type (`CameraEvent.snapshot`): a re-delivered event or a second put of the
# same image names the same file, nothing is overwritten with other content, and a key read back from the
# warehouse cannot name a path outside the store (it is checked against the contract's pattern first). A
# directory spreads the files over 256 sub-directories by the key's first two characters.

__all__ = [
    "DEFAULT_DIR",
    "MAX_BYTES",
    "DirectoryStore",
    "MemoryStore",
    "SnapshotError",
    "SnapshotStore",
    "key_for",
]

DEFAULT_DIR: Final = Path.home() / ".local" / "share" / "ioc" / "snapshots"
"""Where the local stack keeps snapshots unless a setting says otherwise (the simulator's and dashboards')."""
MAX_BYTES: Final = 2 * 1024 * 1024
"""The largest snapshot the store takes: a camera's evidence frame, not a video."""
_KEY = re.compile(SNAPSHOT_KEY_PATTERN)
_MAGIC: Final = {"jpg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n"}
_NAMES: Final = {"jpg": "JPEG", "png": "PNG"}

ImageType = Literal["jpg", "png"]


class SnapshotError(ValueError):
    """A snapshot that cannot be stored or a key that names none; the message says which and why."""


def key_for(data: bytes, kind: ImageType) -> str:
    """The key `data` is stored under: its SHA-256 and type. Refuses bytes that are not a JPEG or PNG."""
    if kind not in _MAGIC:
        raise SnapshotError(f"snapshots are jpg or png, not {kind!r}")
    if not data.startswith(_MAGIC[kind]):
        raise SnapshotError(f"the bytes are not a {_NAMES[kind]} image (wrong signature)")
    if len(data) > MAX_BYTES:
        raise SnapshotError(f"a snapshot is at most {MAX_BYTES} bytes, this one is {len(data)}")
    return f"{hashlib.sha256(data).hexdigest()}.{kind}"


def _checked(key: str) -> str:
    if not _KEY.match(key):
        raise SnapshotError(f"{key!r} is not a snapshot key (SHA-256 hex, then .jpg or .png)")
    return key


class SnapshotStore(Protocol):
    """Where camera snapshots live."""

    def put(self, data: bytes, kind: ImageType) -> str:
        """Store `data` (idempotent) and return its key."""
        ...

    def get(self, key: str) -> bytes | None:
        """The snapshot's bytes, or None when the store does not have it."""
        ...


class DirectoryStore:
    """Snapshots as files under `root` (`root/ab/ab…64….jpg`), written whole or not at all."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        key = _checked(key)
        return self.root / key[:2] / key

    def put(self, data: bytes, kind: ImageType) -> str:
        key = key_for(data, kind)
        target = self.path(key)
        if target.exists():
            return key
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return key

    def get(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None


class MemoryStore:
    """Snapshots in a dict, for unit tests of code that puts or reads them."""

    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}

    def put(self, data: bytes, kind: ImageType) -> str:
        key = key_for(data, kind)
        self.items[key] = data
        return key

    def get(self, key: str) -> bytes | None:
        return self.items.get(_checked(key))
