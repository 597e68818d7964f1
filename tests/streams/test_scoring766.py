"""Decision 766 scoring: hand-computed months (all data, some missing, none), replays, subtrees, bounds."""

from __future__ import annotations

import datetime as dt
import random
from fractions import Fraction
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc import decision766, units
from ioc.events import DossierChannel, DossierStatus, ServiceRecord
from streams import scoring766

TZ = dt.timezone(dt.timedelta(hours=7))
SCHEME = decision766.default_scheme()
JUNE_START = dt.datetime(2025, 6, 1, tzinfo=TZ)
JUNE_END = dt.datetime(2025, 7, 1, tzinfo=TZ)
AS_OF = dt.datetime(2025, 6, 30, 17, tzinfo=TZ)
ONLINE, DESK, POSTAL = DossierChannel.ONLINE, DossierChannel.ONE_STOP_DESK, DossierChannel.POSTAL
PROCESSED, RETURNED = DossierStatus.PROCESSED, DossierStatus.RETURNED
IN_PROGRESS, WITHDRAWN = DossierStatus.IN_PROGRESS, DossierStatus.WITHDRAWN


def at(day: int, hour: int = 9, month: int = 6) -> dt.datetime:
    return dt.datetime(2025, month, day, hour, tzinfo=TZ)


def dossier(
    dossier_id: str,
    *,
    unit: str = "25957",
    channel: DossierChannel = ONLINE,
    received: dt.datetime | None = None,
    due: dt.datetime | None = None,
    **final: Any,
) -> list[ServiceRecord]:
    """A dossier's history: its receipt (version 1, nothing done yet) and its latest snapshot (version 2)."""
    received = received or at(2)
    common: dict[str, Any] = {
        "dossier_id": dossier_id,
        "unit": unit,
        "procedure_code": "1.001612",
        "channel": channel,
        "received_at": received,
        "due_at": due or at(10, 17),
    }
    first = ServiceRecord(**common, status_version=1, status=DossierStatus.RECEIVED, occurred_at=received)
    final.setdefault("occurred_at", final.get("finished_at") or received + dt.timedelta(days=1))
    return [first, ServiceRecord(**common, status_version=2, **final)]


def _june_records() -> list[ServiceRecord]:
    """Ten dossiers of phường Đông Hòa (25957) received in June 2025, each failing something known."""
    return [
        *dossier(
            "D01",
            fully_online=True,
            requires_payment=True,
            paid_online=True,
            digitised=True,
            result_digital=True,
            status=PROCESSED,
            finished_at=at(9, 15),
            satisfaction="satisfied",
        ),
        *dossier(
            "D02",
            fully_online=True,
            digitised=True,
            result_digital=True,
            status=PROCESSED,
            finished_at=at(5),
            satisfaction="unsatisfied",  # on time, but disliked
        ),
        *dossier(  # a day late, unpaid and disliked
            "D03",
            requires_payment=True,
            digitised=True,
            result_digital=True,
            status=PROCESSED,
            finished_at=at(11, 17),
            satisfaction="unsatisfied",
        ),
        *dossier(  # at the desk, paper only
            "D04",
            channel=DESK,
            requires_payment=True,
            paid_online=True,
            status=PROCESSED,
            finished_at=at(8),
            satisfaction="neutral",
        ),
        *dossier(  # two days past due, but three days were the citizen's: on time; never synced
            "D05",
            channel=DESK,
            digitised=True,
            result_digital=True,
            status=PROCESSED,
            finished_at=at(12, 17),
            supplement_count=1,
            supplement_days=3.0,
            synced_to_national_portal=False,
            satisfaction="satisfied",
        ),
        *dossier(  # returned; unpaid, not digitised
            "D06",
            channel=DESK,
            requires_payment=True,
            result_digital=True,
            status=RETURNED,
            finished_at=at(9),
        ),
        *dossier(  # finished early, but asked for supplements twice: overdue
            "D07",
            digitised=True,
            status=PROCESSED,
            finished_at=at(6),
            supplement_count=2,
            supplement_days=2.0,
        ),
        *dossier(  # still in progress, not due until July: on time
            "D08",
            channel=POSTAL,
            received=at(25),
            due=at(3, 17, month=7),
            digitised=True,
            status=IN_PROGRESS,
        ),
        *dossier(  # still in progress ten days past due; not digitised, not synced
            "D09",
            channel=DESK,
            received=at(12),
            due=at(20, 17),
            status=IN_PROGRESS,
            synced_to_national_portal=False,
        ),
        *dossier(  # withdrawn by the citizen: counted as received, not as processed or payable
            "D10",
            channel=DESK,
            requires_payment=True,
            digitised=True,
            status=WITHDRAWN,
            occurred_at=at(4),
        ),
    ]


