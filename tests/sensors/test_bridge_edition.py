"""The bridge on a 2025 deployment: new commune codes accepted and stamped with the 2024 commune they absorbed."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ioc import topics
from ioc.events import DeadLetterReason
from ioc.units import load_tree
from sensors.bridge import Accepted, Rejected, Validator

NOW = dt.datetime(2025, 8, 1, 9, 0, tzinfo=dt.UTC)
OLD = load_tree("2024")
V2024 = Validator(OLD)
V2025 = Validator(OLD, edition="2025")


def reading(unit: str, **extra: Any) -> tuple[str, bytes]:
    body = {
        "vendor": "acme",
        "device": "wl-01",
        "unit": unit,
        "kind": "water",
        "seq": 1,
        "observed_at": "2025-08-01T15:00:00+07:00",
        "values": {"waterLevel": 0.8},
        **extra,
    }
    return topics.mqtt_topic(unit, "water", "acme", "wl-01"), json.dumps(body).encode()


def test_a_device_under_a_2025_ward_code_is_accepted_on_a_2025_deployment_in_a_commune_it_absorbed() -> None:
    thuan_giao = OLD.get("25972")  # the old ward, now part of the new Thuận Giao (25969)
    verdict = V2025.check(*reading("25969", lat=thuan_giao.lat, lon=thuan_giao.lon), NOW)
    assert isinstance(verdict, Accepted)
    assert (verdict.event.unit, verdict.path) == ("25972", "74/725/25972")
    assert verdict.topic.unit == "25969"  # what the device said stays on the topic
    # No location: the commune whose code the new ward kept.
    plain = V2025.check(*reading("25969"), NOW)
    assert isinstance(plain, Accepted) and (plain.event.unit, plain.path) == ("25969", "74/725/25969")


def test_the_city_and_old_commune_codes_map_as_the_reform_says_and_districts_are_refused() -> None:
    city = V2025.check(*reading("79"), NOW)
    assert isinstance(city, Accepted) and (city.event.unit, city.path) == ("74", "74")
    old = V2025.check(*reading("25957"), NOW)  # a device not yet renamed: old Đông Hòa keeps its place
    assert isinstance(old, Accepted) and old.path == "74/724/25957"
    district = V2025.check(*reading("724"), NOW)
    assert isinstance(district, Rejected) and district.reason is DeadLetterReason.UNKNOWN_UNIT
    assert "not in the 2025 units tree" in district.detail


def test_a_2024_deployment_refuses_the_citys_code_and_takes_codes_as_they_are() -> None:
    city = V2024.check(*reading("79"), NOW)
    assert isinstance(city, Rejected) and city.reason is DeadLetterReason.UNKNOWN_UNIT
    ward = V2024.check(*reading("25969"), NOW)
    assert isinstance(ward, Accepted) and ward.path == "74/725/25969"
