"""Decision 766 scorecards from dossier snapshots: pure scoring, no Kafka, ClickHouse or Faust.

What an indicator without data is worth is the versioned `NoDataPolicy` below (docs/decision-766.md): the
score is re-based on the points actually measured and always travels with its coverage.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Collection, Iterable, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Final, TypedDict

import msgspec

from ioc.decision766 import Indicator, Measure, Population, Scheme, display_points
from ioc.events import DossierChannel, DossierStatus, ServiceRecord

__all__ = [
    "MEASURED_ONLY",
    "GroupScore",
    "IndicatorScore",
    "NoDataPolicy",
    "ScoreRow",
    "Scorecard",
    "is_overdue",
    "latest_snapshots",
    "score",
]

_FINISHED: Final = frozenset({DossierStatus.PROCESSED, DossierStatus.RETURNED})


@dataclasses.dataclass(frozen=True, slots=True)
class NoDataPolicy:
    """How indicators without data are scored; its `id` is stored with every score row beside the scheme's.

    An indicator is *measured* when its points count, in the score and in its coverage. Under every policy an
    indicator the platform does not collect is not measured and earns nothing: not knowing is not "none
    happened" (5.2/5.3's "no PAKN ⇒ 6" needs a PAKN count of zero, which the platform never sees).
    `method_fallbacks`: a collected indicator with an empty denominator is scored the way the method itself
    defines it, where the scheme cites one (`default_rate` on the indicator); without such a rule it is not
    measured. The scheme's own `defaults` (full points for what cannot be seen) are not used.
    """

    id: str
    method_fallbacks: bool


MEASURED_ONLY: Final = NoDataPolicy(id="766-nodata.measured-only.v1", method_fallbacks=True)
"""The platform's policy: points only for what was measured, the score re-based on those points."""


def _newer(candidate: ServiceRecord, kept: ServiceRecord) -> bool:
    if candidate.status_version != kept.status_version:
        return candidate.status_version > kept.status_version
    if candidate.occurred_at != kept.occurred_at:
        return candidate.occurred_at > kept.occurred_at
    # Two different snapshots under one version are a producer bug; pick one by content so the
    # result never depends on delivery order.
    return msgspec.json.encode(candidate) > msgspec.json.encode(kept)


def latest_snapshots(records: Iterable[ServiceRecord]) -> dict[str, ServiceRecord]:
    """The highest `status_version` of each dossier, so replays and out-of-order delivery count once."""
    latest: dict[str, ServiceRecord] = {}
    for record in records:
        kept = latest.get(record.dossier_id)
        if kept is None or (record is not kept and _newer(record, kept)):
            latest[record.dossier_id] = record
    return latest


def is_overdue(dossier: ServiceRecord, as_of: dt.datetime) -> bool:
    """Whether a dossier counts as overdue for 766 (indicator 2.1), as seen at `as_of`.

    A finished dossier is on time when finished_at, minus the days spent waiting for the citizen, is no
    later than due_at. One still in progress is on time while as_of, minus those days, is not past due_at;
    one waiting for a supplement right now also has its clock paused since it entered that state. More
    than one supplement request makes a dossier overdue whatever its dates (the VPCP rule).
    """
    if dossier.supplement_count > 1:
        return True
    waited = dt.timedelta(days=dossier.supplement_days)
    if dossier.status in _FINISHED and dossier.finished_at is not None:
        end = dossier.finished_at
    else:
        end = as_of
        if dossier.status is DossierStatus.SUPPLEMENT_REQUESTED:
            waited += max(dt.timedelta(0), as_of - dossier.occurred_at)
    return end - waited > dossier.due_at


