"""The snapshot store: camera images kept by their content's SHA-256, put by cameras, read by the dashboards.

A shelf of ioc.blobstore (the seam: a directory on disk, the local default, or memory for unit tests): JPEG or
PNG frames up to 2 MB, keyed as `CameraEvent.snapshot` is (its pattern), readable by the dashboards' process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal, Protocol

from ioc import blobstore
from ioc.events import SNAPSHOT_KEY_PATTERN

__all__ = [
    "DEFAULT_DIR",
    "MAX_BYTES",
    "SHELF",
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

ImageType = Literal["jpg", "png"]


class SnapshotError(blobstore.BlobError):
    """A snapshot that cannot be stored or a key that names none; the message says which and why."""


SHELF: Final = blobstore.Shelf(
    noun="snapshot",
    types=frozenset({"jpg", "png"}),
    max_bytes=MAX_BYTES,
    key_pattern=SNAPSHOT_KEY_PATTERN,
    unknown_type="snapshots are JPEG or PNG images",
    error=SnapshotError,
    file_mode=0o644,  # the simulator writes, the dashboards (another user in a cluster) read
)


def key_for(data: bytes, kind: ImageType) -> str:
    """The key `data` is stored under: its SHA-256 and type. Refuses bytes that are not a JPEG or PNG."""
    return SHELF.key_for(data, kind)


class SnapshotStore(Protocol):
    """Where camera snapshots live."""

    def put(self, data: bytes, kind: str | None = None) -> str:
        """Store `data` (idempotent) and return its key."""
        ...

    def get(self, key: str) -> bytes | None:
        """The snapshot's bytes, or None when the store does not have it."""
        ...


class DirectoryStore(blobstore.DirectoryStore):
    """Snapshots as files under `root` (`root/ab/ab…64….jpg`), written whole or not at all."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, SHELF)


class MemoryStore(blobstore.MemoryStore):
    """Snapshots in a dict, for unit tests of code that puts or reads them."""

    def __init__(self) -> None:
        super().__init__(SHELF)
