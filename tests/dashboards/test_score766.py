"""The 766 score as the dashboards show it: re-based with its coverage, and a ranking that never rewards missing data.

Pure-logic tests of `dashboards.data.score766`, then the real ClickHouse server: the rows the stream workers write
(streams.indicators, from dossier snapshots) read back by `SiteData` and by the services page under AppTest.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from dashboards.data import score766
from dashboards.data.site import SiteData
from dashboards.data.source import close_all, warehouse_for
from dashboards.sites import Site
from ioc import decision766, units
from ioc.clients import clickhouse as ch
from ioc.settings import ClickHouseEndpoint, DashboardSettings
from streams import indicators
from streams.warehouse import migrations
from tests.dashboards.conftest import app, chdb_settings, page_text
from tests.streams.test_scoring766 import AS_OF, DESK, IN_PROGRESS, _june_records, at, dossier

TREE = units.load_tree("2024")
DISTRICT, FULL, PARTIAL, EMPTY = "724", "25957", "25951", "25942"  # Dĩ An; Đông Hòa, Bình An, Dĩ An ward
JUNE = dt.date(2025, 6, 1)


def _unit(earned: float, coverage: float, codes: str) -> score766.UnitScore:
    return score766.UnitScore(earned, coverage, frozenset(codes.split()))


# --- pure ------------------------------------------------------------------------------------------------------


def test_a_unit_measured_on_fewer_indicators_is_not_ranked_above_one_measured_on_all() -> None:
    scores = {
        "A": _unit(27.0, 54.0, "1.4 2.1 3.3 3.4 3.6 4.1 4.2 5.4"),  # 50.0
        "B": _unit(43.2, 54.0, "1.4 2.1 3.3 3.4 3.6 4.1 4.2 5.4"),  # 80.0
        "C": _unit(42.0, 42.0, "1.4 2.1 3.3 3.4 4.2 5.4"),  # 100 on 42: no fee, nothing finished
        "D": _unit(0.0, 0.0, ""),  # no data: it used to score 100 and rank first
    }
    rows = score766.ranking(scores, str.lower)
    assert [(r["unit"], r["rank"], r["standing"], r["score"]) for r in rows] == [
        ("B", 1, "ranked", 80.0),
        ("A", 2, "ranked", 50.0),
        ("C", None, "insufficient", 100.0),
        ("D", None, "no_data", None),
    ]
    assert rows[0]["place"] == "b" and rows[2]["coverage"] == 42.0


def test_units_measured_on_the_same_indicators_are_all_ranked_whatever_their_number() -> None:
    # Every unit measured on the same two indicators: they compare fairly with each other.
    rows = score766.ranking({"X": _unit(6.0, 26.0, "1.4 2.1"), "Y": _unit(20.0, 26.0, "1.4 2.1")}, str)
    assert [(r["unit"], r["rank"]) for r in rows] == [("Y", 1), ("X", 2)]
    assert score766.ranking({"Z": _unit(0.0, 0.0, "")}, str)[0]["standing"] == "no_data"


def test_merged_units_pool_their_points() -> None:
    pooled = score766.merged([_unit(27.0, 54.0, "2.1"), _unit(21.0, 42.0, "1.4")])
    assert pooled is not None
    assert (pooled.earned, pooled.coverage, pooled.measured) == (48.0, 96.0, frozenset({"1.4", "2.1"}))
    assert pooled.score == 50.0
    assert score766.merged([]) is None


# --- the real ClickHouse server ---------------------------------------------------------------------------------


def _records() -> list[Any]:
    # FULL: the hand-computed month of tests/streams/test_scoring766.py (64.60 on 54). PARTIAL: three dossiers still
    # in progress, none with a fee, one at the desk: 41 on 42 (3.6 and 4.1 unmeasured). EMPTY and the rest: nothing.
    due = at(3, 17, month=7)
    perfect = {"due": due, "status": IN_PROGRESS, "fully_online": True, "digitised": True}
    return [
        *_june_records(),
        *dossier("P1", unit=PARTIAL, **perfect),
        *dossier("P2", unit=PARTIAL, **perfect),
        *dossier("P3", unit=PARTIAL, channel=DESK, due=due, status=IN_PROGRESS, digitised=True),
    ]


@pytest.fixture
def scored(clickhouse: dict[str, Any]) -> Iterator[tuple[ClickHouseEndpoint, list[dict[str, Any]]]]:
    """A fresh database on the real server, migrated, holding the rows the dossiers agent writes for Dĩ An."""
    database = f"score766_{uuid.uuid4().hex[:10]}"
    endpoint = ClickHouseEndpoint(
        host=clickhouse["host"],
        port=clickhouse["port"],
        http_port=clickhouse["http_port"],
        user=clickhouse["user"],
        password=SecretStr(clickhouse["password"]),
        database=database,
    )
    admin = ch.connect(endpoint.model_copy(update={"database": "default"}))
    migrations.migrate(admin, database)
    period = indicators.Period("month", JUNE)
    wanted = [DISTRICT, *(u.code for u in TREE.children(DISTRICT))]
    scheme = decision766.default_scheme()
    rows = indicators.scorecards(_records(), scheme, TREE, period, as_of=AS_OF, units=wanted)
    admin.insert(f"{database}.indicators_766", rows)
    try:
        yield endpoint, rows
    finally:
        close_all()
        admin.command(f"DROP DATABASE IF EXISTS {database}")
        admin.close()


def _settings(endpoint: ClickHouseEndpoint, **overrides: Any) -> DashboardSettings:
    return chdb_settings(Path("unused"), DISTRICT, **overrides).model_copy(
        update={"chdb_path": None, "clickhouse": endpoint}
    )


@pytest.mark.slow
@pytest.mark.clickhouse
def test_a_unit_with_no_data_does_not_rank_first_on_clickhouse(
    scored: tuple[ClickHouseEndpoint, list[dict[str, Any]]],
) -> None:
    endpoint, _ = scored
    settings = _settings(endpoint)
    data = SiteData(warehouse_for(settings), Site.from_settings(settings))
    ranking = data.score_ranking(DISTRICT, JUNE)
    assert len(ranking) == len(TREE.children(DISTRICT))
    first = ranking[0]
    assert (first["unit"], first["rank"], first["score"], first["coverage"]) == (FULL, 1, 64.6, 54.0)
    by_unit = {r["unit"]: r for r in ranking}
    # Bình An scores 41 of the 42 points it was measured on (P3 not fully online: 3.4 = 3 × 2/3), 97.62: shown,
    # not ranked above Đông Hòa's 64.60 on 54.
    assert (by_unit[PARTIAL]["rank"], by_unit[PARTIAL]["standing"]) == (None, "insufficient")
    assert (by_unit[PARTIAL]["score"], by_unit[PARTIAL]["coverage"]) == (97.62, 42.0)
    # Dĩ An ward has no dossier: no score, listed last, never ranked (it scored 100 and ranked first before).
    assert (by_unit[EMPTY]["rank"], by_unit[EMPTY]["standing"], by_unit[EMPTY]["score"]) == (None, "no_data", None)
    assert [r["rank"] for r in ranking if r["rank"] is not None] == [1]
    assert ranking[1]["unit"] == PARTIAL and all(r["standing"] == "no_data" for r in ranking[2:])
    headline = data.headline(EMPTY)
    assert (headline.score_766, headline.score_766_coverage) == (None, 0.0)


@pytest.mark.slow
@pytest.mark.clickhouse
@pytest.mark.parametrize(
    ("language", "coverage", "apart", "no_data"),
    [
        ("vi", "trên 54 điểm đo được", "Không đủ dữ liệu", "Chưa có dữ liệu"),
        ("en", "on 54 points measured", "Not enough data", "No data"),
    ],
)
def test_the_services_page_states_the_score_coverage(
    scored: tuple[ClickHouseEndpoint, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    language: str,
    coverage: str,
    apart: str,
    no_data: str,
) -> None:
    endpoint, rows = scored
    mine = [r for r in rows if r["unit"] == DISTRICT and r["measured"]]
    # The district covers Đông Hòa and Bình An: every collected indicator measured, re-based on their 54 points.
    assert sum(r["max_points"] for r in mine) == 54
    expected = f"{sum(r['points'] for r in mine) * 100 / 54:.1f} / 100 {coverage}"
    at = app(monkeypatch, _settings(endpoint, local_role="viewer", language=language))
    at.run()
    at.switch_page("screens/services.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    text = page_text(at)
    assert expected in text
    assert apart in text and no_data in text  # the wards apart from the ranking, and the indicators not measured
    total = next(m for m in at.metric if m.value == expected)
    assert total.label in ("Tổng điểm", "Total points")