def _june(records: list[ServiceRecord], scheme: decision766.Scheme = SCHEME, **kwargs: Any) -> scoring766.Scorecard:
    kwargs.setdefault("unit_codes", {"25957"})
    return scoring766.score(records, scheme, period_start=JUNE_START, period_end=JUNE_END, as_of=AS_OF, **kwargs)


# indicator → (points, numerator, denominator, lost dossiers), worked out by hand from the table above.
EXPECTED: dict[str, tuple[Fraction, int, int, tuple[str, ...]]] = {
    "1.4": (Fraction(24, 5), 8, 10, ("D05", "D09")),  # 6 × 8/10
    "2.1": (Fraction(40, 3), 6, 9, ("D03", "D07", "D09")),  # 20 × 6/9; D10 withdrawn
    "3.3": (Fraction(12, 5), 4, 10, ("D04", "D05", "D06", "D08", "D09", "D10")),  # 3 × 0.4 / 0.5
    "3.4": (Fraction(3, 5), 2, 10, ("D03", "D04", "D05", "D06", "D07", "D08", "D09", "D10")),  # 3 × 0.2
    "3.6": (Fraction(3), 2, 4, ("D03", "D06")),  # 6 × 2/4; D10 withdrawn
    "4.1": (Fraction(30, 7), 5, 7, ("D04", "D07")),  # min(6, 6 × 5/7) over the 7 finished
    "4.2": (Fraction(7, 2), 7, 10, ("D04", "D06", "D09")),  # 4 × 0.7 / 0.8
    "5.4": (Fraction(80, 27), 4, 9, ("D02", "D03", "D07", "D09")),  # 1 − (3 overdue + 2 disliked)/9, ÷ 0.9, × 6
}


NOT_COLLECTED = ("1.1", "1.2", "1.3", "3.1", "3.2", "3.5", "4.3", "4.4", "4.5a", "4.5b", "4.x", "5.2", "5.3")
"""46 points the platform never sees (DOMAIN.md §2: catalogue, CSDLQG, PAKN, population data, chứng thực)."""


def test_a_hand_computed_month() -> None:
    # Case "all data": every indicator the platform collects had dossiers in its denominator.
    card = _june(_june_records())
    assert card.dossiers == 10 and card.policy_id == scoring766.MEASURED_ONLY.id
    for code, (points, numerator, denominator, lost) in EXPECTED.items():
        got = card.indicator(code)
        assert (got.points, got.numerator, got.denominator, got.lost_dossiers) == (points, numerator, denominator, lost)
        assert got.collected and not got.no_data and got.measured
    # Not collected: no data, not measured, no points (they used to earn their maxima: 46 free points).
    for code in NOT_COLLECTED:
        got = card.indicator(code)
        assert (got.points, got.rate, got.collected, got.no_data, got.measured) == (0, 0, False, True, False)
        assert got.lost_dossiers == ()
    assert card.indicator("2.2").points == card.indicator("2.2").max_points == 0
    groups = {g.code: g.points for g in card.groups}
    assert groups == {
        "1": Fraction(24, 5),
        "2": Fraction(40, 3),
        "3": Fraction(12, 5) + Fraction(3, 5) + 3,
        "4": Fraction(30, 7) + Fraction(7, 2),
        "5": Fraction(80, 27),
    }
    assert {g.code: g.coverage for g in card.groups} == {"1": 6, "2": 20, "3": 12, "4": 10, "5": 6}
    # 24/5 + 40/3 + 12/5 + 3/5 + 3 + 30/7 + 7/2 + 80/27 = 65927/1890 earned on 6+20+3+3+6+6+4+6 = 54 measured.
    assert card.total == Fraction(65927, 1890)
    assert card.coverage == 54
    assert card.score == Fraction(65927, 1890) * 100 / 54 == Fraction(3296350, 51030)
    assert (str(card.total_display), str(card.score_display), str(card.coverage_display)) == ("34.88", "64.60", "54.00")
    assert card.max_points == 100


