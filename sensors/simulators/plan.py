"""The plan of a run: every event the simulators would send, in order, with its simulated time. Pure.

`iter_plan(simulation)` yields `Planned` events lazily in send order; `plan(simulation)` is the list.
Nothing here touches a broker or a clock: the runner (`runner`) replays a plan against real services at
the run's speed, and tests check a plan's determinism and contents directly. The same `Simulation`
(fleet, seed, start, duration, speed, rate, scenarios) gives the same plan.

How a plan is made:
- Citizen reports arrive at random through the run; public-service dossiers are generated for the past
  `history_days` and the run itself. Their snapshots from before the start are replayed in the first
  minutes of the run (`Volumes.backfill_s`) so a fresh platform shows a month of Decision 766 data.
- Every device reports on its own jittered schedule. Intervals are scaled together so the whole plan
  averages the target rate (messages per wall-clock second at the run's speed), but never so slow that the
  reference model's device-silence rules fire, nor so fast that one device passes the bridge's
  per-device rate limit (except the flood-device scenario, whose point that is).
- Scenarios bend values, add events and silence devices (`scenarios`).
- Each device's events carry consecutive sequence numbers from `first_seq`, as the SDK numbers them.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import heapq
import math
import random
from collections.abc import Iterable, Iterator, Mapping
from typing import Final

from ioc.events import CameraEvent, CameraEventType, CitizenReport, SensorKind, SensorReading, ServiceRecord
from ioc.reference import SilenceRule, default_reference_model
from ioc.settings import BridgeSettings
from sensors.simulators import citizens, dossiers, generators, scenarios
from sensors.simulators.fleet import DeviceSpec, Fleet, FleetUnit
from sensors.simulators.generators import Detection
from sensors.simulators.scenarios import Scenario, ScenarioKind

__all__ = [
    "IMPOSSIBLE_VALUES",
    "KINDS",
    "PlanEvent",
    "Planned",
    "Simulation",
    "Volumes",
    "iter_plan",
    "kind_of",
    "plan",
    "seq_base",
]

PlanEvent = SensorReading | CameraEvent | CitizenReport | ServiceRecord

KINDS: Final = ("air", "water", "noise", "traffic", "camera", "report", "dossier")

# Values no real sensor reports: the bridge must refuse them as `implausible-value` (ioc.events.MEASURES).
IMPOSSIBLE_VALUES: Final[Mapping[str, dict[str, float]]] = {
    "air": {"pm25": 99999.0, "pm10": -12.0},
    "water": {"waterLevel": 999.0, "rainfall": -5.0},
    "noise": {"LAeq": 999.0, "LAmax": 1200.0},
    "traffic": {"intensity": -40.0, "averageVehicleSpeed": 999.0},
}

_BRIDGE_DEVICE_RATE: Final[float] = BridgeSettings.model_fields["device_rate_per_s"].default
_STORY_INTERVAL_S: Final = 60.0  # devices a scenario drives report at least once a simulated minute
_FLOOD_FACTOR: Final = 100.0
_SEQ_EPOCH: Final = dt.datetime(2024, 1, 1, tzinfo=generators.LOCAL_TZ)


def seq_base(start: dt.datetime) -> int:
    """A first sequence number for a run starting at `start`: milliseconds since 2024-01-01 (UTC+7).

    Row ids are device + sequence, so a second run numbered from 0 again would overwrite the first run's
    rows; numbering from the start time keeps runs apart (one restart shows as one gap, as on a device).
    """
    return max(0, int((start - _SEQ_EPOCH).total_seconds() * 1000))


@dataclasses.dataclass(frozen=True, slots=True)
class Volumes:
    """How much citizen and public-service traffic a run carries besides the devices."""

    reports_per_commune_hour: float = 0.2
    dossiers_per_commune_day: float = 0.5
    history_days: float = 30.0
    backfill_s: float = 600.0  # the history is replayed within this much simulated time (or a quarter of the run)


@dataclasses.dataclass(frozen=True, slots=True)
class Simulation:
    """Everything that decides a plan."""

    fleet: Fleet
    start: dt.datetime  # simulated time of the run's first instant (timezone-aware)
    duration_s: float  # simulated seconds
    seed: int | None = None  # the fleet's seed when None
    scenarios: tuple[Scenario, ...] = ()
    speed: float = 1.0  # simulated seconds per wall-clock second
    rate_per_s: float = 50.0  # target messages per wall-clock second, all kinds together
    volumes: Volumes = Volumes()
    first_seq: int = 0
    device_rate_limit_per_s: float = _BRIDGE_DEVICE_RATE  # the bridge's per-device limit, messages per second

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("the start time needs a timezone")
        for name in ("duration_s", "speed", "rate_per_s", "device_rate_limit_per_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be greater than zero, got {getattr(self, name)}")
        if self.first_seq < 0:
            raise ValueError("first_seq must not be negative")

    @property
    def run_seed(self) -> int:
        return self.fleet.seed if self.seed is None else self.seed

    @property
    def wall_s(self) -> float:
        return self.duration_s / self.speed


@dataclasses.dataclass(frozen=True, slots=True)
class Planned:
    """One event of the plan: when it is sent (simulated), what it is, and who sends it.

    `sender` is the vendor whose credentials publish a device event; it differs from `event.vendor` only
    for a spoof attempt. Citizen reports and dossier snapshots have no sender: they go to Kafka.
    """

    offset_s: float
    at: dt.datetime
    event: PlanEvent
    sender: str | None = None
    scenario: str | None = None

    @property
    def spoof(self) -> bool:
        return isinstance(self.event, SensorReading | CameraEvent) and self.sender != self.event.vendor


def kind_of(planned: Planned) -> str:
    """The tally kind of a planned event: a sensor kind, "camera", "report" or "dossier"."""
    event = planned.event
    if isinstance(event, SensorReading):
        return event.kind.value
    if isinstance(event, CameraEvent):
        return "camera"
    if isinstance(event, CitizenReport):
        return "report"
    return "dossier"


# --- scenario effects, per device ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Window:
    start: float
    end: float
    scenario: str

    def holds(self, offset: float) -> bool:
        return self.start <= offset < self.end


@dataclasses.dataclass(frozen=True, slots=True)
class _Injection:
    """A detection a scenario puts on a camera's stream."""

    offset: float
    detection: Detection
    lat: float
    lon: float
    scenario: str


