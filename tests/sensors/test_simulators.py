"""The fleet simulators: a seeded fleet, valid events, the scenarios' stories, and one run on real brokers."""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer
from paho.mqtt.enums import CallbackAPIVersion

from ioc import codecs, topics
from ioc.events import (
    MEASURES,
    CameraEvent,
    CameraEventType,
    CitizenReport,
    DossierStatus,
    SensorReading,
    ServiceRecord,
)
from ioc.reference import default_reference_model
from ioc.settings import KafkaEndpoint, MqttEndpoint
from ioc.snapshots import DirectoryStore
from ioc.units import UnknownUnitError, load_tree
from iocctl.cli import cli
from sensors.simulators import (
    Planned,
    Simulation,
    Volumes,
    build_fleet,
    generators,
    issue_credentials,
    parse_duration,
    parse_scenario,
    plan,
    resolve_scenarios,
    run,
    scenarios,
    seq_base,
    tally,
)
from sensors.simulators import dossiers as dossier_gen
from sensors.simulators.fleet import FLOOD_WARDS, DossierProfile, Fleet
from sensors.simulators.plan import IMPOSSIBLE_VALUES
from sensors.simulators.scenarios import ScenarioKind

TREE = load_tree("2024")
START = dt.datetime(2025, 6, 2, 8, 0, tzinfo=generators.LOCAL_TZ)  # a Monday morning, rush hour
SMALL = Volumes(reports_per_commune_hour=0.3, dossiers_per_commune_day=0.2, history_days=20.0, backfill_s=300.0)
VIETNAMESE = re.compile(r"[àáảãạăắằẳẵặâấầẩẫậđèéẻẽẹêếềểễệìíỉĩịòóỏõọôốồổỗộơớờởỡợùúủũụưứừửữựỳýỷỹỵ]", re.IGNORECASE)
FLOOD_ALERT = default_reference_model().rule("flood-level").above  # type: ignore[union-attr]
FLOOD_RISE = default_reference_model().rule("flood-rise")


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return build_fleet(766, TREE)


def simulation(fleet: Fleet, *texts: str, **overrides: Any) -> Simulation:
    options: dict[str, Any] = {
        "fleet": fleet,
        "start": START,
        "duration_s": 30 * 60.0,
        "speed": 60.0,
        "rate_per_s": 50.0,
        "volumes": SMALL,
        "scenarios": resolve_scenarios(texts, fleet),
    }
    options.update(overrides)
    return Simulation(**options)


@pytest.fixture(scope="module")
def demo_plan(fleet: Fleet) -> list[Planned]:
    return plan(simulation(fleet, "demo"))


def fingerprint(events: list[Planned]) -> list[tuple[float, str | None, bytes]]:
    return [(p.offset_s, p.sender, codecs.encode(p.event)) for p in events]


def readings(events: list[Planned], device: str) -> list[tuple[float, dict[str, float]]]:
    return [
        (p.offset_s, p.event.values)
        for p in events
        if isinstance(p.event, SensorReading) and p.event.device == device and not p.spoof
    ]


# --- the fleet -------------------------------------------------------------------------------------------------


def test_same_seed_same_fleet_byte_for_byte_and_another_seed_differs() -> None:
    assert build_fleet(766, TREE).to_json() == build_fleet(766, TREE).to_json()
    assert build_fleet(766, TREE).to_json() != build_fleet(767, TREE).to_json()


def test_fleet_covers_every_commune_and_the_scenario_wards(fleet: Fleet) -> None:
    assert len(fleet.units) == 91
    for ward in FLOOD_WARDS:
        assert fleet.in_unit(ward, "water"), ward
    for ward in ("25987", "25966"):
        assert fleet.in_unit(ward, "air"), ward
    for ward in ("25747", "25741", "25972"):
        assert fleet.in_unit(ward, "camera"), ward
    # Low-lying Dĩ An and Thuận An wards have more gauges than the rest of the province.
    gauges = collections.Counter(d.unit for d in fleet.of_kind("water"))
    low = [gauges[u.code] for u in fleet.units if u.district in ("724", "725")]
    high = [gauges[u.code] for u in fleet.units if u.district not in ("724", "725")]
    assert min(low) > max(high)
    # Cameras stand only along the corridors.
    assert {d.unit for d in fleet.of_kind("camera")} <= {u.code for u in fleet.units if u.road}