def test_some_indicators_without_data_leave_the_score_rebased_on_the_rest() -> None:
    # Case "some missing": two dossiers in progress, due in July; none needs a fee (3.6 has no denominator),
    # none has finished (4.1 has none). S1 online, fully online, digitised; S2 at the desk, paper, never synced.
    due = at(3, 17, month=7)
    records = [
        *dossier("S1", due=due, status=IN_PROGRESS, fully_online=True, digitised=True),
        *dossier("S2", channel=DESK, due=due, status=IN_PROGRESS, synced_to_national_portal=False),
    ]
    card = _june(records)
    expected = {
        "1.4": Fraction(3),  # 6 × 1/2
        "2.1": Fraction(20),  # 2 of 2 on time
        "3.3": Fraction(3),  # 1/2 online ≥ 50%: full
        "3.4": Fraction(3, 2),  # 3 × 1/2
        "4.2": Fraction(5, 2),  # 4 × 0.5 / 0.8
        "5.4": Fraction(6),  # nothing overdue or disliked
    }
    assert {code: card.indicator(code).points for code in expected} == expected
    for code in ("3.6", "4.1"):
        got = card.indicator(code)
        assert got.collected and got.no_data and not got.measured and got.points == 0
    assert card.total == 36
    assert card.coverage == 54 - 6 - 6 == 42
    assert card.score == Fraction(600, 7)  # 36 / 42 × 100
    assert str(card.score_display) == "85.71"


def test_a_unit_with_no_data_has_no_score() -> None:
    # Case "none": no dossier at all. It used to score 100 (every fallback at full marks) and rank first.
    card = _june([])
    assert card.dossiers == 0
    assert all(i.no_data and not i.measured and i.points == 0 for i in card.indicators)
    assert (card.total, card.coverage, card.score, card.score_display) == (0, 0, None, None)
    # The scheme's `defaults` are not this policy's: full or zero, the unit still has no score.
    data = SCHEME.model_dump(mode="json")
    data["id"] = "766-2022.strict"
    data["defaults"] = {"not_collected_rate": 0, "empty_rate": 0}
    assert _june([], decision766.parse_scheme(data)).score is None


def test_the_method_own_rule_for_no_data_is_followed_where_the_scheme_cites_one() -> None:
    # A collected indicator whose scheme cites what no data is worth (as DOMAIN.md does for PAKN, "no PAKN ⇒ 6")
    # is scored by that rule and measured; without the rule (policy off) it is left out.
    data = SCHEME.model_dump(mode="json")
    data["id"] = "766-2022.rule"
    satisfaction = next(i for g in data["groups"] for i in g["indicators"] if i["code"] == "5.4")
    satisfaction["default_rate"] = "1"
    scheme = decision766.parse_scheme(data)
    card = _june([], scheme)
    got = card.indicator("5.4")
    assert (got.no_data, got.measured, got.points) == (True, True, 6)
    assert (card.total, card.coverage, card.score) == (6, 6, 100)
    off = scoring766.NoDataPolicy(id="test.no-fallbacks", method_fallbacks=False)
    card = _june([], scheme, policy=off)
    assert (card.score, card.policy_id) == (None, "test.no-fallbacks")
    # 5.2 and 5.3 carry the rule but the platform does not collect PAKN: unknown is not "no PAKN".
    assert not card.indicator("5.2").measured and _june([], SCHEME).indicator("5.3").points == 0