@dataclasses.dataclass
class _Effects:
    """What the scenarios do to one device."""

    silent: list[_Window] = dataclasses.field(default_factory=list)
    boosted: list[_Window] = dataclasses.field(default_factory=list)
    impossible: list[_Window] = dataclasses.field(default_factory=list)
    flood: list[tuple[Scenario, bool]] = dataclasses.field(default_factory=list)  # (scenario, the main gauge?)
    rain: list[Scenario] = dataclasses.field(default_factory=list)
    pollution: list[Scenario] = dataclasses.field(default_factory=list)
    injected: list[_Injection] = dataclasses.field(default_factory=list)
    story: bool = False  # a scenario tells its story through this device: keep its cadence dense


def _holding(offset: float, windows: Iterable[_Window]) -> _Window | None:
    return next((w for w in windows if w.holds(offset)), None)


class _Context:
    """A simulation with its scenarios turned into per-device effects and extra events."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.fleet = sim.fleet
        self.seed = sim.run_seed
        self.effects: dict[str, _Effects] = collections.defaultdict(_Effects)
        self.reports: list[Planned] = []
        self.spoofs: list[tuple[float, str, DeviceSpec, str]] = []
        model = default_reference_model()
        self.categories = tuple(model.report_categories)
        self.category_labels = {k: v.label_vi for k, v in model.report_categories.items()}
        self.silence_s = {"sensor": 600.0, "camera": 300.0}
        for rule in model.rules:
            if isinstance(rule, SilenceRule):
                self.silence_s["camera" if rule.kind == "camera" else "sensor"] = rule.silent_minutes * 60.0
        for index, scenario in enumerate(sim.scenarios):
            self._apply(index, scenario)

    def at(self, offset_s: float) -> dt.datetime:
        return self.sim.start + dt.timedelta(seconds=offset_s)

    def rng(self, *parts: object) -> random.Random:
        return generators.seeded(self.seed, *parts)

    def _apply(self, index: int, scenario: Scenario) -> None:
        run_s = self.sim.duration_s
        start, end = scenario.start_s, scenario.end_s(run_s)
        fleet = self.fleet
        kind = scenario.kind
        window = _Window(start, end, scenario.text)
        if kind is ScenarioKind.SILENT:
            for spec in fleet.devices:
                if scenario.targets[0] in (spec.device, spec.vendor):
                    self.effects[spec.device].silent.append(window)
        elif kind is ScenarioKind.IMPOSSIBLE:
            self.effects[scenario.targets[0]].impossible.append(window)
        elif kind is ScenarioKind.FLOOD_DEVICE:
            self.effects[scenario.targets[0]].boosted.append(window)
        elif kind is ScenarioKind.POLLUTION:
            for code in scenario.targets:
                for spec in fleet.in_unit(code, "air"):
                    self.effects[spec.device].pollution.append(scenario)
                    self.effects[spec.device].story = True
        elif kind is ScenarioKind.FLOOD:
            self._flood(index, scenario)
        elif kind is ScenarioKind.VIOLATIONS:
            self._violations(index, scenario)
        else:
            assert kind is ScenarioKind.SPOOF
            impostor, victim = scenario.targets[0], fleet.device(scenario.targets[1])
            for attempt in range(3):  # three tries, 20 s apart: one refusal could be a fluke, three are policy
                self.spoofs.append((start + 20.0 * attempt, impostor, victim, scenario.text))

    def _flood(self, index: int, scenario: Scenario) -> None:
        fleet = self.fleet
        unit = fleet.unit(scenario.targets[0])
        gauges = sorted(fleet.in_unit(unit.code, "water"), key=lambda d: d.device)
        main = gauges[0]
        for spec in fleet.devices:
            if spec.kind != "water" or fleet.unit(spec.unit).district != unit.district:
                continue
            effects = self.effects[spec.device]
            effects.rain.append(scenario)
            effects.flood.append((scenario, spec.device == main.device))
            effects.story = True
        rng = self.rng("scenario", index, "flood")
        neighbour = scenarios.nearest_neighbour(fleet, unit) or unit
        for n, where in enumerate((unit, neighbour, unit)):
            offset = round(scenario.start_s + scenarios.FLOOD_REPORTS_AFTER_S + 50.0 * n + rng.uniform(0, 30), 3)
            report = citizens.flood_report(
                rng, report_id=self.report_id(where, offset, f"f{index}{n}"), unit=where, at=self.at(offset), index=n
            )
            self.reports.append(Planned(offset, self.at(offset), report, scenario=scenario.text))
        camera = scenarios.nearest_camera(fleet, main.lat, main.lon)
        if camera is None:
            return  # a fleet without cameras tells the flood without its traffic chapter
        first = scenario.start_s + scenarios.FLOOD_CAMERA_AFTER_S
        for n in range(scenarios.FLOOD_CAMERA_EVENTS):
            offset = first + n * scenarios.FLOOD_CAMERA_EVERY_S + rng.uniform(-3.0, 3.0)
            stalled = min(15, 3 + n // 2 + rng.randint(0, 2))
            detection = Detection(CameraEventType.OBSTRUCTION, round(rng.uniform(0.75, 0.95), 2), object_count=stalled)
            self.effects[camera.device].injected.append(
                _Injection(offset, detection, camera.lat, camera.lon, scenario.text)
            )

    def _violations(self, index: int, scenario: Scenario) -> None:
        length = scenario.end_s(self.sim.duration_s) - scenario.start_s
        for code in scenario.targets:
            rng = self.rng("scenario", index, "violations", code)
            camera = sorted(self.fleet.in_unit(code, "camera"), key=lambda d: d.device)[0]
            limit = camera.params["speed_limit_kmh"]
            # One offender caught again and again at this junction within minutes: one violation, not four.
            repeat = generators.vietnamese_plate(rng, motorbike=True, province="61")
            burst = 12
            for n in range(burst):
                offset = scenario.start_s + length * (n + rng.uniform(0.1, 0.9)) / burst
                if n in (0, 2, 4, 6):
                    detection = generators.violation_detection(rng, limit, kind=CameraEventType.RED_LIGHT, plate=repeat)
                    detection = dataclasses.replace(detection, confidence=round(rng.uniform(0.8, 0.97), 2))
                else:
                    detection = generators.violation_detection(rng, limit)
                lat = round(camera.lat + rng.uniform(-0.0002, 0.0002), 6)
                lon = round(camera.lon + rng.uniform(-0.0002, 0.0002), 6)
                self.effects[camera.device].injected.append(_Injection(offset, detection, lat, lon, scenario.text))

    def report_id(self, unit: FleetUnit, offset: float, tag: str) -> str:
        return f"PA-{unit.code}-{self.at(offset):%y%m%d%H%M%S}-{tag}"


# --- citizens and dossiers ------------------------------------------------------------------------------------


def _background_reports(ctx: _Context) -> list[Planned]:
    sim, volumes = ctx.sim, ctx.sim.volumes
    rng = ctx.rng("reports")
    hours = sim.duration_s / 3600.0
    expected = volumes.reports_per_commune_hour * hours * len(ctx.fleet.units)
    count = _poisson(rng, expected)
    offsets = sorted(round(rng.uniform(0, sim.duration_s), 3) for _ in range(count))
    planned: list[Planned] = []
    for n, offset in enumerate(offsets):
        unit = rng.choice(ctx.fleet.units)
        report = citizens.citizen_report(
            rng,
            report_id=ctx.report_id(unit, offset, f"{n:04d}"),
            unit=unit,
            at=ctx.at(offset),
            categories=ctx.categories,
            labels_vi=ctx.category_labels,
        )
        planned.append(Planned(offset, ctx.at(offset), report))
    return planned


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:  # normal approximation; exactness does not matter, determinism does
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _dossier_events(ctx: _Context) -> list[Planned]:
    sim, volumes = ctx.sim, ctx.sim.volumes
    history_s = volumes.history_days * 86400.0
    window = history_s + sim.duration_s
    backfill = min(volumes.backfill_s, sim.duration_s / 4)
    planned: list[tuple[float, int, int, ServiceRecord]] = []
    index = 0
    for unit in ctx.fleet.units:
        rng = ctx.rng("dossiers", unit.code)
        count = _poisson(rng, volumes.dossiers_per_commune_day * window / 86400.0)
        for received_offset in sorted(rng.uniform(-history_s, sim.duration_s) for _ in range(count)):
            received = ctx.at(received_offset)
            dossier_id = f"HS-{unit.code}-{received:%y%m%d%H%M%S}-{index:05d}"
            records = dossiers.dossier_events(
                rng, dossier_id=dossier_id, unit=unit.code, profile=unit.dossiers, received_at=received
            )
            previous = 0.0
            for record in records:
                real = (record.occurred_at - sim.start).total_seconds()
                if real >= sim.duration_s:
                    break  # the rest of this dossier's life happens after the run
                # The past is replayed quickly at the start, in order; the present arrives on time.
                offset = backfill * (real + history_s) / history_s if real < 0 else real
                offset = round(max(offset, previous), 3)
                previous = offset
                planned.append((offset, index, record.status_version, record))
            index += 1
    planned.sort(key=lambda item: item[:3])
    return [Planned(offset, ctx.at(offset), record) for offset, _, _, record in planned]


# --- devices ------------------------------------------------------------------------------------------------


def _intervals(ctx: _Context, fixed: int) -> dict[str, float]:
    """Each device's mean interval (simulated seconds) so the whole plan averages the target rate."""
    sim = ctx.sim
    devices = ctx.fleet.devices
    budget = sim.rate_per_s * sim.wall_s - fixed
    nominal = sum(1.0 / d.interval_s for d in devices) * sim.duration_s
    scale = nominal / budget if budget > 0 else math.inf
    # Half the bridge's per-device limit in wall-clock terms, so an honest device is never rate-limited.
    fastest = max(1.0, sim.speed / (0.5 * sim.device_rate_limit_per_s))
    intervals: dict[str, float] = {}
    for spec in devices:
        # Sensors jitter by ±10 %, cameras by ±50 %: both stay well inside their silence rule's window.
        slowest = ctx.silence_s["camera" if spec.kind == "camera" else "sensor"] / 2
        interval = min(spec.interval_s * scale, slowest)
        if ctx.effects[spec.device].story:
            interval = min(interval, _STORY_INTERVAL_S)
        intervals[spec.device] = max(fastest, interval)
    return intervals


