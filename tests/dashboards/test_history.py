"""History pages: any date range, checked; range queries; CSV and Parquet of what a page shows, masked, audited."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from dashboards import auth
from dashboards.audit import AuditLog
from dashboards.data import SiteData, warehouse_for
from dashboards.data.history import LOCAL_TZ, MAX_DAYS, BadRange, Window, day_window, export_bytes
from dashboards.sites import Site, UnitOutsideSite
from tests.dashboards import seed
from tests.dashboards.conftest import app, chdb_settings

# --- pure: windows and files --------------------------------------------------------------------------------


def test_a_day_range_is_local_days_both_included() -> None:
    window = day_window(dt.date(2026, 12, 1), dt.date(2026, 12, 3))
    assert window.start == dt.datetime(2026, 12, 1, tzinfo=LOCAL_TZ)
    assert window.end == dt.datetime(2026, 12, 4, tzinfo=LOCAL_TZ)
    assert window.params == {"start": window.start, "end": window.end}
    one = day_window(dt.date(2026, 12, 7), dt.date(2026, 12, 7))
    assert one.end - one.start == dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("first", "last", "reason"),
    [
        (dt.date(2026, 12, 3), dt.date(2026, 12, 1), "reversed"),
        (dt.date(2025, 1, 1), dt.date(2026, 12, 1), "too_long"),
        (dt.date(2026, 12, 9), dt.date(2026, 12, 10), "future"),
    ],
)
def test_ranges_a_page_cannot_show_are_refused_with_their_reason(first: dt.date, last: dt.date, reason: str) -> None:
    with pytest.raises(BadRange) as refused:
        day_window(first, last, today=dt.date(2026, 12, 7))
    assert refused.value.reason == reason
    assert day_window(dt.date(2025, 12, 7), dt.date(2026, 12, 7)).end  # a whole year (366 days) is fine
    assert MAX_DAYS == 366


def test_a_window_needs_aware_ends_in_order() -> None:
    now = dt.datetime(2026, 12, 7, 8, tzinfo=dt.UTC)
    assert Window.last(now, hours=3).start == now - dt.timedelta(hours=3)
    with pytest.raises(BadRange, match="before it starts"):
        Window(now, now)
    with pytest.raises(BadRange, match="timezone-aware"):
        Window(now.replace(tzinfo=None), now)


ROWS = [
    {"at": dt.datetime(2026, 12, 7, 1, tzinfo=dt.UTC), "place": "phường Đông Hòa", "aqi": 160, "types": ["a", "b"]},
    {"at": dt.datetime(2026, 12, 7, 2, tzinfo=dt.UTC), "place": "phường Bình An", "aqi": None, "types": []},
]
COLUMNS = [("at", "Giờ"), ("place", "Địa bàn"), ("aqi", "AQI"), ("types", "Loại")]


def test_csv_is_the_columns_shown_in_utf8_for_spreadsheets() -> None:
    data = export_bytes(ROWS, COLUMNS, "csv")
    assert data.startswith("\ufeff".encode())  # a BOM: spreadsheet programs then read Vietnamese correctly
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert lines == [
        ["Giờ", "Địa bàn", "AQI", "Loại"],
        ["2026-12-07T01:00:00+00:00", "phường Đông Hòa", "160", "a, b"],
        ["2026-12-07T02:00:00+00:00", "phường Bình An", "", ""],
    ]


def test_parquet_holds_the_same_table_with_types() -> None:
    table = pq.read_table(io.BytesIO(export_bytes(ROWS, COLUMNS, "parquet")))
    assert table.column_names == ["Giờ", "Địa bàn", "AQI", "Loại"]
    rows = table.to_pylist()
    assert rows[0]["AQI"] == 160 and rows[1]["AQI"] is None
    assert rows[0]["Giờ"] == dt.datetime(2026, 12, 7, 1, tzinfo=dt.UTC)
    assert rows[0]["Địa bàn"] == "phường Đông Hòa"


# --- the data layer on the seeded warehouse ------------------------------------------------------------------


def _data(path: Path, unit: str, audit: AuditLog) -> SiteData:
    settings = chdb_settings(path, unit)
    return SiteData(warehouse_for(settings), Site.from_settings(settings), audit=audit)


def test_range_queries_read_exactly_their_window(chdb_seeded: tuple[Path, seed.Seeded], tmp_path: Path) -> None:
    path, seeded = chdb_seeded
    data = _data(path, seed.DISTRICT, AuditLog(tmp_path / "audit.jsonl"))
    hour = seeded.now.replace(minute=0, second=0)
    last_three = Window(hour - dt.timedelta(hours=2), hour + dt.timedelta(hours=1))
    hours = {r["hour"] for r in data.aqi_trend(seed.DISTRICT, window=last_three)}
    assert hours == {hour - dt.timedelta(hours=h) for h in range(3)}
    before = Window(seeded.now - dt.timedelta(days=30), seeded.now - dt.timedelta(days=29))
    assert data.aqi_trend(seed.DISTRICT, window=before) == []
    assert data.pollutant_trend(seed.DISTRICT, window=before) == []
    assert data.water_trend(seed.DISTRICT, window=before) == []
    everything = Window(seeded.now - dt.timedelta(days=2), seeded.now + dt.timedelta(minutes=1))
    assert data.violations(seed.DISTRICT, window=everything) == data.violations(seed.DISTRICT)
    assert data.violations(seed.DISTRICT, window=before) == []
    assert data.rejections(seed.DISTRICT, window=before) == []


def test_an_export_is_masked_unless_an_operator_revealed_and_every_download_is_audited(
    chdb_seeded: tuple[Path, seed.Seeded], tmp_path: Path
) -> None:
    path, seeded = chdb_seeded
    audit_file = tmp_path / "audit.jsonl"
    data = _data(path, seed.DISTRICT, AuditLog(audit_file))
    site = data.site
    operator = auth.access_for(
        {"sub": "op", "email": "op@binhduong.gov.vn", "ioc_grants": [f"operator@{seed.DISTRICT}"]}, site, "ioc_grants"
    )
    viewer = auth.access_for(
        {"sub": "v", "email": "v@binhduong.gov.vn", "ioc_grants": [f"viewer@{seed.DISTRICT}"]}, site, "ioc_grants"
    )
    columns = [("device_key", "Camera"), ("plate", "Biển số")]
    revealed = data.camera_events(seed.DISTRICT, reveal_for=operator)
    plates = {r["plate"] for r in revealed if r["plate"]}
    assert plates  # the seeded violations carry plates
    masked_file = data.export_file(seed.DISTRICT, revealed, columns, "csv", access=viewer, revealed=True)
    shown = masked_file.decode("utf-8-sig")
    assert not any(plate in shown for plate in plates)  # a viewer's file is masked, whatever the page asked
    operator_file = data.export_file(seed.DISTRICT, revealed, columns, "parquet", access=operator, revealed=True)
    assert plates <= set(pq.read_table(io.BytesIO(operator_file)).column("Biển số").to_pylist())
    unrevealed = data.export_file(seed.DISTRICT, revealed, columns, "csv", access=operator, revealed=False)
    assert not any(plate in unrevealed.decode("utf-8-sig") for plate in plates)

    window = day_window(seeded.now.astimezone(LOCAL_TZ).date(), seeded.now.astimezone(LOCAL_TZ).date())
    data.record_export(
        seed.DISTRICT, "camera-events", "parquet", access=operator, rows=len(revealed), revealed=True, window=None
    )
    data.record_export(seed.DISTRICT, "aqi-hourly", "csv", access=viewer, rows=3, revealed=False, window=window)
    entries = [json.loads(line) for line in audit_file.read_text(encoding="utf-8").splitlines()]
    exports = [e for e in entries if e["action"] == "export"]
    assert [(e["actor"], e["targets"], e["detail"]["format"], e["detail"]["personal_data"]) for e in exports] == [
        ("op@binhduong.gov.vn", ["camera-events"], "parquet", "revealed"),
        ("v@binhduong.gov.vn", ["aqi-hourly"], "csv", "masked"),
    ]
    assert exports[1]["detail"]["start"] == window.start.isoformat() and exports[1]["site"] == seed.DISTRICT
    with pytest.raises(UnitOutsideSite):  # scoped: nothing of another district goes into a file
        data.export_file(seed.AIR_WARDS[0], revealed, columns, "csv", access=operator)


def test_the_environment_page_takes_a_date_range_and_refuses_a_reversed_one(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = chdb_seeded
    at = app(monkeypatch, chdb_settings(path, seed.DISTRICT, local_role="viewer"))
    at.run()
    at.switch_page("screens/environment.py").run()
    assert not at.exception and not at.error
    today = dt.datetime.now(LOCAL_TZ).date()
    first, last = at.date_input(key="environment-range-from"), at.date_input(key="environment-range-to")
    assert (first.value, last.value) == (today, today)  # today's window by default
    assert [d.label for d in at.date_input] == ["Từ ngày", "Đến ngày"]
    first.set_value(today - dt.timedelta(days=1)).run()
    assert not at.exception and not at.error
    at.date_input(key="environment-range-to").set_value(today - dt.timedelta(days=3)).run()
    assert any("Ngày kết thúc đứng trước ngày bắt đầu" in w.value for w in at.warning)