def test_costs_by_dossier_show_why_a_ward_lost_points() -> None:
    costs = _june(_june_records()).costs_by_dossier()
    assert "D01" not in costs
    assert costs["D04"] == ("3.3", "3.4", "4.1", "4.2")
    assert costs["D09"] == ("1.4", "2.1", "3.3", "3.4", "4.2", "5.4")
    assert costs["D10"] == ("3.3", "3.4")


def test_a_dossier_above_the_threshold_costs_nothing() -> None:
    # 4 of 5 online is 80%, above 3.3's 50% threshold: the offline one cost no points, so it is not listed.
    records = [d for i in range(5) for d in dossier(f"T{i}", channel=DESK if i == 0 else ONLINE, status=IN_PROGRESS)]
    online = _june(records).indicator("3.3")
    assert (online.numerator, online.denominator, online.points, online.lost_dossiers) == (4, 5, 3, ())


def test_replays_and_out_of_order_delivery_do_not_double_count() -> None:
    records = _june_records()
    shuffled = records * 3
    random.Random(766).shuffle(shuffled)
    assert _june(shuffled) == _june(records)
    assert _june(list(reversed(records))) == _june(records)


def test_latest_snapshot_wins_whatever_the_order() -> None:
    one, two = dossier("X1", status=PROCESSED, finished_at=at(5))
    three = msgspec.structs.replace(two, status_version=3, result_digital=True)
    for order in ([one, two, three], [three, one, two], [two, three, one, three]):
        assert scoring766.latest_snapshots(order) == {"X1": three}
    # Two different snapshots under one version (a producer bug) still resolve the same way in any order.
    twin = msgspec.structs.replace(three, digitised=True)
    assert scoring766.latest_snapshots([three, twin]) == scoring766.latest_snapshots([twin, three])


def test_a_perfect_unit_scores_100() -> None:
    perfect = {
        "fully_online": True,
        "requires_payment": True,
        "paid_online": True,
        "digitised": True,
        "result_digital": True,
        "status": PROCESSED,
        "finished_at": at(9),
        "satisfaction": "satisfied",
    }
    records = [d for i in range(5) for d in dossier(f"P{i}", **perfect)]
    card = _june(records)
    assert (card.total, card.coverage, card.score) == (54, 54, 100) and str(card.score_display) == "100.00"
    assert all(i.lost_dossiers == () for i in card.indicators)
    assert all(not i.no_data and i.measured for i in card.indicators if i.collected)
    assert card.costs_by_dossier() == {}


@pytest.mark.parametrize(
    ("final", "overdue"),
    [
        ({"status": PROCESSED, "finished_at": at(12, 17), "supplement_count": 1, "supplement_days": 2.0}, False),
        ({"status": PROCESSED, "finished_at": at(12, 17), "supplement_count": 1, "supplement_days": 1.5}, True),
        ({"status": PROCESSED, "finished_at": at(12, 17)}, True),
        ({"status": PROCESSED, "finished_at": at(10, 17)}, False),  # on the due minute is on time
        ({"status": PROCESSED, "finished_at": at(5), "supplement_count": 2}, True),  # asked twice
        ({"status": IN_PROGRESS, "occurred_at": at(3)}, True),  # past due at as_of
        ({"status": IN_PROGRESS, "occurred_at": at(3), "supplement_days": 21.0}, False),
        # Waiting for the citizen since the 8th: the clock has been paused for 22 days at as_of.
        ({"status": DossierStatus.SUPPLEMENT_REQUESTED, "occurred_at": at(8), "supplement_count": 1}, False),
        ({"status": DossierStatus.SUPPLEMENT_REQUESTED, "occurred_at": at(8), "supplement_count": 2}, True),
    ],
)
def test_supplement_days_are_not_counted_against_the_deadline(final: dict[str, Any], overdue: bool) -> None:
    _, latest = dossier("S1", **final)  # due on the 10th at 17:00
    assert scoring766.is_overdue(latest, AS_OF) is overdue
    on_time = _june([latest]).indicator("2.1")
    assert (on_time.numerator, on_time.lost_dossiers) == ((0, ("S1",)) if overdue else (1, ()))