def _ticks(ctx: _Context, spec: DeviceSpec, interval: float) -> Iterator[float]:
    """When the device reports on its own schedule: jittered, sped up inside flood-device windows."""
    rng = ctx.rng("ticks", spec.device)
    camera = spec.kind == "camera"
    boosts = sorted(ctx.effects[spec.device].boosted, key=lambda w: w.start)
    # 100 times its rate, and at least 3 times the bridge's limit, so the rate limiter has work to do.
    boosted = min(interval / _FLOOD_FACTOR, ctx.sim.speed / (3 * ctx.sim.device_rate_limit_per_s))
    t = rng.uniform(0, interval)
    while t < ctx.sim.duration_s:
        yield round(t, 3)
        inside = _holding(t, boosts) is not None
        if inside:
            step = boosted * rng.uniform(0.8, 1.2)
        else:
            step = interval * (rng.uniform(0.5, 1.5) if camera else rng.uniform(0.9, 1.1))
        upcoming = next((w.start for w in boosts if t < w.start <= t + step), None)
        t = upcoming if upcoming is not None and not inside else t + step


def _sensor_values(
    ctx: _Context, spec: DeviceSpec, offset: float, *, at: dt.datetime, interval: float, rng: random.Random
) -> dict[str, float]:
    effects = ctx.effects[spec.device]
    hour = generators.local_hour(at)
    params = spec.params
    if spec.kind == "air":
        values = generators.air_values(params, hour, rng)
        for scenario in effects.pollution:
            since = offset - scenario.start_s
            if since >= 0:
                length = scenario.end_s(ctx.sim.duration_s) - scenario.start_s
                normal = values["pm25"]
                pm25 = scenarios.pollution_pm25(since, normal, length) * math.exp(rng.gauss(0.0, 0.03))
                ratio = pm25 / max(normal, 1.0)
                values["pm25"] = round(pm25, 1)
                values["pm10"] = round(values["pm10"] * ratio * 0.8, 1)
                values["so2"] = round(values["so2"] * (1 + 0.15 * ratio), 1)
                values["no2"] = round(values["no2"] * (1 + 0.05 * ratio), 1)
    elif spec.kind == "water":
        rain = max(
            (
                scenarios.flood_rain_mm_h(offset - s.start_s, s.end_s(ctx.sim.duration_s) - s.start_s)
                for s in effects.rain
            ),
            default=0.0,
        )
        values = generators.water_values(params, generators.tide_hours(at), rng, rain_mm_h=rain)
        for scenario, main in effects.flood:
            since = offset - scenario.start_s
            if since < 0:
                continue
            length = scenario.end_s(ctx.sim.duration_s) - scenario.start_s
            normal, alert = values["waterLevel"], params["alert_m"]
            if main:
                level = scenarios.flood_level(since, normal, alert, length, rng.uniform(-1, 1))
            else:
                # Neighbouring gauges swell too, but stay well under the alert level.
                swell = scenarios.flood_level(since, normal, alert, length, 0.0) - normal
                level = min(normal + 0.35 * swell, alert - 0.35)
            values["waterLevel"] = round(max(values["waterLevel"], level), 3)
    elif spec.kind == "noise":
        values = generators.noise_values(params, hour, rng)
    else:
        values = generators.traffic_values(params, hour, interval, rng)
    if _holding(offset, effects.impossible) is not None:
        values.update(IMPOSSIBLE_VALUES[spec.kind])
    return values


