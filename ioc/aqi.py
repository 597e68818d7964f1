"""Vietnam's air-quality index (VN_AQI) as Decision 1459/QĐ-TCMT (2019) defines it: pure functions, no I/O.

Pollutants are named by the platform's measure codes in ioc.events.MEASURES ("pm25", "pm10", "no2",
"o3", "co", "so2"), and every concentration is in µg/m³, CO included (1459 tabulates CO in µg/m³, not
mg/m³). The streams component feeds it hourly means; dashboards use `band` for labels and colours.

- `sub_index`: Formula 1 on Table 2's breakpoints, unrounded. The breakpoints are continuous, not the
  US-EPA table with ".1" gaps that many public copies carry.
- `nowcast`: the NowCast of the last 12 hourly means, which Formula 2 feeds to hourly PM sub-indices.
- `hourly_aqi`, `daily_aqi`: a station's AQI^h and AQI^d with the dominant pollutant. Both need PM2.5
  or PM10 and return None without them; the overall AQI is the maximum sub-index, rounded half up
  (the document's own example rounds 109.5 to 110).
- `band`: Table 1's six levels with the Vietnamese label, a customary English label and the colour.

Decimal arithmetic keeps the interpolation exact for decimal inputs, so a sub-index that is exactly
x.5 on paper rounds up rather than falling to float noise. Source: the signed 1459 PDF (vea.mae.gov.vn),
as transcribed in qnguyenle075/hcmc-air-quality, data/processed/qd_1459_vn_aqi.md.
"""

from __future__ import annotations

import dataclasses
import decimal
import math
import types
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Final, Literal

__all__ = [
    "BANDS",
    "BREAKPOINTS",
    "DAILY_MIN_HOURS",
    "INDEX_BREAKPOINTS",
    "O3_8H_MIN_HOURS",
    "POLLUTANTS",
    "AqiBand",
    "AqiResult",
    "Averaging",
    "DailyInputs",
    "band",
    "daily_aqi",
    "daily_aqi_from",
    "daily_inputs",
    "hourly_aqi",
    "nowcast",
    "round_aqi",
    "sub_index",
]

Averaging = Literal["1h", "8h", "24h"]

# Table 2's order of preference when two pollutants tie for the maximum: particulates first, because
# 1459 makes one of them mandatory and they are what the public reads the index for.
POLLUTANTS: Final[tuple[str, ...]] = ("pm25", "pm10", "o3", "no2", "co", "so2")
_PM: Final = frozenset({"pm25", "pm10"})

# Table 2, column Ii: the index value at each breakpoint row.
INDEX_BREAKPOINTS: Final[tuple[int, ...]] = (0, 50, 100, 150, 200, 300, 400, 500)

# Table 2, columns BPi, in µg/m³. The last value of each row is level 8's "≥" threshold. O3 8h stops at
# level 6 (400 µg/m³): above it 1459 uses only the 1h value.
BREAKPOINTS: Final[Mapping[str, tuple[int, ...]]] = types.MappingProxyType(
    {
        "o3_1h": (0, 160, 200, 300, 400, 800, 1000, 1200),
        "o3_8h": (0, 100, 120, 170, 210, 400),
        "co": (0, 10_000, 30_000, 45_000, 60_000, 90_000, 120_000, 150_000),
        "so2": (0, 125, 350, 550, 800, 1600, 2100, 2630),
        "no2": (0, 100, 200, 700, 1200, 2350, 3100, 3850),
        "pm10": (0, 50, 150, 250, 350, 420, 500, 600),
        "pm25": (0, 25, 50, 80, 150, 250, 350, 500),
    }
)

# 1459 has no minimum number of hours for the 24h mean; 18 of 24 (75%) is a common choice. [UNCONFIRMED]
DAILY_MIN_HOURS: Final = 18
# Nor for an 8h mean; 6 of 8 keeps the same 75%. [UNCONFIRMED]
O3_8H_MIN_HOURS: Final = 6

# Beyond level 8's "≥" breakpoint the document says nothing; the index stops at 500 there. [UNCONFIRMED policy]
_O3_8H_LIMIT: Final = Decimal(BREAKPOINTS["o3_8h"][-1])
_NOWCAST_HOURS: Final = 12
_DAY_HOURS: Final = 24
_O3_WINDOW: Final = 8


@dataclasses.dataclass(frozen=True, slots=True)
class AqiBand:
    """One row of Table 1. `label_en` and `colour_en` are customary translations, not part of 1459."""

    level: int
    low: int
    high: int
    label_vi: str
    label_en: str
    colour_vi: str
    colour_en: str
    rgb: tuple[int, int, int]

    @property
    def hex(self) -> str:
        """The colour as CSS writes it: "#00E400"."""
        return "#{:02X}{:02X}{:02X}".format(*self.rgb)