def test_a_dossier_not_yet_due_is_on_time_until_it_is_late() -> None:
    _, latest = dossier("N1", due=at(20, 17), status=IN_PROGRESS, occurred_at=at(3))
    assert not scoring766.is_overdue(latest, at(20, 17))
    assert scoring766.is_overdue(latest, at(20, 18))


def test_a_subtree_aggregates_its_communes() -> None:
    tree = units.load_tree("2024")
    di_an = tree.subtree("724")
    records = [
        *dossier("A1", unit="25957", status=PROCESSED, finished_at=at(9), digitised=True),
        *dossier("A2", unit="25957", status=PROCESSED, finished_at=at(12)),
        *dossier("B1", unit="25951", status=PROCESSED, finished_at=at(5), digitised=True),
        *dossier("C1", unit="25942", status=IN_PROGRESS, digitised=True),
        *dossier("Z1", unit="25747", status=PROCESSED, finished_at=at(20)),  # Phú Cường, Thủ Dầu Một
    ]
    district = _june(records, unit_codes=di_an, unit="724")
    assert district.unit == "724" and district.unit_codes == di_an
    assert district.dossiers == 4
    on_time = district.indicator("2.1")
    assert (on_time.numerator, on_time.denominator, on_time.lost_dossiers) == (2, 4, ("A2", "C1"))
    digitised = district.indicator("4.2")
    assert (digitised.numerator, digitised.denominator) == (3, 4)
    # The subtree's counts are its communes' counts added up (the rates are not averaged).
    wards = [_june(records, unit_codes={code}) for code in ("25957", "25951", "25942")]
    for code in ("1.4", "2.1", "3.3", "4.1", "4.2", "5.4"):
        assert district.indicator(code).numerator == sum(w.indicator(code).numerator for w in wards)
        assert district.indicator(code).denominator == sum(w.indicator(code).denominator for w in wards)
    with pytest.raises(ValueError, match="unit is required"):
        _june(records, unit_codes=di_an)


def test_populations_received_versus_finished_and_as_of() -> None:
    records = [
        # Received in May, finished in June: June's electronic-result indicator counts it, June's on-time does not.
        *dossier("M1", received=at(26, month=5), due=at(3, 17), status=PROCESSED, finished_at=at(2)),
        # Finished after as_of: as of the 30th it is still in progress (and past due).
        *dossier("L1", status=PROCESSED, finished_at=at(2, 10, month=7), result_digital=True),
        # Moved to another commune in its latest snapshot: it counts there, not here.
        *dossier("T1", unit="25951", status=PROCESSED, finished_at=at(5), result_digital=True),
    ]
    card = _june(records)
    assert card.dossiers == 1
    assert card.indicator("2.1").lost_dossiers == ("L1",)
    result = card.indicator("4.1")
    assert (result.numerator, result.denominator, result.lost_dossiers) == (0, 1, ("M1",))
    assert result.population is decision766.Population.FINISHED
    # Seen later, L1 has finished late with an electronic result.
    later = scoring766.score(
        records, SCHEME, unit_codes={"25957"}, period_start=JUNE_START, period_end=JUNE_END, as_of=at(5, month=7)
    )
    assert later.indicator("2.1").lost_dossiers == ("L1",)
    assert later.indicator("4.1").denominator == 1  # finished in July: not June's