def _reading(spec: DeviceSpec, seq: int, at: dt.datetime, values: dict[str, float]) -> SensorReading:
    return SensorReading(
        vendor=spec.vendor,
        device=spec.device,
        unit=spec.unit,
        kind=SensorKind(spec.kind),
        seq=seq,
        observed_at=at,
        values=values,
        lat=spec.lat,
        lon=spec.lon,
    )


def _camera_event(
    spec: DeviceSpec, seq: int, at: dt.datetime, detection: Detection, *, lat: float, lon: float
) -> CameraEvent:
    return CameraEvent(
        vendor=spec.vendor,
        device=spec.device,
        unit=spec.unit,
        seq=seq,
        observed_at=at,
        event_type=detection.event_type,
        confidence=detection.confidence,
        plate=detection.plate,
        speed_kmh=detection.speed_kmh,
        speed_limit_kmh=detection.speed_limit_kmh,
        object_count=detection.object_count,
        lat=lat,
        lon=lon,
        image_url=f"https://media.{spec.vendor}.example/{spec.device}/{seq}.jpg",
    )


def _scenario_of(offset: float, effects: _Effects) -> str | None:
    """The scenario that shapes a device's event at `offset`, for people reading a plan."""
    for window in (*effects.impossible, *effects.boosted):
        if window.holds(offset):
            return window.scenario
    for scenario in effects.pollution:
        if offset >= scenario.start_s:
            return scenario.text
    for scenario, main in effects.flood:
        if main and offset >= scenario.start_s:
            return scenario.text
    return None