@dataclasses.dataclass(frozen=True, slots=True)
class IndicatorScore:
    """One indicator's result: counts, rate, exact points and the dossiers that cost them.

    `lost_dossiers` lists, sorted, the counted dossiers that failed the measure, and only when the
    indicator scored below its maximum (below a threshold's full-points rate every failure costs; above
    it none does). `no_data` means nothing was counted: the platform does not collect the indicator
    (`collected` false) or no dossier fell in its denominator. `measured` means its points count in the
    score and its maximum in the coverage; an indicator not measured has 0 points and rate 0
    (`NoDataPolicy`).
    """

    code: str
    group: str
    max_points: Fraction
    points: Fraction
    numerator: int
    denominator: int
    rate: Fraction
    population: Population | None
    collected: bool
    no_data: bool
    measured: bool
    lost_dossiers: tuple[str, ...]

    @property
    def points_display(self) -> Decimal:
        return display_points(self.points)


@dataclasses.dataclass(frozen=True, slots=True)
class GroupScore:
    code: str
    max_points: Fraction
    indicators: tuple[IndicatorScore, ...]

    @property
    def points(self) -> Fraction:
        return sum((i.points for i in self.indicators), Fraction(0))

    @property
    def coverage(self) -> Fraction:
        """The group's points that were measured (of `max_points`)."""
        return sum((i.max_points for i in self.indicators if i.measured), Fraction(0))

    @property
    def points_display(self) -> Decimal:
        return display_points(self.points)


class ScoreRow(TypedDict):
    """One indicator of one scorecard, flat and plain, as the warehouse stores it."""

    scheme: str
    unit: str
    period_start: dt.datetime
    period_end: dt.datetime
    as_of: dt.datetime
    group: str
    indicator: str
    points: float
    max_points: float
    rate: float
    numerator: int
    denominator: int
    collected: bool
    no_data: bool
    measured: bool
    policy: str
    lost_dossiers: list[str]


@dataclasses.dataclass(frozen=True, slots=True)
class Scorecard:
    """A unit's (or subtree's) Decision 766 score for one period, as seen at `as_of`."""

    scheme_id: str
    unit: str
    unit_codes: frozenset[str]
    period_start: dt.datetime
    period_end: dt.datetime
    as_of: dt.datetime
    dossiers: int  # received in the period, withdrawn included
    groups: tuple[GroupScore, ...]
    policy_id: str = MEASURED_ONLY.id

    @property
    def total(self) -> Fraction:
        """Points earned by the measured indicators, out of `coverage` (not out of 100: see `score`)."""
        return sum((g.points for g in self.groups), Fraction(0))

    @property
    def max_points(self) -> Fraction:
        return sum((g.max_points for g in self.groups), Fraction(0))

    @property
    def coverage(self) -> Fraction:
        """The points measured: the sum of the measured indicators' maxima (54 of 100 when every indicator the
        platform collects had data)."""
        return sum((g.coverage for g in self.groups), Fraction(0))

    @property
    def score(self) -> Fraction | None:
        """The score out of 100, re-based on the points measured; None when nothing was measured."""
        if self.coverage == 0:
            return None
        return self.total * self.max_points / self.coverage

    @property
    def total_display(self) -> Decimal:
        return display_points(self.total)

    @property
    def score_display(self) -> Decimal | None:
        return None if self.score is None else display_points(self.score)

    @property
    def coverage_display(self) -> Decimal:
        return display_points(self.coverage)

    @property
    def indicators(self) -> tuple[IndicatorScore, ...]:
        return tuple(i for g in self.groups for i in g.indicators)

    def indicator(self, code: str) -> IndicatorScore:
        for indicator in self.indicators:
            if indicator.code == code:
                return indicator
        raise KeyError(f"no indicator {code!r} on this scorecard (scheme {self.scheme_id})")

    def group(self, code: str) -> GroupScore:
        for group in self.groups:
            if group.code == code:
                return group
        raise KeyError(f"no group {code!r} on this scorecard (scheme {self.scheme_id})")

    def costs_by_dossier(self) -> dict[str, tuple[str, ...]]:
        """Each dossier that cost points → the indicator codes it cost, for the "why" view of a ward."""
        costs: dict[str, list[str]] = {}
        for indicator in self.indicators:
            for dossier_id in indicator.lost_dossiers:
                costs.setdefault(dossier_id, []).append(indicator.code)
        return {dossier_id: tuple(codes) for dossier_id, codes in sorted(costs.items())}

    def to_rows(self) -> list[ScoreRow]:
        """One plain row per indicator. Points are the nearest float, not rounded to two decimals: a reader sums
        them into a re-based score, and rounded parts would not add up to the score shown elsewhere (64.59 for
        64.60); screens round what they show."""
        return [
            ScoreRow(
                scheme=self.scheme_id,
                unit=self.unit,
                period_start=self.period_start,
                period_end=self.period_end,
                as_of=self.as_of,
                group=i.group,
                indicator=i.code,
                points=float(i.points),
                max_points=float(display_points(i.max_points)),
                rate=float(round(i.rate, 4)),
                numerator=i.numerator,
                denominator=i.denominator,
                collected=i.collected,
                no_data=i.no_data,
                measured=i.measured,
                policy=self.policy_id,
                lost_dossiers=list(i.lost_dossiers),
            )
            for i in self.indicators
        ]


