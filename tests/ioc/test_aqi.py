"""VN_AQI (1459/QĐ-TCMT): the document's worked examples, band edges, completeness and bad input."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioc import aqi
from ioc.events import MEASURES

# Section 2.3's NowCast example: PM2.5 hourly means from 09:00 to 20:00, oldest first.
PM25_0900_TO_2000 = [26.9, 24.7, 20.5, 23.5, 19.5, 16.5, 19.0, 16.5, 20.3, 22.4, 19.6, 20.6]
PM25_NEWEST_FIRST = PM25_0900_TO_2000[::-1]


def test_pollutants_are_the_platforms_measures_in_micrograms() -> None:
    for pollutant in aqi.POLLUTANTS:
        assert MEASURES[pollutant].unit == "µg/m³"


def test_nowcast_matches_the_documents_example() -> None:
    assert min(PM25_0900_TO_2000) / max(PM25_0900_TO_2000) == pytest.approx(0.61, abs=0.005)
    value = aqi.nowcast(PM25_NEWEST_FIRST)
    assert value == pytest.approx(20.27, abs=0.005)
    assert round(value, 1) == 20.3  # as the document prints it


def test_nowcast_floors_the_weight_at_one_half() -> None:
    # min/max = 0.1 → w = 1/2; normalised: (40 + 4·½) / (1 + ½) = 28.
    assert aqi.nowcast([40.0, 4.0]) == pytest.approx(28.0)
    assert aqi.nowcast([0.0, 0.0, 0.0]) == 0.0


def test_nowcast_needs_two_of_the_three_latest_hours() -> None:
    assert aqi.nowcast([None, None, 30.0, 30.0, 30.0]) is None
    assert aqi.nowcast([30.0]) is None
    assert aqi.nowcast([]) is None
    assert aqi.nowcast([None, 30.0, 10.0]) is not None


def test_nowcast_gives_a_missing_hour_no_weight() -> None:
    # c2 missing: weights 1 and w² on c1 and c3, with w = 10/20.
    assert aqi.nowcast([20.0, None, 10.0]) == pytest.approx((20 + 0.25 * 10) / 1.25)


def test_nowcast_uses_only_twelve_hours() -> None:
    assert aqi.nowcast([*PM25_NEWEST_FIRST, 900.0]) == aqi.nowcast(PM25_NEWEST_FIRST)


def test_hourly_aqi_example() -> None:
    # The document prints sub-indices 43, "60", 41 and AQI^h 60. NO2 118.7 µg/m³ actually gives
    # 100 + 50 x 18.7/100 = 59.35, which rounds to 59: the "60" is an error in the document, so the
    # AQI^h is 59. O3 and PM2.5 (NowCast 20.27) agree with it.
    result = aqi.hourly_aqi({"o3": [136.1], "no2": [118.7], "pm25": PM25_NEWEST_FIRST})
    assert result is not None
    assert result.sub_indices["o3"] == pytest.approx(42.53125)
    assert result.sub_indices["no2"] == pytest.approx(59.35)
    assert aqi.round_aqi(result.sub_indices["pm25"]) == 41
    assert result.aqi == 59
    assert result.dominant == "no2"
    assert result.band.label_vi == "Trung bình"


def test_hourly_aqi_needs_particulates() -> None:
    assert aqi.hourly_aqi({"o3": [136.1], "no2": [118.7]}) is None
    # NowCast not computable (only c3 present) is the same as no PM.
    assert aqi.hourly_aqi({"pm25": [None, None, 20.0], "no2": [118.7]}) is None
    only_pm10 = aqi.hourly_aqi({"pm10": [60.0, 60.0]})
    assert only_pm10 is not None
    assert only_pm10.aqi == 55
    assert only_pm10.dominant == "pm10"


def test_hourly_aqi_leaves_out_a_gas_without_a_current_hour() -> None:
    result = aqi.hourly_aqi({"pm25": [10.0, 10.0], "no2": [None, 500.0], "so2": []})
    assert result is not None
    assert set(result.sub_indices) == {"pm25"}


def test_daily_aqi_example() -> None:
    # Raw sub-indices 44.65 (O3 8h), 35.8 (O3 1h), 65.4 (NO2), 109.5 (PM2.5): printed as 45, 36, 65, 110,
    # which is round half up.
    day = aqi.DailyInputs(o3_8h=89.3, o3_1h=114.6, no2=130.8, pm25=55.7)
    result = aqi.daily_aqi_from(day)
    assert result is not None
    assert aqi.sub_index("o3", 89.3, "8h") == pytest.approx(44.65)
    assert aqi.sub_index("o3", 114.6, "1h") == pytest.approx(35.8125)
    assert [aqi.round_aqi(aqi.sub_index("o3", c, a)) for c, a in ((89.3, "8h"), (114.6, "1h"))] == [45, 36]
    assert dict(result.sub_indices) == pytest.approx({"o3": 44.65, "no2": 65.4, "pm25": 109.5})
    assert aqi.round_aqi(result.sub_indices["no2"]) == 65
    assert result.aqi == 110
    assert result.dominant == "pm25"
    assert result.band.level == 3


def test_daily_o3_skips_the_8h_index_above_400() -> None:
    day = aqi.DailyInputs(pm25=10.0, o3_1h=450.0, o3_8h=410.0)
    result = aqi.daily_aqi_from(day)
    assert result is not None
    assert result.sub_indices["o3"] == pytest.approx(aqi.sub_index("o3", 450.0, "1h"))
    with pytest.raises(ValueError, match=r"o3: an 8h average .* above 400"):
        aqi.sub_index("o3", 410.0, "8h")


def test_daily_aqi_from_hourly_values() -> None:
    o3 = [50.0] * 24
    o3[10:18] = [120.0] * 8  # one 8h window averages 120 µg/m³
    o3[14] = 180.0  # and the day's 1h maximum is 180
    result = aqi.daily_aqi(
        {"pm25": [40.0] * 12 + [60.0] * 12, "no2": [None] * 23 + [130.8], "o3": o3},
        o3_before=[0.0] * 7,
    )
    assert result is not None
    assert result.sub_indices["pm25"] == pytest.approx(100.0)  # 24h mean 50
    assert result.sub_indices["no2"] == pytest.approx(65.4)
    # Max 8h mean (7 x 120 + 180)/8 = 127.5 → 100 + 50 x 7.5/50 = 107.5, above the 1h maximum's 75.
    assert result.sub_indices["o3"] == pytest.approx(107.5)
    assert result.aqi == 108
    assert result.dominant == "o3"


def test_daily_completeness() -> None:
    seventeen = [30.0] * 17 + [None] * 7
    assert aqi.daily_aqi({"pm25": seventeen}) is None
    assert aqi.daily_aqi({"pm25": seventeen}, min_hours=17) is not None
    assert aqi.daily_aqi({"pm25": [30.0] * 18}) is not None
    inputs = aqi.daily_inputs({"pm25": [30.0] * 24, "o3": [None] * 19 + [100.0] * 5})
    assert inputs.o3_8h is None  # no 8h window with 6 of 8 hours
    assert inputs.o3_1h == 100.0
    early = aqi.daily_inputs({"o3": [100.0] * 3}, o3_before=[100.0] * 7)
    assert early.o3_8h == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("value", "level", "label_vi", "label_en", "hex_"),
    [
        (0, 1, "Tốt", "Good", "#00E400"),
        (50, 1, "Tốt", "Good", "#00E400"),
        (51, 2, "Trung bình", "Moderate", "#FFFF00"),
        (100, 2, "Trung bình", "Moderate", "#FFFF00"),
        (101, 3, "Kém", "Poor", "#FF7E00"),
        (151, 4, "Xấu", "Bad", "#FF0000"),
        (201, 5, "Rất xấu", "Very bad", "#8F3F97"),
        (300, 5, "Rất xấu", "Very bad", "#8F3F97"),
        (301, 6, "Nguy hại", "Hazardous", "#7E0023"),
        (500, 6, "Nguy hại", "Hazardous", "#7E0023"),
        (750, 6, "Nguy hại", "Hazardous", "#7E0023"),  # above the cap: never milder
    ],
)
def test_band_edges(value: int, level: int, label_vi: str, label_en: str, hex_: str) -> None:
    found = aqi.band(value)
    assert (found.level, found.label_vi, found.label_en, found.hex) == (level, label_vi, label_en, hex_)


def test_bands_are_contiguous() -> None:
    assert aqi.BANDS[0].low == 0
    assert aqi.BANDS[-1].high == 500
    for lower, upper in zip(aqi.BANDS, aqi.BANDS[1:], strict=False):
        assert upper.low == lower.high + 1
    assert [b.colour_vi for b in aqi.BANDS] == ["Xanh", "Vàng", "Da cam", "Đỏ", "Tím", "Nâu"]


def test_band_refuses_a_negative_index() -> None:
    with pytest.raises(ValueError, match="negative"):
        aqi.band(-1)


def test_breakpoints_are_continuous_not_us_epa() -> None:
    assert aqi.sub_index("pm25", 25.0) == 50.0
    assert aqi.sub_index("pm25", 25.05) == pytest.approx(50.1)
    assert aqi.sub_index("co", 10_000.0) == 50.0  # CO in µg/m³, not mg/m³
    assert aqi.sub_index("pm10", 150.0, "24h") == 100.0


def test_top_breakpoint_and_above_cap_at_500() -> None:
    assert aqi.sub_index("pm25", 500.0) == 500.0
    assert aqi.sub_index("pm25", 425.0) == pytest.approx(450.0)
    assert aqi.sub_index("pm25", 5000.0) == 500.0
    assert aqi.sub_index("o3", 1500.0) == 500.0
    assert aqi.sub_index("o3", 400.0, "8h") == 300.0


def test_round_aqi_is_half_up() -> None:
    assert [aqi.round_aqi(v) for v in (0.5, 1.5, 2.5, 44.65, 109.5, 109.49)] == [1, 2, 3, 45, 110, 109]


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: aqi.sub_index("pm25", -1.0), "pm25: concentration -1.0"),
        (lambda: aqi.sub_index("no2", math.nan), "no2: concentration nan"),
        (lambda: aqi.sub_index("co", math.inf), "co: concentration inf"),
        (lambda: aqi.sub_index("pm1", 10.0), "unknown pollutant 'pm1'"),
        (lambda: aqi.sub_index("o3", 10.0, "24h"), "o3: no sub-index for averaging '24h'"),
        (lambda: aqi.sub_index("so2", 10.0, "24h"), "so2: no sub-index"),
        (lambda: aqi.sub_index("pm10", 10.0, "8h"), "pm10: no sub-index"),
        (lambda: aqi.nowcast([10.0, -2.0]), "c2 -2.0"),
        (lambda: aqi.hourly_aqi({"pm25": [10.0, 10.0], "nox": [1.0]}), "unknown pollutant 'nox'"),
        (lambda: aqi.hourly_aqi({"pm10": [10.0, -5.0]}), "pm10: hourly value c2 -5.0"),
        (lambda: aqi.hourly_aqi({"pm25": [10.0, 10.0], "so2": [-1.0]}), "so2: hourly value c1"),
        (lambda: aqi.daily_aqi({"pm25": [10.0] * 25}), "pm25: 25 hourly values"),
        (lambda: aqi.daily_aqi({"o3": [-1.0]}), "o3: hour 1 -1.0"),
        (lambda: aqi.daily_aqi({"o3": [1.0]}, o3_before=[1.0] * 8), "o3: o3_before has 8 hours"),
        (lambda: aqi.daily_aqi({"pm25": [1.0]}, min_hours=0), "min_hours 0"),
        (lambda: aqi.DailyInputs(pm10=-3.0), "pm10: concentration -3.0"),
    ],
)
def test_invalid_input_names_the_pollutant(call, needle: str) -> None:
    with pytest.raises(ValueError, match=re.escape(needle)) as info:
        call()
    assert needle in str(info.value)


_COLUMNS: list[tuple[str, aqi.Averaging]] = [
    ("o3", "1h"),
    ("o3", "8h"),
    ("co", "1h"),
    ("so2", "1h"),
    ("no2", "1h"),
    ("pm10", "24h"),
    ("pm25", "1h"),
]


@given(
    column=st.sampled_from(_COLUMNS),
    a=st.floats(min_value=0, max_value=200_000, allow_nan=False),
    b=st.floats(min_value=0, max_value=200_000, allow_nan=False),
)
def test_sub_index_is_monotonic_in_concentration(column: tuple[str, aqi.Averaging], a: float, b: float) -> None:
    pollutant, averaging = column
    low, high = sorted((a, b))
    if pollutant == "o3" and averaging == "8h":
        low, high = low % 400.0, min(high, 400.0)  # no 8h sub-index above 400 µg/m³
        low, high = sorted((low, high))
    first = aqi.sub_index(pollutant, low, averaging)
    second = aqi.sub_index(pollutant, high, averaging)
    assert 0.0 <= first <= second <= 500.0
