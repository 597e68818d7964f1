"""A 2025 deployment's bridge on the real broker and Kafka: devices under new commune codes are accepted and
carried as the 2024 commune their new unit absorbed; an abolished district's code is refused with its reason."""

from __future__ import annotations

import time
import uuid
from typing import Any

from ioc import topics, units
from ioc.events import SensorKind
from sensors.sdk import VendorClient
from tests.sensors.conftest import dead_letters, ingested, vendor_endpoint

OLD = units.load_tree("2024")


def test_a_2025_bridge_takes_new_ward_codes_and_refuses_a_district(mosquitto, kafka, vendor, run_bridge, tail) -> None:
    name = vendor[0]
    readings, letters = tail(topics.READINGS.name), tail(topics.DEADLETTER.name)
    run_bridge(edition="2025")
    thuan_giao = OLD.get("25972")  # the old ward, part of the new ward Thuận Giao (25969)
    tag = uuid.uuid4().hex[:6]
    with VendorClient(vendor_endpoint(mosquitto, vendor), name) as client:
        client.device(f"wl-tg-{tag}", "25969", SensorKind.WATER).reading(
            {"waterLevel": 0.7}, lat=thuan_giao.lat, lon=thuan_giao.lon
        )
        client.device(f"wl-city-{tag}", units.HCMC_CODE, SensorKind.WATER).reading({"waterLevel": 0.4})
        client.device(f"wl-old-{tag}", "724", SensorKind.WATER).reading({"waterLevel": 0.5})
        client.flush()
    got: list[Any] = []
    refused: list[Any] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (len(got) < 2 or not refused):
        got += [i for i in ingested(readings.poll(0.5)) if i.event.vendor == name]
        refused += [d for d in dead_letters(letters.poll(0.5)) if d.vendor == name]
    placed = {i.event.device.split("-")[1]: (i.event.unit, i.path) for i in got}
    assert placed == {"tg": ("25972", "74/725/25972"), "city": ("74", "74")}
    [letter] = refused
    assert (letter.reason.value, letter.device) == ("unknown-unit", f"wl-old-{tag}")
    assert "not in the 2025 units tree" in letter.detail