BANDS: Final[tuple[AqiBand, ...]] = (
    AqiBand(1, 0, 50, "Tốt", "Good", "Xanh", "Green", (0, 228, 0)),
    AqiBand(2, 51, 100, "Trung bình", "Moderate", "Vàng", "Yellow", (255, 255, 0)),
    AqiBand(3, 101, 150, "Kém", "Poor", "Da cam", "Orange", (255, 126, 0)),
    AqiBand(4, 151, 200, "Xấu", "Bad", "Đỏ", "Red", (255, 0, 0)),
    AqiBand(5, 201, 300, "Rất xấu", "Very bad", "Tím", "Purple", (143, 63, 151)),
    AqiBand(6, 301, 500, "Nguy hại", "Hazardous", "Nâu", "Maroon", (126, 0, 35)),
)


def band(aqi: int) -> AqiBand:
    """Table 1's band for a rounded AQI. Values above 500 (not produced here) still read as Nguy hại."""
    if aqi < 0:
        raise ValueError(f"AQI {aqi} is negative: an AQI is 0 or more")
    for candidate in BANDS:
        if aqi <= candidate.high:
            return candidate
    # An index from elsewhere (a vendor's uncapped scale) must never read as anything milder.
    return BANDS[-1]


@dataclasses.dataclass(frozen=True, slots=True)
class AqiResult:
    """An hourly or daily AQI: the rounded index, its dominant pollutant and every unrounded sub-index."""

    aqi: int
    dominant: str
    sub_indices: Mapping[str, float] = dataclasses.field(hash=False)

    @property
    def band(self) -> AqiBand:
        return band(self.aqi)


def round_aqi(value: float) -> int:
    """Round an index half up, as 1459's worked example does (109.5 → 110), not half to even."""
    return _round_half_up(Decimal(repr(float(value))))


def _round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=decimal.ROUND_HALF_UP))


def _check_pollutant(pollutant: str) -> None:
    if pollutant not in POLLUTANTS:
        raise ValueError(f"unknown pollutant {pollutant!r}: VN_AQI covers {', '.join(POLLUTANTS)}")


def _column(pollutant: str, averaging: str) -> str:
    _check_pollutant(pollutant)
    if pollutant == "o3":
        if averaging in ("1h", "8h"):
            return f"o3_{averaging}"
        raise ValueError(
            f"o3: no sub-index for averaging {averaging!r}; use '1h' or '8h' (daily O3 is the larger of the two)"
        )
    if pollutant in _PM:
        if averaging in ("1h", "24h"):
            # Hourly PM is the NowCast (Formula 2) on the same breakpoints as the 24h mean.
            return pollutant
        raise ValueError(f"{pollutant}: no sub-index for averaging {averaging!r}; use '1h' (NowCast) or '24h'")
    if averaging == "1h":
        return pollutant
    raise ValueError(
        f"{pollutant}: no sub-index for averaging {averaging!r}; 1459 uses the 1h value (the day's maximum for AQI^d)"
    )


def _concentration(pollutant: str, value: float, what: str = "concentration") -> Decimal:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{pollutant}: {what} {value!r} µg/m³ is invalid: concentrations are finite and 0 or more")
    # repr gives the shortest decimal that round-trips, so 55.7 becomes Decimal("55.7"), not 55.70000000000000284.
    return Decimal(repr(float(value)))


def _interpolate(pollutant: str, column: str, concentration: Decimal) -> Decimal:
    points = BREAKPOINTS[column]
    if concentration >= points[-1]:
        if column == "o3_8h" and concentration > _O3_8H_LIMIT:
            raise ValueError(
                f"o3: an 8h average of {concentration} µg/m³ is above {_O3_8H_LIMIT}, where 1459 has no 8h "
                "sub-index; use the 1h value instead"
            )
        # Level 8 is 500, the cap; O3 8h's last row (400 µg/m³) is level 6, 300.
        return Decimal(INDEX_BREAKPOINTS[len(points) - 1])
    with decimal.localcontext(prec=28):
        for i in range(len(points) - 1):
            low, high = points[i], points[i + 1]
            if concentration < high:
                # Formula 1, multiplied before dividing so that decimal inputs stay exact where the paper is.
                rise = INDEX_BREAKPOINTS[i + 1] - INDEX_BREAKPOINTS[i]
                return rise * (concentration - low) / (high - low) + INDEX_BREAKPOINTS[i]
    raise AssertionError(f"{pollutant}: {concentration} fell through the breakpoints")  # pragma: no cover