def test_rows_for_the_warehouse() -> None:
    card = _june(_june_records())
    rows = card.to_rows()
    assert len(rows) == len(list(SCHEME.indicators())) == 23
    row = next(r for r in rows if r["indicator"] == "2.1")
    assert row == {
        "scheme": "766-2022.dvcqg-2025",
        "unit": "25957",
        "period_start": JUNE_START,
        "period_end": JUNE_END,
        "as_of": AS_OF,
        "group": "2",
        "indicator": "2.1",
        "points": 40 / 3,
        "max_points": 20.0,
        "rate": 0.6667,
        "numerator": 6,
        "denominator": 9,
        "collected": True,
        "no_data": False,
        "measured": True,
        "policy": "766-nodata.measured-only.v1",
        "lost_dossiers": ["D03", "D07", "D09"],
    }
    unseen = next(r for r in rows if r["indicator"] == "5.2")
    assert (unseen["points"], unseen["no_data"], unseen["measured"]) == (0.0, True, False)
    assert {type(v) for r in rows for v in r.values()} <= {str, float, int, bool, list, dt.datetime}


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"period_start": dt.datetime(2025, 6, 1)}, "period_start must be timezone-aware"),
        ({"period_end": JUNE_START}, "period_end"),
        ({"as_of": at(31, month=5)}, "as_of"),
        ({"unit_codes": set()}, "unit_codes is empty"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], needle: str) -> None:
    arguments: dict[str, Any] = {
        "unit_codes": {"25957"},
        "period_start": JUNE_START,
        "period_end": JUNE_END,
        "as_of": AS_OF,
        **kwargs,
    }
    with pytest.raises(ValueError, match=needle):
        scoring766.score([], SCHEME, **arguments)


# --- properties ----------------------------------------------------------------------------------------

_FINISHED = (PROCESSED, RETURNED)


@st.composite
def service_records(draw: st.DrawFn) -> ServiceRecord:
    received = draw(st.datetimes(dt.datetime(2025, 5, 20), dt.datetime(2025, 7, 10), timezones=st.just(TZ)))
    status = draw(st.sampled_from(DossierStatus))
    requires_payment = draw(st.booleans())
    hours = st.integers(0, 40 * 24).map(lambda h: dt.timedelta(hours=h))
    return ServiceRecord(
        dossier_id=draw(st.sampled_from(["A", "B", "C", "D", "E", "F", "G"])),
        status_version=draw(st.integers(0, 4)),
        unit=draw(st.sampled_from(["25957", "25951", "25747"])),
        procedure_code="1.001612",
        status=status,
        channel=draw(st.sampled_from(DossierChannel)),
        received_at=received,
        due_at=received + draw(hours),
        occurred_at=received + draw(hours),
        finished_at=received + draw(hours) if status in _FINISHED else None,
        fully_online=draw(st.booleans()),
        requires_payment=requires_payment,
        paid_online=requires_payment and draw(st.booleans()),
        digitised=draw(st.booleans()),
        result_digital=draw(st.booleans()),
        supplement_count=draw(st.integers(0, 3)),
        supplement_days=draw(st.floats(0, 15)),
        synced_to_national_portal=draw(st.booleans()),
        satisfaction=draw(st.sampled_from(["satisfied", "neutral", "unsatisfied", None])),
    )


@settings(max_examples=150, deadline=None)
@given(
    records=st.lists(service_records(), max_size=25),
    unit_codes=st.sampled_from([{"25957"}, {"25957", "25951"}, {"25957", "25951", "25747"}]),
    as_of_days=st.integers(0, 45),
)
def test_points_always_stay_within_their_maxima(
    records: list[ServiceRecord], unit_codes: set[str], as_of_days: int
) -> None:
    as_of = JUNE_START + dt.timedelta(days=as_of_days)
    card = scoring766.score(
        records, SCHEME, unit_codes=unit_codes, period_start=JUNE_START, period_end=JUNE_END, as_of=as_of, unit="74"
    )
    assert 0 <= card.total <= card.coverage <= 54
    assert card.score is None if card.coverage == 0 else 0 <= card.score <= 100
    for group in card.groups:
        assert 0 <= group.points <= group.max_points
    for indicator in card.indicators:
        assert 0 <= indicator.points <= indicator.max_points
        assert 0 <= indicator.rate <= 1
        assert 0 <= indicator.numerator <= indicator.denominator
        assert len(indicator.lost_dossiers) <= indicator.denominator
    reordered = scoring766.score(
        list(reversed(records)) + records,
        SCHEME,
        unit_codes=unit_codes,
        period_start=JUNE_START,
        period_end=JUNE_END,
        as_of=as_of,
        unit="74",
    )
    assert reordered == card