def test_fleet_identities_and_places_are_valid(fleet: Fleet) -> None:
    ids = [d.device for d in fleet.devices]
    assert len(ids) == len(set(ids))
    assert len(fleet.vendors) >= 5
    for vendor in fleet.vendor_ids:
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", vendor)
    for spec in fleet.devices:
        topics.mqtt_topic(spec.unit, spec.kind, spec.vendor, spec.device)  # every segment valid
        unit = TREE.get(spec.unit)
        assert abs(spec.lat - unit.lat) < 0.01
        assert abs(spec.lon - unit.lon) < 0.01
        if spec.kind == "water":
            assert spec.params["alert_m"] == FLOOD_ALERT


def test_fleet_on_a_subtree_and_with_a_shape() -> None:
    di_an = build_fleet(5, TREE, units=["724"])
    assert {u.code for u in di_an.units} == {c.code for c in TREE.children("724")}
    tiny = build_fleet(5, TREE, units=["25957", "25747"], per_commune={"water": 1}, corridor_cameras=1)
    kinds = collections.Counter((d.unit, d.kind) for d in tiny.devices)
    assert kinds == {("25957", "water"): 2, ("25957", "camera"): 1, ("25747", "water"): 1, ("25747", "camera"): 1}
    with pytest.raises(UnknownUnitError, match="99999"):
        build_fleet(5, TREE, units=["99999"])
    with pytest.raises(ValueError, match="drone"):
        build_fleet(5, TREE, per_commune={"drone": 1})


def test_every_ward_keeps_a_dossier_profile_and_some_lag(fleet: Fleet) -> None:
    profiles = collections.Counter(u.dossiers for u in fleet.units)
    assert profiles["late"] >= 2
    assert profiles["offline"] >= 2
    small = build_fleet(3, TREE, units=["724"])
    assert {"late", "offline"} <= {u.dossiers for u in small.units}


# --- the plan ----------------------------------------------------------------------------------------------------


def test_same_seed_same_plan_and_another_seed_differs(fleet: Fleet, demo_plan: list[Planned]) -> None:
    assert fingerprint(plan(simulation(fleet, "demo"))) == fingerprint(demo_plan)
    other = build_fleet(767, TREE)
    assert fingerprint(plan(simulation(other, "demo"))) != fingerprint(demo_plan)
    reseeded = plan(simulation(fleet, "demo", seed=1))
    assert fingerprint(reseeded) != fingerprint(demo_plan)


def test_every_planned_event_fits_its_contract(demo_plan: list[Planned]) -> None:
    kinds: collections.Counter[str] = collections.Counter()
    for planned in demo_plan:
        event = planned.event
        assert codecs.decode(codecs.encode(event), type(event)) == event
        kinds[type(event).__name__] += 1
        if isinstance(event, SensorReading | CameraEvent):
            assert event.observed_at == planned.at
            assert planned.sender is not None
    assert set(kinds) == {"SensorReading", "CameraEvent", "CitizenReport", "ServiceRecord"}
    offsets = [p.offset_s for p in demo_plan]
    assert offsets == sorted(offsets)
    assert offsets[0] >= 0
    assert offsets[-1] < 30 * 60


def test_ordinary_readings_are_plausible(fleet: Fleet) -> None:
    events = plan(simulation(fleet, duration_s=24 * 3600.0, speed=3600.0, rate_per_s=5.0))
    clear = default_reference_model().rule("flood-level").clear_below  # type: ignore[union-attr]
    for planned in events:
        if isinstance(planned.event, SensorReading):
            for name, value in planned.event.values.items():
                measure = MEASURES[name]
                assert measure.low <= value <= measure.high, (planned.event.device, name, value)
            level = planned.event.values.get("waterLevel")
            assert level is None or level < clear  # no flood without a flood scenario