def _sub_index(pollutant: str, concentration: float, averaging: str) -> Decimal:
    column = _column(pollutant, averaging)
    return _interpolate(pollutant, column, _concentration(pollutant, concentration))


def sub_index(pollutant: str, concentration: float, averaging: Averaging = "1h") -> float:
    """Formula 1: the unrounded sub-index of `concentration` (µg/m³) for `pollutant`.

    `averaging` picks the column: O3 has "1h" and "8h"; PM has "1h" (pass the NowCast) and "24h" (the
    day's mean), which share breakpoints; SO2, NO2 and CO only "1h". Concentrations at or above the top
    breakpoint give 500 (a cap 1459 does not state). An O3 8h average above 400 µg/m³ has no sub-index
    and raises ValueError, as does a negative or non-finite concentration or an unknown pollutant.
    """
    return float(_sub_index(pollutant, concentration, averaging))


def _checked_hours(pollutant: str, values: Iterable[float | None], what: str) -> list[float | None]:
    """Validate hourly values; `what` names one in error messages, with {} for its 1-based position."""
    checked: list[float | None] = []
    for i, value in enumerate(values, start=1):
        if value is not None:
            _concentration(pollutant, value, what.format(i))
        checked.append(value)
    return checked


def _nowcast(pollutant: str, hourly: Sequence[float | None]) -> float | None:
    c = _checked_hours(pollutant, hourly[:_NOWCAST_HOURS], "hourly value c{}")
    c += [None] * (_NOWCAST_HOURS - len(c))
    if sum(v is not None for v in c[:3]) < 2:
        return None  # 1459's completeness rule: at least two of c1, c2, c3
    present = [v for v in c if v is not None]
    highest = max(present)
    if highest == 0:
        return 0.0
    w = max(min(present) / highest, 0.5)
    # The normalised form for both cases: 1459 prints Σ(1/2)^i·ci for w = 1/2, which differs slightly.
    weights = [0.0 if v is None else w**i for i, v in enumerate(c)]
    return sum(wi * (v or 0.0) for wi, v in zip(weights, c, strict=True)) / sum(weights)


def nowcast(hourly: Sequence[float | None]) -> float | None:
    """The NowCast of hourly means, newest first (c1 is the current hour; None is a missing hour).

    Only the first 12 values are used. Returns None when fewer than two of c1, c2, c3 have data; a
    missing hour gets weight 0. The weight factor is min/max over the 12 hours, floored at 1/2. The
    result is unrounded (1459's example prints 20.3 for 20.27).
    """
    return _nowcast("NowCast", hourly)


def _check_hours_keys(hours: Mapping[str, Sequence[float | None]]) -> None:
    for pollutant in hours:
        _check_pollutant(pollutant)


def _result(sub_indices: dict[str, Decimal]) -> AqiResult | None:
    if not sub_indices.keys() & _PM:
        return None  # 1459 makes PM2.5 or PM10 mandatory
    ordered = [p for p in POLLUTANTS if p in sub_indices]
    dominant = max(ordered, key=lambda p: sub_indices[p])  # first in POLLUTANTS wins a tie
    return AqiResult(
        aqi=_round_half_up(sub_indices[dominant]),
        dominant=dominant,
        sub_indices=types.MappingProxyType({p: float(sub_indices[p]) for p in ordered}),
    )


def hourly_aqi(hours: Mapping[str, Sequence[float | None]]) -> AqiResult | None:
    """AQI^h from each pollutant's hourly means, newest first (the current hour first).

    PM2.5 and PM10 use the NowCast of up to 12 hours (Formula 2); SO2, NO2, CO and O3 use the current
    hour's value on the 1h column. A pollutant with no usable data is left out; without a PM value the
    result is None. An unknown pollutant, or a negative or non-finite value, raises ValueError.
    """
    _check_hours_keys(hours)
    subs: dict[str, Decimal] = {}
    for pollutant, values in hours.items():
        if pollutant in _PM:
            concentration = _nowcast(pollutant, values)
        else:
            # The current hour only: an older value is not this hour's AQI.
            concentration = _checked_hours(pollutant, values[:1], "hourly value c{}")[0] if values else None
        if concentration is not None:
            subs[pollutant] = _sub_index(pollutant, concentration, "1h")
    return _result(subs)


@dataclasses.dataclass(frozen=True, slots=True)
class DailyInputs:
    """A day's aggregates in µg/m³, as AQI^d consumes them; None where a pollutant has no usable data.

    `pm25`/`pm10` are 24h means; `no2`, `co`, `so2` and `o3_1h` the day's maximum hourly mean; `o3_8h`
    the day's maximum 8h rolling mean.
    """

    pm25: float | None = None
    pm10: float | None = None
    o3_1h: float | None = None
    o3_8h: float | None = None
    no2: float | None = None
    co: float | None = None
    so2: float | None = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None:
                _concentration(field.name, value)


