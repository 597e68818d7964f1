"""The snapshot store (ioc.snapshots) and the camera event's `snapshot` reference: keys by content, refusals."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec
import pytest

from ioc import codecs
from ioc.events import CameraEvent, CameraEventType
from ioc.snapshots import DirectoryStore, MemoryStore, SnapshotError, key_for

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415478da63f8cfc0000003010100"
    "c9fe92ef0000000049454e44ae426082"
)
KEY = "466a934dd47512665d78aacab5dd0c4011dc253400b60b2898f45dab71ae12cf.png"


def test_a_snapshot_is_kept_by_its_content_once(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "snapshots")
    assert store.put(PNG, "png") == KEY == key_for(PNG, "png")
    path = tmp_path / "snapshots" / KEY[:2] / KEY
    assert path.read_bytes() == PNG
    before = path.stat().st_mtime_ns
    assert store.put(PNG, "png") == KEY  # the same bytes again: the same file, untouched
    assert path.stat().st_mtime_ns == before
    assert store.get(KEY) == PNG
    assert store.get("0" * 64 + ".jpg") is None
    assert [p.name for p in (tmp_path / "snapshots").rglob("*") if p.is_file()] == [KEY]  # no temporary left


@pytest.mark.parametrize("store", [DirectoryStore(Path("/nonexistent")), MemoryStore()])
def test_keys_that_name_no_snapshot_are_refused_before_any_file_is_touched(store: DirectoryStore | MemoryStore) -> None:
    for key in ("../../etc/passwd", KEY.upper(), KEY.replace(".png", ".gif"), KEY[:-4], f"{KEY}/x"):
        with pytest.raises(SnapshotError, match="is not a snapshot key"):
            store.get(key)


def test_only_small_jpeg_or_png_images_are_taken() -> None:
    store = MemoryStore()
    with pytest.raises(SnapshotError, match="not a JPEG image"):
        store.put(PNG, "jpg")
    with pytest.raises(SnapshotError, match="jpg or png"):
        store.put(PNG, "gif")  # type: ignore[arg-type]
    with pytest.raises(SnapshotError, match="at most"):
        store.put(b"\xff\xd8\xff" + bytes(3 * 1024 * 1024), "jpg")
    assert store.put(PNG, "png") == KEY and store.get(KEY) == PNG


def _event(**fields: object) -> dict[str, object]:
    return {
        "vendor": "cam-vendor",
        "device": "cam-1",
        "unit": "25957",
        "seq": 1,
        "observed_at": dt.datetime(2026, 12, 7, tzinfo=dt.UTC).isoformat(),
        "event_type": CameraEventType.ACCIDENT.value,
        "confidence": 0.9,
        **fields,
    }


def test_a_camera_event_references_its_snapshot_by_key_only() -> None:
    event = codecs.decode(msgspec.json.encode(_event(snapshot=KEY)), CameraEvent)
    assert event.snapshot == KEY
    assert codecs.decode(msgspec.json.encode(_event()), CameraEvent).snapshot is None  # optional: older gateways
    for bad in ("https://gw.example.vn/a.jpg", KEY.replace(".png", ".gif"), "ab.jpg"):
        with pytest.raises(codecs.ContractError, match="snapshot"):
            codecs.decode(msgspec.json.encode(_event(snapshot=bad)), CameraEvent)
