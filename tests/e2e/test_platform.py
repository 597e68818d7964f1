"""The whole path, on real services: simulator → Mosquitto → bridge → Kafka → stream workers → ClickHouse →
the dashboards' data layer, read through the credentials the operator issued to each site.

A flood in Đông Hòa (25957) must appear as one flood-level incident in that ward, escalate to Dĩ An
district (724) when nobody acknowledges it within its SLA, and be counted on the province's overview.
The platform runs at 120× (an hour of simulated time in 30 s), the workers' SLA clock included.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from dashboards.data.site import SiteData
from dashboards.sites import Site
from ioc.clients import clickhouse
from ioc.events import IncidentState
from ioc.settings import ClickHouseEndpoint, DashboardSettings
from iocctl.localstack import Stack
from iocctl.localstack.platform import SITES_NAMESPACE, Platform


def _site_login(kubeconfig: str, site: str) -> ClickHouseEndpoint:
    api = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(config_file=kubeconfig))
    deadline = time.monotonic() + 120
    while True:
        try:
            secret = api.read_namespaced_secret(f"{site}-clickhouse", SITES_NAMESPACE)
            break
        except kubernetes.client.ApiException:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    data = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
    return ClickHouseEndpoint(
        host=data["host"],
        port=int(data["port"]),
        http_port=int(data["http_port"]),
        user=data["user"],
        password=data["password"],
        database=data["database"],
    )


def _site_status(kubeconfig: str, site: str) -> dict[str, Any]:
    api = kubernetes.client.CustomObjectsApi(kubernetes.config.new_client_from_config(config_file=kubeconfig))
    found = api.get_namespaced_custom_object("ioc.platform", "v1alpha1", SITES_NAMESPACE, "iocsites", site)
    return dict(found.get("status") or {})


def _data(endpoint: ClickHouseEndpoint, unit: str) -> SiteData:
    # The operator writes the site's user into users.d; ClickHouse picks it up on its next config reload.
    warehouse = _wait(f"ClickHouse to know {endpoint.user}", lambda: _try_connect(endpoint), timeout=60)
    site = Site.from_settings(DashboardSettings(site_unit=unit, clickhouse=endpoint))
    return SiteData(warehouse, site, live_ttl_s=0.01, slow_ttl_s=0.01)


def _try_connect(endpoint: ClickHouseEndpoint) -> clickhouse.Warehouse | None:
    try:
        return clickhouse.connect(endpoint, database=endpoint.database)
    except clickhouse.WarehouseError:
        return None


def _wait(what: str, probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(2)


@pytest.mark.slow
def test_a_flood_travels_from_a_gauge_to_the_province_overview(tmp_path: Path) -> None:
    platform = Platform(
        Stack(tmp_path / "platform"),
        speed=120.0,
        rate=100.0,
        duration="80m",
        scenarios=("flood:25957@+10m",),
        dashboards=(),
        units=("724",),
        say=lambda _line: None,
    )
    try:
        platform.start()
        kube = platform.stack.running()["kube-apiserver"]
        district = _data(_site_login(kube["kubeconfig"], "di-an-724"), "724")
        province = _data(_site_login(kube["kubeconfig"], "binh-duong-74"), "74")

        def flood_incidents() -> list[dict[str, Any]]:
            rows = district.incident_queue("724")
            return [r for r in rows if r["rule"] == "flood-level"]

        flood = _wait("the flood incident", flood_incidents, timeout=240)
        assert len(flood) == 1
        assert flood[0]["unit"] == "25957"
        assert flood[0]["severity"] == "high"
        # The workers and the simulator share one simulated clock (Platform.anchor): no gauge looks silent
        # merely because the simulator got ready later than the workers (at 120× a second of skew is 2 min).
        every_state = [state.value for state in IncidentState]
        silent = [r for r in district.incident_queue("724", states=every_state) if r["rule"] == "device-silence"]
        assert silent == [], silent
        # Unacknowledged past its 30-minute SLA (15 s at 120×): the district takes it over.
        escalated = _wait(
            "the escalation", lambda: [r for r in flood_incidents() if r["responsible_unit"] == "724"], timeout=240
        )
        assert escalated[0]["escalation_level"] >= 1
        headline = province.headline("74")
        assert headline.open_incidents >= 1
        by_district = {r["code"]: r for r in province.children_figures("74")}
        assert by_district["724"]["incidents"] >= 1
        # A ward is served by its district's dashboard (the commune tier's default, spec.dashboard.servedBy): it gets
        # no login of its own, and within the district's its view never holds its neighbour's rows.
        ward_site = _site_status(kube["kubeconfig"], "binh-an-25951")
        assert ward_site.get("servedBy") == f"{SITES_NAMESPACE}/di-an-724", ward_site
        assert [r for r in district.incident_queue("25951") if r["unit"] == "25957"] == []
        assert [r for r in district.incident_queue("25957") if r["unit"] == "25957"]
        for data in (district, province):
            data.warehouse.close()
    finally:
        platform.stop()
