"""The edition logic (ioc.editions): wire codes to row codes, the responsible unit, the parent for escalation."""

from __future__ import annotations

import pytest

from ioc import editions, units
from ioc.scope import site_scope

OLD = units.load_tree("2024")
NEW = units.load_tree("2025")
DONG_HOA_2024 = OLD.get("25957")  # absorbed, with Bình An (25951), into the new ward Đông Hòa (25951)


def test_the_parent_for_escalation_is_the_district_in_2024_and_the_city_in_2025() -> None:
    assert editions.escalation_parent("25957", "2024") == "724"
    assert editions.escalation_parent("724", "2024") == "74"
    assert editions.escalation_parent("74", "2024") is None
    assert editions.escalation_parent("25951", "2025") == units.HCMC_CODE
    assert editions.escalation_parent(units.HCMC_CODE, "2025") is None


def test_in_2025_nothing_escalates_to_a_district_that_no_longer_exists() -> None:
    # Held by a unit of the old tree (opened before the switch): the city takes over, never a district.
    assert editions.escalation_parent("724", "2025") == units.HCMC_CODE
    assert editions.escalation_parent("25957", "2025") == units.HCMC_CODE
    assert editions.escalation_parent("74", "2025") is None
    districts = {u.code for u in OLD.at_level(units.Level.DISTRICT)}
    for unit in [*(u.code for u in OLD), *(u.code for u in NEW)]:
        assert editions.escalation_parent(unit, "2025") not in districts


def test_the_responsible_unit_is_the_place_in_2024_and_the_new_unit_that_absorbed_it_in_2025() -> None:
    assert editions.responsible_unit("25957", "2024") == "25957"
    assert editions.responsible_unit("25957", "2025") == "25951"  # old Đông Hòa → new Đông Hòa
    assert editions.responsible_unit("25951", "2025") == "25951"  # old Bình An → new Đông Hòa too
    assert editions.responsible_unit("724", "2025") == units.HCMC_CODE
    assert editions.responsible_unit("74", "2025") == units.HCMC_CODE
    assert editions.responsible_unit("", "2025") == ""
    # Hiệp Thành (25741) was split between Thủ Dầu Một (25747) and Phú Lợi (25750): the nearer one answers.
    thu_dau_mot, phu_loi = NEW.get("25747"), NEW.get("25750")
    assert editions.responsible_unit("25741", "2025", thu_dau_mot.lat, thu_dau_mot.lon) == "25747"
    assert editions.responsible_unit("25741", "2025", phu_loi.lat, phu_loi.lon) == "25750"
    assert editions.responsible_unit("25741", "2025") in {"25747", "25750"}
    # Hiệp An (25768) kept its code for one of its two successors: without a place, that one.
    assert editions.responsible_unit("25768", "2025") == "25768"


def test_every_2024_place_answers_to_a_2025_unit_whose_scope_holds_it() -> None:
    for unit in OLD:
        new = editions.responsible_unit(unit.code, "2025", unit.lat, unit.lon)
        assert new in NEW
        assert site_scope(new, "2025").contains(unit.code) or new == units.HCMC_CODE


def test_a_2025_code_on_the_wire_becomes_the_absorbed_2024_commune_nearest_the_device() -> None:
    # The new ward Thuận Giao (25969) absorbed Bình Chuẩn (25969, in part) and the old Thuận Giao (25972).
    thuan_giao, binh_chuan = OLD.get("25972"), OLD.get("25969")
    assert editions.row_unit("25969", "2025", thuan_giao.lat, thuan_giao.lon) == "25972"
    assert editions.row_unit("25969", "2025", binh_chuan.lat, binh_chuan.lon) == "25969"
    # Without a location, or between communes sharing one marker point: the commune whose code it kept.
    assert editions.row_unit("25969", "2025") == "25969"
    assert editions.row_unit("25951", "2025", DONG_HOA_2024.lat, DONG_HOA_2024.lon) == "25951"
    assert editions.row_unit(units.HCMC_CODE, "2025") == "74"
    # An old code the mapping carries over is kept; a district's code is no place in 2025.
    assert editions.row_unit("25957", "2025") == "25957"
    assert editions.row_unit("724", "2025") is None
    assert editions.row_unit("99999", "2025") is None
    # On a 2024 deployment codes are taken as they are.
    assert editions.row_unit("724", "2024") == "724"
    assert editions.row_unit(units.HCMC_CODE, "2024") is None


def test_a_row_placed_from_a_2025_code_is_seen_by_that_units_site_and_answered_for_by_it() -> None:
    for unit in NEW.at_level(units.Level.COMMUNE):
        row = editions.row_unit(unit.code, "2025", unit.lat, unit.lon)
        assert row is not None and site_scope(unit.code, "2025").contains(row)
        assert site_scope(units.HCMC_CODE, "2025").contains(row)
        if len(units.successors(row)) == 1:
            assert editions.responsible_unit(row, "2025", unit.lat, unit.lon) == unit.code


def test_paths_names_and_parsing() -> None:
    assert editions.path("25951", "2025") == "79/25951"
    assert editions.path("25951", "2024") == "74/724/25951"
    assert editions.path("79", "2024") == "79"
    assert editions.unit_name("25951", "2025") == "phường Đông Hòa"
    assert editions.unit_name("25951", "2024") == "phường Bình An"
    assert editions.unit_name("724", "2025") == "thành phố Dĩ An"
    assert editions.parse_edition("2025") == "2025"
    with pytest.raises(units.UnknownUnitError, match="known: 2024, 2025"):
        editions.parse_edition("2026")


def test_a_2025_scope_holds_its_own_units_for_the_incidents_they_answer_for() -> None:
    city = site_scope(units.HCMC_CODE, "2025")
    assert city.contains(units.HCMC_CODE) and city.contains("25957")
    assert site_scope("25951", "2025").units == {"25951", "25954", "25957"}


def test_the_2025_view_puts_absorbed_communes_and_own_units_within_a_new_unit() -> None:
    view = editions.hierarchy("2025")
    assert units.HCMC_CODE in view and "25957" in view and "99999" not in view
    assert view.is_within("25957", "25951") and view.is_within("25951", units.HCMC_CODE)
    assert view.is_within(units.HCMC_CODE, units.HCMC_CODE)
    assert not view.is_within("25942", "25951") and not view.is_within(units.HCMC_CODE, "25951")
    assert view.is_within("25957", "724")  # an old district still holds its old communes' places
    assert editions.hierarchy("2024") is OLD