def test_device_sequences_are_consecutive(fleet: Fleet, demo_plan: list[Planned]) -> None:
    seqs: dict[str, list[int]] = collections.defaultdict(list)
    for planned in demo_plan:
        event = planned.event
        if isinstance(event, SensorReading | CameraEvent) and not planned.spoof:
            seqs[f"{event.vendor}/{event.device}"].append(event.seq)
    assert len(seqs) == len(fleet.devices)
    for key, numbers in seqs.items():
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), key
    counted = tally(demo_plan)
    assert counted.last_seq == {k: v[-1] for k, v in seqs.items()}
    shifted = plan(simulation(fleet, "demo", first_seq=seq_base(START)))
    first = next(p.event for p in shifted if isinstance(p.event, SensorReading))
    assert first.seq == seq_base(START) > 10**10


def test_the_plan_aims_at_the_target_rate(fleet: Fleet) -> None:
    sim = simulation(fleet, duration_s=600.0, speed=1.0, rate_per_s=50.0, volumes=Volumes(0.1, 0.01, 10.0, 60.0))
    counted = tally(plan(sim))
    assert 0.85 * 50 < counted.total / sim.wall_s < 1.15 * 50


def test_devices_stay_inside_the_silence_rules_at_any_rate(fleet: Fleet) -> None:
    events = plan(simulation(fleet, duration_s=2 * 3600.0, speed=600.0, rate_per_s=1.0))
    last: dict[str, float] = {}
    gaps: dict[str, float] = collections.defaultdict(float)
    for planned in events:
        if isinstance(planned.event, SensorReading | CameraEvent):
            key = planned.event.device
            if key in last:
                gaps[key] = max(gaps[key], planned.offset_s - last[key])
            last[key] = planned.offset_s
    for spec in fleet.devices:
        assert gaps[spec.device] < (300.0 if spec.kind == "camera" else 600.0), spec.device


# --- scenarios: parsing -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "targets", "start", "duration"),
    [
        ("flood:25957@+10m", ScenarioKind.FLOOD, ("25957",), 600.0, None),
        ("pollution:25987,25966@+0m/60m", ScenarioKind.POLLUTION, ("25987", "25966"), 0.0, 3600.0),
        ("silent:vnpt-cam@+5m", ScenarioKind.SILENT, ("vnpt-cam",), 300.0, None),
        ("impossible:aq-25744-01@+1m", ScenarioKind.IMPOSSIBLE, ("aq-25744-01",), 60.0, None),
        ("flood-device:tc-25744-01@+90s/2m", ScenarioKind.FLOOD_DEVICE, ("tc-25744-01",), 90.0, 120.0),
        ("violations:25747,25741@+3m", ScenarioKind.VIOLATIONS, ("25747", "25741"), 180.0, None),
        ("spoof:lotus-vision,aq-25741-01@+2m", ScenarioKind.SPOOF, ("lotus-vision", "aq-25741-01"), 120.0, None),
        (" flood:25957@1h30m ", ScenarioKind.FLOOD, ("25957",), 5400.0, None),
    ],
)
def test_scenario_strings_parse(
    text: str, kind: ScenarioKind, targets: tuple[str, ...], start: float, duration: float | None
) -> None:
    scenario = parse_scenario(text)
    assert (scenario.kind, scenario.targets, scenario.start_s, scenario.duration_s) == (kind, targets, start, duration)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("flood", "expected <kind>:<targets>"),
        ("demo", "is a preset"),
        ("earthquake:25957@+1m", "unknown kind 'earthquake'"),
        ("flood:25957", "no start time"),
        ("flood:@+1m", "names no target"),
        ("pollution:25987,,25966@+1m", "names no target"),
        ("flood:2595@+1m", "'2595' is not a commune code"),
        ("flood:25957,25951@+1m", "flood takes one commune"),
        ("flood:25957@+10x", "bad start time '+10x'"),
        ("pollution:25987@+0m/soon", "bad duration 'soon'"),
        ("flood:25957@+1m/0m", "longer than zero"),
        ("silent:Bad Vendor@+1m", "'Bad Vendor' is not"),
        ("spoof:lotus-vision,a,b@+1m", "spoof takes"),
        ("impossible:a,b@+1m", "takes one target"),
    ],
)
def test_bad_scenario_strings_name_the_bad_part(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        parse_scenario(text)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("flood:25741@+1m", "commune 25741 is not covered"),
        ("silent:nobody@+1m", "'nobody' is neither a vendor nor a device"),
        ("impossible:cam-25957-01@+1m", "for sensors, not cameras"),
        ("flood-device:aq-00000-01@+1m", "'aq-00000-01' is not a device"),
        ("spoof:lotus-vision,cam-25957-01@+1m", "belongs to lotus-vision itself"),
        ("spoof:acme@+1m", "'acme' is not a vendor"),
    ],
)
def test_scenario_targets_must_exist_in_the_fleet(text: str, complaint: str) -> None:
    di_an = build_fleet(766, TREE, units=["724"])
    with pytest.raises(ValueError, match=re.escape(complaint)):
        resolve_scenarios([text], di_an)