def _device_stream(ctx: _Context, spec: DeviceSpec, interval: float) -> Iterator[Planned]:
    effects = ctx.effects[spec.device]
    rng = ctx.rng("values", spec.device)
    regular: Iterator[tuple[float, _Injection | None]] = ((t, None) for t in _ticks(ctx, spec, interval))
    extra: list[tuple[float, _Injection | None]] = sorted(
        ((round(i.offset, 3), i) for i in effects.injected if 0 <= i.offset < ctx.sim.duration_s),
        key=lambda pair: pair[0],
    )
    seq = ctx.sim.first_seq
    for offset, injection in heapq.merge(regular, extra, key=lambda pair: pair[0]):
        if _holding(offset, effects.silent) is not None:
            continue
        at = ctx.at(offset)
        event: PlanEvent
        if injection is not None:
            event = _camera_event(spec, seq, at, injection.detection, lat=injection.lat, lon=injection.lon)
            scenario: str | None = injection.scenario
        elif spec.kind == "camera":
            detection = generators.camera_detection(spec.params, generators.local_hour(at), rng)
            event = _camera_event(spec, seq, at, detection, lat=spec.lat, lon=spec.lon)
            scenario = _scenario_of(offset, effects)
        else:
            event = _reading(spec, seq, at, _sensor_values(ctx, spec, offset, at=at, interval=interval, rng=rng))
            scenario = _scenario_of(offset, effects)
        yield Planned(offset, at, event, sender=spec.vendor, scenario=scenario)
        seq += 1


