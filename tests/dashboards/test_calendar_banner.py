"""The dashboards warn officials, in their language, before the working-day calendar runs out; not the public."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from dashboards import shell
from ioc.workdays import default_calendar
from tests.dashboards import seed
from tests.dashboards.conftest import app, chdb_settings

LAST = default_calendar().years[-1]


def at_date(monkeypatch: pytest.MonkeyPatch, day: dt.datetime) -> None:
    monkeypatch.setattr(shell, "_today", lambda: day)


def warnings(path: Path, monkeypatch: pytest.MonkeyPatch, **settings: object) -> list[str]:
    at = app(monkeypatch, chdb_settings(path, seed.DISTRICT, **settings))
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return [str(w.value) for w in at.warning]


def test_officials_are_warned_in_the_last_quarter_of_the_calendars_last_year(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = chdb_seeded
    at_date(monkeypatch, dt.datetime(LAST, 11, 1, 2, tzinfo=dt.UTC))
    [vi] = [w for w in warnings(path, monkeypatch, local_role="operator") if "Lịch ngày làm việc" in w]
    assert f"chỉ có đến hết năm {LAST} (còn 60 ngày)" in vi and f"năm {LAST + 1}" in vi
    [en] = [w for w in warnings(path, monkeypatch, local_role="viewer", language="en") if "calendar" in w]
    assert f"only covers up to the end of {LAST} (60 days left)" in en


def test_beyond_the_calendar_the_banner_says_deadlines_skip_only_weekends(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = chdb_seeded
    at_date(monkeypatch, dt.datetime(LAST + 1, 1, 5, 2, tzinfo=dt.UTC))
    [en] = [w for w in warnings(path, monkeypatch, local_role="operator", language="en") if "calendar" in w]
    assert f"has no {LAST + 1}" in en and "only Saturdays and Sundays" in en


def test_no_banner_while_the_calendar_covers_today_nor_on_the_public_page(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = chdb_seeded
    at_date(monkeypatch, dt.datetime(LAST, 3, 2, 2, tzinfo=dt.UTC))
    assert not [w for w in warnings(path, monkeypatch, local_role="operator") if "Lịch ngày làm việc" in w]
    at_date(monkeypatch, dt.datetime(LAST, 11, 1, 2, tzinfo=dt.UTC))
    public = warnings(path, monkeypatch, local_role=None, public_enabled=True)
    assert not [w for w in public if "Lịch ngày làm việc" in w]
