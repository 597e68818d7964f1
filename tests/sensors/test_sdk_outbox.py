"""The SDK's disk queue on its own: order, removal, each device's next sequence, reopening, one client per file."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensors.sdk.outbox import DiskOutbox


def test_messages_wait_in_order_until_removed_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "q" / "outbox.sqlite3"
    outbox = DiskOutbox(path)
    numbers = [outbox.add(f"t/{i}", f"m{i}".encode(), device=("acme", "d1", i + 1)) for i in range(5)]
    outbox.remove(numbers[:2])
    assert [(t, p) for _n, t, p in outbox.after(0, 10)] == [("t/2", b"m2"), ("t/3", b"m3"), ("t/4", b"m4")]
    assert [n for n, _t, _p in outbox.after(numbers[3], 10)] == [numbers[4]]
    outbox.close()
    again = DiskOutbox(path, sync="normal")
    assert again.waiting() == 3 and again.newest() == numbers[4]
    assert again.next_seq("acme", "d1") == 5 and again.next_seq("acme", "d2") is None
    again.remove(numbers[2:])
    assert again.add("t/5", b"m5") > numbers[4]  # a number is never reused, so order holds across an empty queue
    again.close()


def test_a_second_client_on_the_same_file_is_refused(tmp_path: Path) -> None:
    first = DiskOutbox(tmp_path / "outbox.sqlite3")
    first.add("t", b"m")
    with pytest.raises(RuntimeError, match="in use by another client"):
        DiskOutbox(tmp_path / "outbox.sqlite3")
    first.close()