def _spoof_events(ctx: _Context) -> list[Planned]:
    planned: list[Planned] = []
    for n, (offset, impostor, victim, text) in enumerate(sorted(ctx.spoofs, key=lambda s: s[0])):
        if not 0 <= offset < ctx.sim.duration_s:
            continue
        at = ctx.at(offset)
        rng = ctx.rng("spoof", n)
        # The impostor's own numbering: the victim device's sequence is untouched by the attempt.
        seq = ctx.sim.first_seq + n
        event: PlanEvent
        if victim.kind == "camera":
            detection = generators.violation_detection(rng, victim.params["speed_limit_kmh"])
            event = _camera_event(victim, seq, at, detection, lat=victim.lat, lon=victim.lon)
        else:
            event = _reading(victim, seq, at, _sensor_values(ctx, victim, offset, at=at, interval=60.0, rng=rng))
        planned.append(Planned(offset, at, event, sender=impostor, scenario=text))
    return planned


def iter_plan(sim: Simulation) -> Iterator[Planned]:
    """The plan's events in send order, lazily (a long run's plan need not fit in memory)."""
    ctx = _Context(sim)
    reports = sorted(
        [p for p in ctx.reports if 0 <= p.offset_s < sim.duration_s] + _background_reports(ctx),
        key=lambda p: p.offset_s,
    )
    records = _dossier_events(ctx)
    spoofs = _spoof_events(ctx)
    injected = sum(len(ctx.effects[d.device].injected) for d in ctx.fleet.devices)
    intervals = _intervals(ctx, len(reports) + len(records) + injected)
    streams = [_device_stream(ctx, spec, intervals[spec.device]) for spec in ctx.fleet.devices]
    # heapq.merge is stable: equal times keep the order of the streams, so the plan is deterministic.
    yield from heapq.merge(*streams, reports, records, spoofs, key=lambda p: p.offset_s)


def plan(sim: Simulation) -> list[Planned]:
    """The ordered list of (simulated time, event) the runner would send for `sim`."""
    return list(iter_plan(sim))