@dataclasses.dataclass(frozen=True, slots=True)
class _Count:
    numerator: int
    denominator: int
    failing: tuple[str, ...]


def _share(dossiers: Iterable[ServiceRecord], passes: Callable[[ServiceRecord], bool]) -> _Count:
    counted = list(dossiers)
    failing = tuple(sorted(d.dossier_id for d in counted if not passes(d)))
    return _Count(len(counted) - len(failing), len(counted), failing)


def _satisfaction(dossiers: Sequence[ServiceRecord], as_of: dt.datetime) -> _Count:
    # VPCP implements the 2022 text as 100% − (overdue % + disliked %): a dossier both late and disliked
    # counts twice, as on DVCQG, and the rate stops at 0. PAKN about a dossier is not in ServiceRecord.
    overdue = {d.dossier_id for d in dossiers if is_overdue(d, as_of)}
    disliked = {d.dossier_id for d in dossiers if d.satisfaction == "unsatisfied"}
    numerator = max(0, len(dossiers) - len(overdue) - len(disliked))
    return _Count(numerator, len(dossiers), tuple(sorted(overdue | disliked)))


def _count(measure: Measure, populations: dict[Population, list[ServiceRecord]], as_of: dt.datetime) -> _Count:
    received = populations[Population.RECEIVED]
    active = populations[Population.RECEIVED_NOT_WITHDRAWN]
    finished = populations[Population.FINISHED]
    match measure:
        case Measure.SYNCED_TO_NATIONAL_PORTAL:
            return _share(received, lambda d: d.synced_to_national_portal)
        case Measure.ON_TIME:
            return _share(active, lambda d: not is_overdue(d, as_of))
        case Measure.ONLINE_SUBMISSION:
            return _share(received, lambda d: d.channel is DossierChannel.ONLINE)
        case Measure.FULLY_ONLINE:
            return _share(received, lambda d: d.fully_online)
        case Measure.ONLINE_PAYMENT:
            return _share((d for d in active if d.requires_payment), lambda d: d.paid_online)
        case Measure.RESULT_DIGITAL:
            return _share(finished, lambda d: d.result_digital)
        case Measure.DIGITISED:
            return _share(received, lambda d: d.digitised)
        case Measure.SATISFACTION:
            return _satisfaction(active, as_of)


def _score_indicator(indicator: Indicator, group: str, policy: NoDataPolicy, count: _Count | None) -> IndicatorScore:
    max_points = Fraction(indicator.max_points)
    if count is None or count.denominator == 0:
        # Nothing counted: scored only where the method itself says what no data is worth.
        rule = indicator.default_rate if policy.method_fallbacks and count is not None else None
        rate = Fraction(0) if rule is None else Fraction(rule)
        return IndicatorScore(
            code=indicator.code,
            group=group,
            max_points=max_points,
            points=Fraction(0) if rule is None else indicator.points_for(rate),
            numerator=0,
            denominator=0,
            rate=rate,
            population=indicator.population,
            collected=indicator.collected,
            no_data=True,
            measured=rule is not None,
            lost_dossiers=(),
        )
    rate = Fraction(count.numerator, count.denominator)
    points = indicator.points_for(rate)
    return IndicatorScore(
        code=indicator.code,
        group=group,
        max_points=max_points,
        points=points,
        numerator=count.numerator,
        denominator=count.denominator,
        rate=rate,
        population=indicator.population,
        collected=True,
        no_data=False,
        measured=True,
        lost_dossiers=count.failing if points < max_points else (),
    )