def test_durations_parse() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("1h30m") == 5400
    assert parse_duration("2d") == 172800
    assert parse_duration("0.5m") == 30
    for bad in ("", "10", "m", "10m5", "1x"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


def test_the_demo_preset_tells_stories_1_2_3_and_5(fleet: Fleet) -> None:
    chosen = {s.kind: s for s in resolve_scenarios(["demo"], fleet)}
    assert set(chosen) == set(ScenarioKind)
    assert chosen[ScenarioKind.FLOOD].targets == ("25957",)
    assert chosen[ScenarioKind.FLOOD].start_s == 600
    assert chosen[ScenarioKind.POLLUTION].targets == ("25987", "25966")
    assert chosen[ScenarioKind.POLLUTION].length_s == 3600
    assert set(chosen[ScenarioKind.VIOLATIONS].targets) == {"25747", "25741", "25972"}
    assert chosen[ScenarioKind.SILENT].start_s == 300
    assert fleet.device(chosen[ScenarioKind.SILENT].targets[0]).kind == "camera"
    assert chosen[ScenarioKind.IMPOSSIBLE].start_s == 60
    assert chosen[ScenarioKind.FLOOD_DEVICE].start_s == 60
    impostor, victim = chosen[ScenarioKind.SPOOF].targets
    assert fleet.device(victim).vendor != impostor
    # A smaller fleet gets the parts it can tell.
    assert [s.kind for s in resolve_scenarios(["demo"], build_fleet(766, TREE, units=["724"]))] == [
        ScenarioKind.FLOOD,
        ScenarioKind.SILENT,
        ScenarioKind.IMPOSSIBLE,
        ScenarioKind.FLOOD_DEVICE,
        ScenarioKind.SPOOF,
    ]


# --- scenarios: the stories ---------------------------------------------------------------------------------------


def test_flood_gauge_crosses_the_alert_level_after_the_start_and_stays_above(fleet: Fleet) -> None:
    events = plan(simulation(fleet, "flood:25957@+10m", duration_s=3600.0))
    start, end = 600.0, 600.0 + 40 * 60
    gauge = readings(events, "wl-25957-01")
    assert all(v["waterLevel"] < FLOOD_ALERT for t, v in gauge if t < start)
    above = [t for t, v in gauge if v["waterLevel"] > FLOOD_ALERT]
    assert above
    first = above[0]
    assert start < first <= start + scenarios.FLOOD_RISE_S
    assert all(v["waterLevel"] > FLOOD_ALERT for t, v in gauge if first <= t < end)
    # It rises fast: more than the rate-of-change rule's rise within its window.
    window = FLOOD_RISE.per_minutes * 60  # type: ignore[union-attr]
    rise = max(
        later["waterLevel"] - earlier["waterLevel"]
        for t0, earlier in gauge
        for t1, later in gauge
        if 0 < t1 - t0 <= window
    )
    assert rise >= FLOOD_RISE.rise  # type: ignore[union-attr]
    assert any(v["rainfall"] > 20 for t, v in gauge if start <= t < end)
    # Only the Đông Hòa gauge floods: one incident, not one per gauge.
    for spec in fleet.of_kind("water"):
        if spec.device != "wl-25957-01":
            assert all(v["waterLevel"] < FLOOD_ALERT for _, v in readings(events, spec.device)), spec.device


def test_flood_brings_citizen_reports_and_a_stalled_camera(fleet: Fleet) -> None:
    events = plan(simulation(fleet, "flood:25957@+10m", duration_s=3600.0, volumes=Volumes(0.0, 0.0)))
    reports = [p for p in events if isinstance(p.event, CitizenReport)]
    assert len(reports) == 3
    assert {p.event.unit for p in reports} == {"25957", "25951"}  # Đông Hòa and its neighbour Bình An
    for planned in reports:
        report = planned.event
        assert isinstance(report, CitizenReport)
        assert 600 + 120 <= planned.offset_s < 600 + 300
        assert report.category == "flooding"
        assert VIETNAMESE.search(report.text)
        unit = TREE.get(report.unit)
        assert report.lat is not None and abs(report.lat - unit.lat) < 0.01
        assert report.lon is not None and abs(report.lon - unit.lon) < 0.01
    stalled = [p for p in events if isinstance(p.event, CameraEvent) and p.scenario == "flood:25957@+10m"]
    assert len(stalled) == scenarios.FLOOD_CAMERA_EVENTS
    assert all(p.event.event_type is CameraEventType.OBSTRUCTION for p in stalled)  # type: ignore[union-attr]
    assert len({p.event.device for p in stalled if isinstance(p.event, CameraEvent)}) == 1
    assert min(p.offset_s for p in stalled) >= 600 + 300 - 5
    camera = fleet.device(stalled[0].event.device)  # type: ignore[union-attr]
    assert TREE.get(camera.unit).parent == "724"


def test_pollution_pm25_climbs_through_the_aqi_bands(fleet: Fleet) -> None:
    start, length = 300.0, 3600.0
    events = plan(simulation(fleet, "pollution:25987,25966@+5m/60m", duration_s=3 * 3600.0))
    breakpoints = (25.0, 50.0, 80.0, 150.0)
    for ward in ("25987", "25966"):
        for spec in fleet.in_unit(ward, "air"):
            series = readings(events, spec.device)
            assert all(v["pm25"] < 80 for t, v in series if t < start)
            climb = [(t, v["pm25"]) for t, v in series if start <= t < start + length + 1800]
            first = [next(t for t, pm25 in climb if pm25 >= bp) for bp in breakpoints]
            assert first == sorted(first)
            assert all(t > start for t in first[1:])
            assert max(pm25 for _, pm25 in climb) > 150
            # ... and clears once the episode is over.
            assert all(v["pm25"] < 80 for t, v in series if t > start + length + 3600 + 300)


def test_silent_impossible_and_flooding_devices(fleet: Fleet) -> None:
    events = plan(
        simulation(
            fleet,
            "silent:cam-25750-01@+5m",
            "impossible:aq-25744-01@+1m",
            "flood-device:tc-25744-01@+1m/5m",
            "silent:mekong-hydro@+20m",
        )
    )
    camera = [p.offset_s for p in events if isinstance(p.event, CameraEvent) and p.event.device == "cam-25750-01"]
    assert camera and max(camera) < 300
    hydro = [p.offset_s for p in events if isinstance(p.event, SensorReading) and p.event.vendor == "mekong-hydro"]
    assert hydro and max(hydro) < 1200
    air = readings(events, "aq-25744-01")
    assert all(v["pm25"] < 2000 for t, v in air if t < 60)
    assert all(v["pm25"] == IMPOSSIBLE_VALUES["air"]["pm25"] for t, v in air if t >= 60)
    assert any(t >= 60 for t, _ in air)
    counter = [t for t, _ in readings(events, "tc-25744-01")]
    inside = sum(1 for t in counter if 60 <= t < 360)
    outside = sum(1 for t in counter if t >= 360)
    assert inside / 300 >= 100 * (outside / (1800 - 360))


def test_violation_burst_repeats_one_plate_at_one_junction(fleet: Fleet) -> None:
    events = plan(simulation(fleet, "violations:25747@+3m", volumes=Volumes(0.0, 0.0)))
    burst = [p.event for p in events if p.scenario == "violations:25747@+3m"]
    assert len(burst) >= 10
    assert all(isinstance(e, CameraEvent) and e.device == "cam-25747-01" for e in burst)
    plates = collections.Counter(e.plate for e in burst if isinstance(e, CameraEvent))
    plate, repeats = plates.most_common(1)[0]
    assert repeats >= 3
    assert plate is not None and plate.startswith("61")
    camera = fleet.device("cam-25747-01")
    for event in burst:
        assert isinstance(event, CameraEvent)
        assert event.lat is not None and abs(event.lat - camera.lat) < 0.001  # within about 100 m


def test_camera_plates_speeds_and_confidences_look_real(demo_plan: list[Planned]) -> None:
    cameras = [p.event for p in demo_plan if isinstance(p.event, CameraEvent) and not p.spoof]
    violations = [e for e in cameras if e.plate is not None]
    assert len(violations) > 50
    for event in violations:
        assert re.fullmatch(generators.PLATE_PATTERN, event.plate or ""), event.plate
        if event.event_type is CameraEventType.SPEEDING:
            assert event.speed_kmh is not None and event.speed_limit_kmh is not None
            assert event.speed_kmh > event.speed_limit_kmh
    local = sum(1 for e in violations if (e.plate or "").startswith("61"))
    assert local / len(violations) > 0.6
    assert {e.event_type for e in violations} == {
        CameraEventType.RED_LIGHT,
        CameraEventType.WRONG_LANE,
        CameraEventType.NO_HELMET,
        CameraEventType.SPEEDING,
    }


def test_spoof_attempts_publish_as_another_vendor(demo_plan: list[Planned]) -> None:
    spoofs = [p for p in demo_plan if p.spoof]
    assert len(spoofs) == 3
    for planned in spoofs:
        assert isinstance(planned.event, SensorReading | CameraEvent)
        assert planned.sender == "lotus-vision" != planned.event.vendor
        assert planned.offset_s >= 120


# --- citizens and dossiers ----------------------------------------------------------------------------------------


def test_citizen_reports_are_vietnamese_and_located(fleet: Fleet) -> None:
    events = plan(simulation(fleet, duration_s=3 * 3600.0, speed=3600.0, volumes=Volumes(1.0, 0.0)))
    reports = [p.event for p in events if isinstance(p.event, CitizenReport)]
    assert len(reports) > 100
    categories = set(default_reference_model().report_categories)
    assert {r.category for r in reports} <= categories
    assert len({r.category for r in reports}) >= 6
    assert {r.source for r in reports} <= {"app", "hotline", "web", "open311"}
    assert len({r.report_id for r in reports}) == len(reports)
    for report in reports:
        assert VIETNAMESE.search(report.text), report.text
        assert report.address and TREE.get(report.unit).name in report.address
        if report.lat is not None and report.lon is not None:
            assert abs(report.lat - TREE.get(report.unit).lat) < 0.01
        if report.source == "hotline":
            assert report.contact is not None and report.contact.phone
    assert any(r.contact is None for r in reports)


_NEXT: dict[DossierStatus, set[DossierStatus]] = {
    DossierStatus.RECEIVED: {DossierStatus.IN_PROGRESS},
    DossierStatus.IN_PROGRESS: {DossierStatus.SUPPLEMENT_REQUESTED, DossierStatus.PROCESSED, DossierStatus.RETURNED},
    DossierStatus.SUPPLEMENT_REQUESTED: {DossierStatus.IN_PROGRESS},
    DossierStatus.PROCESSED: {DossierStatus.PROCESSED},  # a later snapshot with the citizen's rating
    DossierStatus.RETURNED: {DossierStatus.RETURNED},
}
_FIXED = ("unit", "procedure_code", "channel", "received_at", "due_at", "requires_payment", "paid_online")


def test_dossier_sequences_are_consistent(demo_plan: list[Planned]) -> None:
    by_dossier: dict[str, list[ServiceRecord]] = collections.defaultdict(list)
    for planned in demo_plan:
        if isinstance(planned.event, ServiceRecord):
            by_dossier[planned.event.dossier_id].append(planned.event)
    assert len(by_dossier) > 200
    statuses = collections.Counter(r.status for records in by_dossier.values() for r in records)
    assert statuses[DossierStatus.PROCESSED] and statuses[DossierStatus.SUPPLEMENT_REQUESTED]
    for dossier_id, records in by_dossier.items():
        first = records[0]
        assert [r.status_version for r in records] == list(range(1, len(records) + 1)), dossier_id
        assert first.status is DossierStatus.RECEIVED
        assert dt.timedelta(hours=1) < first.due_at - first.received_at < dt.timedelta(days=14)
        for earlier, later in itertools.pairwise(records):
            assert later.status in _NEXT[earlier.status], (dossier_id, earlier.status, later.status)
            assert later.occurred_at >= earlier.occurred_at
            assert later.supplement_count >= earlier.supplement_count
            assert later.supplement_days >= earlier.supplement_days
            assert all(getattr(later, f) == getattr(first, f) for f in _FIXED)
            assert earlier.satisfaction is None
        for record in records:
            if record.finished_at is not None:
                assert record.finished_at >= first.received_at


def test_late_and_offline_wards_are_late_and_offline() -> None:
    def shares(profile: DossierProfile) -> tuple[float, float]:
        late = online = 0
        for n in range(600):
            rng = generators.seeded(1, profile, n)
            records = dossier_gen.dossier_events(
                rng, dossier_id=f"d{n}", unit="25957", profile=profile, received_at=START
            )
            final = next(r for r in records if r.finished_at is not None)
            assert final.finished_at is not None
            late += final.finished_at - dt.timedelta(days=final.supplement_days) > final.due_at
            online += final.channel == "online"
        return late / 600, online / 600

    typical_late, typical_online = shares("typical")
    late_late, _ = shares("late")
    _, offline_online = shares("offline")
    assert late_late > 3 * typical_late
    assert offline_online < typical_online / 2


def test_the_month_of_dossiers_is_replayed_at_the_start_and_in_order(fleet: Fleet, demo_plan: list[Planned]) -> None:
    past = [p for p in demo_plan if isinstance(p.event, ServiceRecord) and p.event.occurred_at < START]
    assert past and max(p.offset_s for p in past) <= SMALL.backfill_s
    assert min(p.event.occurred_at for p in past) < START - dt.timedelta(days=10)  # type: ignore[union-attr]
    present = [p for p in demo_plan if isinstance(p.event, ServiceRecord) and p.event.occurred_at >= START]
    for planned in present:
        assert planned.offset_s >= (planned.event.occurred_at - START).total_seconds() - 0.001  # type: ignore[union-attr]


# --- the command line ---------------------------------------------------------------------------------------------


def test_cli_dry_run_prints_the_plan_without_brokers() -> None:
    result = CliRunner().invoke(
        cli, ["simulate", "--dry-run", "--units", "724", "--duration", "20m", "--speed", "60", "--scenario", "demo"]
    )
    assert result.exit_code == 0, result.output
    assert "devices on 7 communes" in result.output
    assert "scenario flood:25957@+10m" in result.output
    assert "plan:" in result.output


def test_cli_errors_are_one_clear_line(tmp_path: Any) -> None:
    runner = CliRunner()
    cases = [
        (["simulate", "--stack", str(tmp_path), "--duration", "1m"], "not running"),
        (["simulate", "--dry-run", "--scenario", "flood:25957"], "no start time"),
        (["simulate", "--dry-run", "--units", "999"], "no unit with code '999'"),
        (["simulate", "--dry-run", "--duration", "10"], "bad duration '10'"),
    ]
    for argv, message in cases:
        result = runner.invoke(cli, argv)
        assert result.exit_code == 1, result.output
        assert message in result.output
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1


# --- against the real brokers -------------------------------------------------------------------------------------


class _Listener:
    """Counts the device messages the broker delivers to a reader with the bridge's credentials."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.topics: collections.Counter[str] = collections.Counter()
        self.cameras: list[bytes] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(info["bridge_user"], info["bridge_password"])
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        # The bridge's login may only join a share group (its own group here: every message reaches it).
        group = f"t-{uuid.uuid4().hex[:8]}"
        self.client.on_connect = lambda c, *_a: c.subscribe(topics.mqtt_shared_subscription(group), qos=1)
        self.client.on_message = self._on_message
        self.client.connect(info["host"], info["port"])
        self.client.loop_start()
        assert subscribed.wait(10)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.topics[message.topic] += 1
            if f"/{topics.CAMERA_KIND}/" in message.topic:
                self.cameras.append(message.payload)

    def total(self) -> int:
        with self.lock:
            return sum(self.topics.values())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_tiny_fleet_runs_through_real_brokers(
    mosquitto: dict[str, Any], kafka: dict[str, Any], tmp_path: Path
) -> None:
    tiny = build_fleet(11, TREE, units=["25957", "25747"], per_commune={"air": 1, "water": 1}, corridor_cameras=1)
    start = dt.datetime.now(generators.LOCAL_TZ).replace(microsecond=0)
    sim = Simulation(
        fleet=tiny,
        start=start,
        duration_s=120.0,
        speed=40.0,
        rate_per_s=40.0,
        scenarios=resolve_scenarios(["spoof:lotus-vision,aq-25747-01@+30s"], tiny),
        volumes=Volumes(reports_per_commune_hour=90.0, dossiers_per_commune_day=0.3, history_days=10.0, backfill_s=20),
        first_seq=seq_base(start),
    )
    expected = plan(sim)
    honest = tally(expected)
    reports = {p.event.report_id for p in expected if isinstance(p.event, CitizenReport)}
    records = {(p.event.dossier_id, p.event.status_version) for p in expected if isinstance(p.event, ServiceRecord)}
    assert reports and records and honest.spoofs == 3
    admin = MqttEndpoint(
        host=mosquitto["host"],
        port=mosquitto["port"],
        username=mosquitto["admin_user"],
        password=mosquitto["admin_password"],
    )
    passwords = issue_credentials(admin, tiny.vendor_ids)
    listener = _Listener(mosquitto)
    try:
        summary = run(
            sim,
            mqtt=MqttEndpoint(host=mosquitto["host"], port=mosquitto["port"]),
            kafka=KafkaEndpoint.from_service(kafka),  # as `ioc simulate`: the admin (writes reports and records)
            passwords=passwords,
            snapshot_store=DirectoryStore(tmp_path / "snapshots"),
        )
        assert summary.ok, summary.describe()
        assert summary.sent.by_device == honest.by_device
        assert summary.sent.last_seq == honest.last_seq
        assert summary.spoof_refused == 3  # the broker refused every publish under another vendor's topic
        assert summary.kafka_delivered[topics.CITIZEN_REPORTS.name] == len(reports)
        assert summary.kafka_delivered[topics.SERVICE_RECORDS.name] == len(records)
        devices = sum(honest.by_device.values())
        deadline = time.monotonic() + 10
        while listener.total() < devices and time.monotonic() < deadline:
            time.sleep(0.1)
        assert listener.total() == devices  # and none of the refused spoofs
        # Each camera event references its generated image, which the snapshot store holds.
        cameras = [codecs.decode(payload, CameraEvent) for payload in listener.cameras]
        assert len(cameras) == sum(1 for p in expected if isinstance(p.event, CameraEvent) and not p.spoof) > 0
        store = DirectoryStore(tmp_path / "snapshots")
        for event in cameras:
            assert event.snapshot is not None
            image = store.get(event.snapshot)
            assert image is not None and image.startswith(b"\xff\xd8\xff")
    finally:
        listener.close()
    consumer = Consumer(
        {
            **KafkaEndpoint.from_service(kafka).client_config(),
            "group.id": f"simulators-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topics.CITIZEN_REPORTS.name, topics.SERVICE_RECORDS.name])
    seen_reports: set[str] = set()
    seen_records: set[tuple[str, int]] = set()
    deadline = time.monotonic() + 30
    try:
        while (seen_reports < reports or seen_records < records) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() or message.value() is None:
                continue
            value, key_bytes = message.value() or b"", message.key() or b""
            try:
                event = msgspec.json.decode(value)
            except msgspec.DecodeError:
                continue  # the session's broker is shared: attack tests forge undecodable records on these topics
            if not isinstance(event, dict):
                continue
            if event.get("schema") == "ioc.citizen-report.v1" and event["report_id"] in reports:
                assert key_bytes.decode() == event["report_id"]
                seen_reports.add(event["report_id"])
            elif event.get("schema") == "ioc.service-record.v1":
                key = (event["dossier_id"], event["status_version"])
                if key in records:
                    assert key_bytes.decode() == event["dossier_id"]
                    seen_records.add(key)
    finally:
        consumer.close()
    assert seen_reports == reports
    assert seen_records == records
