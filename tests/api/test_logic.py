"""The citizen API's pure parts: Open311 fields and placement, services, NGSI-LD entities, keys, cache, ledger."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from pydantic import SecretStr

from dashboards.api import ngsi, open311
from dashboards.api.clients import ApiClients
from dashboards.api.ledger import Ledger
from dashboards.api.state import Cached
from dashboards.data import TtlCache
from dashboards.sites import Site
from ioc import units
from ioc.events import CitizenReport
from ioc.settings import ApiClientConfig, CitizenApiSettings

PROVINCE = Site.from_settings(CitizenApiSettings(site_unit="74"))
DI_AN = Site.from_settings(CitizenApiSettings(site_unit="724"))
DONG_HOA = (units.load_tree("2024").get("25957").lat, units.load_tree("2024").get("25957").lon)
NOW = dt.datetime(2025, 6, 1, 8, tzinfo=dt.UTC)


def fields(**extra: str | list[str]) -> dict[str, str | list[str]]:
    base: dict[str, str | list[str]] = {
        "service_code": "flooding",
        "description": "Nước ngập sâu trước chợ",
        "lat": str(DONG_HOA[0]),
        "long": str(DONG_HOA[1]),
    }
    base.update(extra)
    return base


def test_services_are_the_report_categories_in_both_languages() -> None:
    vi = {s.service_code: s for s in open311.services(PROVINCE.model, "vi")}
    en = {s.service_code: s for s in open311.services(PROVINCE.model, "en")}
    assert vi["flooding"].service_name == "Ngập úng" and en["flooding"].service_name == "Flooding"
    assert vi["flooding"].name_en == "Flooding" and vi["flooding"].group == "Môi trường"
    assert set(vi) == set(PROVINCE.model.report_categories)
    definition = open311.service_definition(PROVINCE.model, "waste")
    assert [a.code for a in definition.attributes] == ["unit"]
    with pytest.raises(KeyError):
        open311.service_definition(PROVINCE.model, "nope")


def test_a_report_is_placed_in_the_commune_nearest_its_point() -> None:
    binh_chuan = units.load_tree("2024").get("25969")  # a marker no other commune shares
    submission = open311.parse_submission(fields(lat=str(binh_chuan.lat), long=str(binh_chuan.lon)), PROVINCE)
    assert submission.unit == "25969"
    report = submission.report("o311-abc", NOW)
    assert isinstance(report, CitizenReport)
    assert (report.source, report.category, report.unit, report.lat) == ("open311", "flooding", "25969", binh_chuan.lat)


def test_communes_sharing_a_marker_are_told_apart_by_the_address_or_left_to_their_district() -> None:
    # Bình An (25951) and Đông Hòa (25957) share one approximate marker point in the shipped data.
    assert open311.parse_submission(fields(address_string="Chợ Đông Hòa, Dĩ An"), PROVINCE).unit == "25957"
    assert open311.parse_submission(fields(address_string="KP Bình An"), PROVINCE).unit == "25951"
    assert open311.parse_submission(fields(), PROVINCE).unit == "724"


def test_the_unit_attribute_wins_over_the_point() -> None:
    submission = open311.parse_submission(fields(**{"attribute[unit]": "25951"}), PROVINCE)
    assert submission.unit == "25951"


def test_contact_media_and_address_reach_the_report() -> None:
    extra = {
        "first_name": "Nguyễn",
        "last_name": "Văn An",
        "phone": "0912 345 678",
        "email": "an@example.vn",
        "media_url": ["https://img.example/1.jpg", "https://img.example/2.jpg"],
        "address_string": "Chợ Đông Hòa",
    }
    report = open311.parse_submission(fields(**extra), PROVINCE).report("o311-x", NOW)
    assert report.contact is not None and report.contact.name == "Nguyễn Văn An"
    assert report.media_urls == ["https://img.example/1.jpg", "https://img.example/2.jpg"]
    assert report.address == "Chợ Đông Hòa"


@pytest.mark.parametrize(
    ("changes", "status", "field"),
    [
        ({"service_code": "teleport"}, 400, "service_code"),
        ({"description": "  "}, 400, "description"),
        ({"lat": "abc"}, 400, "lat"),
        ({"lat": "nan"}, 400, "lat"),
        ({"lat": "91"}, 400, "lat"),
        ({"long": ""}, 400, "long"),
        ({"lat": "10.0", "long": "100.0"}, 422, "lat"),  # far from the province
        ({"attribute[unit]": "12345"}, 422, "attribute[unit]"),
        ({"jurisdiction_id": "79"}, 404, "jurisdiction_id"),
        ({"color": "red"}, 400, None),
        ({"description": ["a", "b"]}, 400, "description"),
    ],
)
def test_wrong_fields_are_refused_naming_the_field(changes: dict[str, str], status: int, field: str | None) -> None:
    with pytest.raises(open311.RequestError) as caught:
        open311.parse_submission(fields(**changes), PROVINCE)
    assert caught.value.status == status
    assert caught.value.field == field
    if field:
        assert field in caught.value.message


def test_a_report_needs_a_place() -> None:
    with pytest.raises(open311.RequestError, match="where is it"):
        open311.parse_submission({"service_code": "waste", "description": "rác"}, PROVINCE)


def test_a_place_outside_the_site_is_refused() -> None:
    thu_dau_mot = units.load_tree("2024").get("25747")
    with pytest.raises(open311.RequestError, match="not within site 724") as caught:
        open311.parse_submission(fields(lat=str(thu_dau_mot.lat), long=str(thu_dau_mot.lon)), DI_AN)
    assert caught.value.status == 422
    assert open311.parse_submission(fields(address_string="Đông Hòa"), DI_AN).unit == "25957"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"phone": "call me"}, "phone"),
        ({"email": "not-an-email"}, "email"),
        ({"media_url": ["https://x/" + str(i) for i in range(11)]}, "media_url"),
        ({"description": "x" * 4001}, "description"),
    ],
)
def test_contract_errors_name_the_open311_field(changes: dict[str, str], field: str) -> None:
    submission = open311.parse_submission(fields(**changes), PROVINCE)
    with pytest.raises(open311.RequestError) as caught:
        submission.report("o311-x", NOW)
    assert caught.value.field == field and f"`{field}`" in caught.value.message


def test_a_fingerprint_ignores_the_key_and_field_order() -> None:
    a = open311.fingerprint({"api_key": "k1", **fields()})
    b = open311.fingerprint(dict(reversed(list({**fields(), "api_key": "k2"}.items()))))
    assert a == b != open311.fingerprint(fields(description="khác"))


def test_statuses_follow_the_incident() -> None:
    assert [open311.open311_status(s) for s in ("open", "acknowledged", "dispatched", "resolved", "closed")] == [
        "open",
        "open",
        "open",
        "closed",
        "closed",
    ]
    assert set(open311.STATE_LABELS) >= {"received", "open", "resolved"}


def test_ngsi_entities_follow_smart_data_models() -> None:
    entity = ngsi.air_quality_observed(
        station="air-vendor/aq-1",
        unit_name="phường Bình Hòa",
        lat=10.9,
        lon=106.7,
        aqi=120,
        band=3,
        band_label_vi="Kém",
        dominant="pm25",
        hour=NOW,
    )
    assert entity["id"] == "urn:ngsi-ld:AirQualityObserved:air-vendor:aq-1"
    assert entity["location"] == {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [106.7, 10.9]}}
    assert entity["airQualityIndex"] == {"type": "Property", "value": 120}
    assert entity["dateObserved"]["value"] == {"@type": "DateTime", "@value": "2025-06-01T08:00:00Z"}
    simple = ngsi.simplified(entity)
    assert simple["airQualityIndex"] == 120 and simple["dateObserved"] == "2025-06-01T08:00:00Z"
    alert = ngsi.alert(
        incident_id="flood-level:25957:20250601T080000",
        rule="flood-level",
        severity="high",
        title="Ngập",
        unit_name="phường Đông Hòa",
        lat=None,
        lon=None,
        opened_at=NOW,
    )
    assert alert["category"]["value"] == "naturalDisaster" and alert["subCategory"]["value"] == "flood"
    assert "location" not in alert


def test_api_keys_and_rate_limits_are_per_client() -> None:
    now = [0.0]
    clients = ApiClients(
        {
            "app": ApiClientConfig(key=SecretStr("k-app"), rate_per_s=1, burst=2),
            "hotline": ApiClientConfig(key=SecretStr("k-hot"), rate_per_s=10, burst=10),
        },
        clock=lambda: now[0],
    )
    assert clients.authenticate("k-app") == "app" and clients.authenticate("k-x") is None
    assert clients.authenticate(None) is None
    assert [clients.take("app").allowed for _ in range(3)] == [True, True, False]
    assert clients.take("app").retry_after_s == pytest.approx(1.0)
    assert clients.take("hotline").allowed  # another client's bucket
    now[0] = 1.0
    assert clients.take("app").allowed


def test_the_cache_builds_once_for_concurrent_callers_and_expires() -> None:
    now = [0.0]
    cache = TtlCache(clock=lambda: now[0])
    builds = []

    async def build() -> Cached:
        builds.append(1)
        await asyncio.sleep(0.01)
        return Cached.of(b"body", "application/json", 10, now[0])

    async def many() -> list[Cached]:
        return list(await asyncio.gather(*(cache.get_or_build("k", 10, build) for _ in range(20))))

    results = asyncio.run(many())
    assert len(builds) == 1 and {r.body for r in results} == {b"body"}

    async def stale_then_fresh() -> tuple[Cached, Cached]:
        now[0] = 11.0  # expired: served stale while one refresh runs
        stale = await cache.get_or_build("k", 10, build)
        await asyncio.sleep(0.05)
        return stale, await cache.get_or_build("k", 10, build)

    stale, fresh = asyncio.run(stale_then_fresh())
    assert len(builds) == 2 and stale.expires == 10 and fresh.expires == 21
    now[0] = 50.0  # too old to serve: built while the caller waits
    asyncio.run(cache.get_or_build("k", 10, build))
    assert len(builds) == 3


def test_a_failed_build_is_not_cached() -> None:
    cache = TtlCache()

    async def broken() -> Cached:
        raise RuntimeError("warehouse down")

    with pytest.raises(RuntimeError):
        asyncio.run(cache.get_or_build("k", 10, broken))
    assert len(cache) == 0


def test_the_ledger_binds_a_key_to_one_report_and_forgets_contacts(tmp_path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(path, ttl_s=3600)
    claim = ledger.claim("app", "key-1", "fp", "o311-1", NOW)
    assert (claim.report_id, claim.done, claim.same) == ("o311-1", False, True)
    again = ledger.claim("app", "key-1", "fp", "o311-2", NOW + dt.timedelta(seconds=5))
    assert (again.report_id, again.submitted_at) == ("o311-1", NOW)
    assert not ledger.claim("app", "key-1", "other", "o311-3", NOW).same
    assert ledger.claim("hotline", "key-1", "fp", "o311-4", NOW).report_id == "o311-4"
    report = open311.parse_submission(fields(phone="0912345678"), PROVINCE).report("o311-1", NOW)
    ledger.accepted(report, "app", "key-1")
    ledger.close()
    reopened = Ledger(path, ttl_s=3600)
    assert reopened.claim("app", "key-1", "fp", "o311-9", NOW).done
    kept = reopened.submitted("o311-1")
    assert kept is not None and kept.contact is None and kept.text == report.text