def _check_times(period_start: dt.datetime, period_end: dt.datetime, as_of: dt.datetime) -> None:
    for name, value in (("period_start", period_start), ("period_end", period_end), ("as_of", as_of)):
        if value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")
    if period_end <= period_start:
        raise ValueError(f"period_end ({period_end.isoformat()}) must be after period_start")
    if as_of < period_start:
        raise ValueError(f"as_of ({as_of.isoformat()}) is before period_start ({period_start.isoformat()})")


def score(
    records: Iterable[ServiceRecord],
    scheme: Scheme,
    *,
    unit_codes: Collection[str],
    period_start: dt.datetime,
    period_end: dt.datetime,
    as_of: dt.datetime,
    unit: str | None = None,
    policy: NoDataPolicy = MEASURED_ONLY,
) -> Scorecard:
    """Score the dossiers of `unit_codes` (a unit's whole subtree, for a district or province) for a period.

    Only snapshots that occurred by `as_of` count, so a past scorecard can be recomputed from the full
    event log; of those, the latest per dossier decides, and its unit is the dossier's unit. `unit` names
    the scorecard (the subtree's root); it may be left out when `unit_codes` holds a single code.

    The Faust agent feeds `ServiceRecord`s in; the sink writes `Scorecard.to_rows()` out. Weights, thresholds and labels
    come from the versioned scheme (ioc.decision766), what missing data is worth from the versioned `policy`; this
    module decides which dossiers count for each measure and which of them cost points. Points stay exact
    (`Fraction`) until `to_rows` or a `*_display` property rounds them to two decimals.

    Which dossiers each measure counts over (ioc.decision766.MEASURE_POPULATION), for a period [period_start,
    period_end) of the selected units, as seen at `as_of`:

    - received: received_at in the period (1.4 synced, 3.3 online, 3.4 fully online, 4.2 digitised).
    - received, not withdrawn (2.1 on time, 3.6 paid online among those requiring payment, 5.4 satisfaction).
    - finished: processed or returned with finished_at in the period, whenever received (4.1 electronic result).
    """
    _check_times(period_start, period_end, as_of)
    codes = frozenset(unit_codes)
    if not codes:
        raise ValueError("unit_codes is empty: score at least one unit")
    if unit is None:
        if len(codes) > 1:
            raise ValueError(f"unit is required when unit_codes holds several codes ({len(codes)} given)")
        (unit,) = codes
    latest = latest_snapshots(r for r in records if r.occurred_at <= as_of)
    mine = sorted((d for d in latest.values() if d.unit in codes), key=lambda d: d.dossier_id)
    received = [d for d in mine if period_start <= d.received_at < period_end]
    populations = {
        Population.RECEIVED: received,
        Population.RECEIVED_NOT_WITHDRAWN: [d for d in received if d.status is not DossierStatus.WITHDRAWN],
        Population.FINISHED: [
            d
            for d in mine
            if d.status in _FINISHED and d.finished_at is not None and period_start <= d.finished_at < period_end
        ],
    }
    measures = {i.measure for i in scheme.indicators() if i.measure is not None}
    counts = {measure: _count(measure, populations, as_of) for measure in measures}
    groups = tuple(
        GroupScore(
            code=group.code,
            max_points=Fraction(group.max_points),
            indicators=tuple(
                _score_indicator(ind, group.code, policy, None if ind.measure is None else counts[ind.measure])
                for ind in group.indicators
            ),
        )
        for group in scheme.groups
    )
    return Scorecard(
        scheme_id=scheme.id,
        unit=unit,
        unit_codes=codes,
        period_start=period_start,
        period_end=period_end,
        as_of=as_of,
        dossiers=len(received),
        groups=groups,
        policy_id=policy.id,
    )
