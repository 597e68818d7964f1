"""Content-addressed stores (ioc.blobstore): one seam, shelves that differ in what they take and who may read."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dashboards import evidence
from ioc import snapshots

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
PDF = b"%PDF-1.7\n" + b"\x00" * 32


def test_each_shelf_takes_its_own_types_and_says_why_not(tmp_path: Path) -> None:
    photos = evidence.DirectoryStore(tmp_path / "evidence")
    frames = snapshots.DirectoryStore(tmp_path / "snapshots")
    assert photos.put(PDF).endswith(".pdf")  # found from the signature
    assert photos.put(JPEG) == frames.put(JPEG, "jpg")  # the same bytes, the same key, in either store
    with pytest.raises(snapshots.SnapshotError, match="snapshots are jpg or png, not 'pdf'"):
        frames.put(PDF, "pdf")
    with pytest.raises(snapshots.SnapshotError, match="not a PNG image"):
        frames.put(JPEG, "png")
    with pytest.raises(evidence.EvidenceError, match="JPEG or PNG photos and PDF"):
        photos.put(b"GIF89a")


def test_evidence_is_private_to_its_owner_and_snapshots_are_readable_by_the_dashboards(tmp_path: Path) -> None:
    photos = evidence.DirectoryStore(tmp_path / "evidence")
    frames = snapshots.DirectoryStore(tmp_path / "snapshots")
    assert stat.S_IMODE(photos.path(photos.put(JPEG)).stat().st_mode) == 0o600
    assert stat.S_IMODE(frames.path(frames.put(JPEG, "jpg")).stat().st_mode) == 0o644


def test_a_key_cannot_name_a_path_outside_the_store(tmp_path: Path) -> None:
    photos = evidence.DirectoryStore(tmp_path / "evidence")
    for key in ("../../etc/passwd", "a" * 64 + "/x", ""):
        with pytest.raises(evidence.EvidenceError, match="is not an evidence key"):
            photos.get(key)
    assert photos.get("a" * 64 + ".jpg") is None  # well formed, not held
