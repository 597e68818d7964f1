"""The agents' per-partition state over a Faust table (a plain dict stands in for the table's mapping)."""

from __future__ import annotations

from streams.agents.common import PartitionedState


def _states(table: dict[bytes, bytes]) -> PartitionedState[list[str]]:
    return PartitionedState(
        table,
        decode=lambda raw: raw.decode().split(","),
        encode=lambda state: ",".join(state).encode(),
        partition_of=lambda key: int(key[-1]) % 2,
    )


def test_get_reads_through_once_and_save_writes_only_what_changed() -> None:
    table = {b"dev1": b"a,b"}
    states = _states(table)
    stored = states.get(1, "dev1", list)
    assert stored == ["a", "b"]
    table[b"dev1"] = b"changed elsewhere"
    assert states.get(1, "dev1", list) is stored  # cached after the first read
    fresh = states.get(1, "dev3", lambda: ["first"])
    assert fresh == ["first"]
    states.save(1)
    assert b"dev3" not in table  # nothing marked, nothing written
    fresh.append("x")
    states.mark(1, "dev3")
    assert states.changed(1) == [("dev3", ["first", "x"])]
    states.save(1)
    assert table[b"dev3"] == b"first,x"
    assert states.changed(1) == []


def test_load_brings_in_every_stored_state_of_its_partition_only() -> None:
    table = {b"dev1": b"one", b"dev2": b"two", b"dev3": b"three"}
    states = _states(table)
    cached = states.get(1, "dev1", list)
    loaded = states.load(1)
    assert loaded == {"dev1": ["one"], "dev3": ["three"]}
    assert loaded["dev1"] is cached  # a cached (possibly newer) state is not replaced by the stored one
    assert states.load(0) == {"dev2": ["two"]}


def test_drop_forgets_a_partitions_unsaved_changes_so_replayed_events_apply_again() -> None:
    table = {b"dev1": b"a"}
    states = _states(table)
    state = states.get(1, "dev1", list)
    state.append("applied-then-revoked")
    states.mark(1, "dev1")
    other = states.get(0, "dev0", lambda: ["kept"])
    states.drop(1)
    assert states.changed(1) == []
    assert states.get(1, "dev1", list) == ["a"]  # as last saved
    assert states.get(0, "dev0", list) is other  # another partition keeps its cache
    assert "dev1" in states.load(1)
