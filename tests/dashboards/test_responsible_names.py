"""The unit answering for an incident is named in the site's edition: the 2025 tree reused 2024 codes."""

from __future__ import annotations

from dashboards.sites import Site
from ioc.settings import DashboardSettings


def site(unit: str, edition: str) -> Site:
    return Site.from_settings(DashboardSettings(site_unit=unit, edition=edition))


def test_a_2025_site_names_the_new_ward_and_the_city_a_2024_site_the_old_ward() -> None:
    city, province = site("79", "2025"), site("74", "2024")
    assert city.responsible_name("25951") == "Phường Đông Hòa"  # the new ward that absorbed Bình An and Đông Hòa
    assert province.responsible_name("25951") == "Phường Bình An"
    assert city.responsible_full_name("79") == "thành phố Hồ Chí Minh"
    assert city.responsible_name("724") == "Thành phố Dĩ An"  # an old district, held before the switch
    assert province.responsible_full_name("724") == "thành phố Dĩ An"
    assert city.row_unit_name("25951") == "Phường Bình An"  # a row's place stays a 2024 commune