def _mean(values: Sequence[float | None], min_count: int) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if len(present) >= min_count else None


def daily_inputs(
    hours: Mapping[str, Sequence[float | None]],
    *,
    o3_before: Sequence[float | None] = (),
    min_hours: int = DAILY_MIN_HOURS,
    min_hours_8h: int = O3_8H_MIN_HOURS,
) -> DailyInputs:
    """Aggregate one day's hourly means (oldest first: the hours ending 01:00 … 00:00 next day).

    PM: the mean of at least `min_hours` hours, else None. SO2, NO2, CO and O3 1h: the maximum of the
    hours present (1459 sets no completeness rule for a maximum). O3 8h: the maximum of the day's 24
    rolling means, each over the 8 hours ending at that hour and needing `min_hours_8h` of them; pass the
    previous day's last 7 hours (18:00 … 00:00, oldest first) as `o3_before` so the early windows are full.
    """
    _check_hours_keys(hours)
    if not 1 <= min_hours <= _DAY_HOURS:
        raise ValueError(f"min_hours {min_hours} must be between 1 and {_DAY_HOURS}")
    if not 1 <= min_hours_8h <= _O3_WINDOW:
        raise ValueError(f"min_hours_8h {min_hours_8h} must be between 1 and {_O3_WINDOW}")
    if len(o3_before) > _O3_WINDOW - 1:
        raise ValueError(f"o3: o3_before has {len(o3_before)} hours; the 8h windows need at most {_O3_WINDOW - 1}")
    day: dict[str, list[float | None]] = {}
    for pollutant, values in hours.items():
        if len(values) > _DAY_HOURS:
            raise ValueError(f"{pollutant}: {len(values)} hourly values for one day; a day has {_DAY_HOURS}")
        day[pollutant] = _checked_hours(pollutant, values, "hour {}")
    before = _checked_hours("o3", o3_before, "o3_before hour {}")

    def maximum(pollutant: str) -> float | None:
        present = [v for v in day.get(pollutant, ()) if v is not None]
        return max(present) if present else None

    o3_8h: float | None = None
    o3 = day.get("o3", [])
    if o3:
        padded = [None] * (_O3_WINDOW - 1 - len(before)) + before + o3
        means = [_mean(padded[h : h + _O3_WINDOW], min_hours_8h) for h in range(len(o3))]
        valid = [m for m in means if m is not None]
        o3_8h = max(valid) if valid else None
    return DailyInputs(
        pm25=_mean(day.get("pm25", []), min_hours),
        pm10=_mean(day.get("pm10", []), min_hours),
        o3_1h=maximum("o3"),
        o3_8h=o3_8h,
        no2=maximum("no2"),
        co=maximum("co"),
        so2=maximum("so2"),
    )


def daily_aqi_from(inputs: DailyInputs) -> AqiResult | None:
    """AQI^d from a day's aggregates; None without a PM2.5 or PM10 mean.

    O3 takes the larger of its 1h and 8h sub-indices, skipping the 8h one when the maximum 8h mean is
    above 400 µg/m³ (1459 has no 8h breakpoint there).
    """
    subs: dict[str, Decimal] = {}
    for pollutant, value, averaging in (
        ("pm25", inputs.pm25, "24h"),
        ("pm10", inputs.pm10, "24h"),
        ("no2", inputs.no2, "1h"),
        ("co", inputs.co, "1h"),
        ("so2", inputs.so2, "1h"),
    ):
        if value is not None:
            subs[pollutant] = _sub_index(pollutant, value, averaging)
    o3 = [_sub_index("o3", inputs.o3_1h, "1h")] if inputs.o3_1h is not None else []
    if inputs.o3_8h is not None and Decimal(repr(inputs.o3_8h)) <= _O3_8H_LIMIT:
        o3.append(_sub_index("o3", inputs.o3_8h, "8h"))
    if o3:
        subs["o3"] = max(o3)
    return _result(subs)


def daily_aqi(
    hours: Mapping[str, Sequence[float | None]],
    *,
    o3_before: Sequence[float | None] = (),
    min_hours: int = DAILY_MIN_HOURS,
    min_hours_8h: int = O3_8H_MIN_HOURS,
) -> AqiResult | None:
    """AQI^d from one day's hourly means (oldest first); see `daily_inputs` for the aggregation rules."""
    return daily_aqi_from(daily_inputs(hours, o3_before=o3_before, min_hours=min_hours, min_hours_8h=min_hours_8h))
