"""What a site's status says about its settings: what the workers do with them, and how many hold them.

The workers' side (thresholds, isolation, retention applied for real) is tests/streams/test_site_settings.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from ioc.reference import default_reference_model
from ioc.settings import OperatorSettings
from operators import config, manifests
from operators.models import IOCSiteSpec, ResourceError, parse
from operators.names import SiteNames
from operators.siteconfig import LIVE_S, WorkerReport, settings_applied, settings_effects

MODEL = default_reference_model()
NOW = 1_800_000_000.0


def spec(**fields: Any) -> IOCSiteSpec:
    return parse(IOCSiteSpec, {"unit": "25942", "tier": "commune", **fields})


def names() -> SiteNames:
    return SiteNames("dong-hoa", "ns", "25942", "2024")


def report(position: int, age: float = 10, group: str = "ioc-streams-site-config-reader-a-1") -> WorkerReport:
    return WorkerReport(group, position, NOW - age)


def test_the_streams_condition_says_what_the_workers_do_with_each_setting() -> None:
    plain = settings_effects(names(), spec())
    assert "no threshold overrides" in plain and "in the shared worker pool" in plain and "30 days" in plain
    isolated = settings_effects(
        names(),
        spec(
            thresholds={"flood-level": {"above": 1.0, "clear_below": 0.8}},
            workers={"isolated": True},
            retention={"readingsDays": 90},
        ),
    )
    assert "1 threshold override(s)" in isolated and "dedicated worker dong-hoa-worker" in isolated
    assert "90 days" in isolated


def test_settings_are_applied_when_every_live_worker_has_read_past_them() -> None:
    assert settings_applied([report(8), report(8, group="b")], 7, NOW) == (
        True,
        "Applied",
        "applied by all 2 live stream worker(s)",
    )
    assert settings_applied([report(8), report(7, group="b")], 7, NOW)[:2] == (False, "Applying")
    # A worker gone quiet (stopped, or its reports refused) is not counted either way.
    assert settings_applied([report(8), report(3, age=LIVE_S + 1, group="b")], 7, NOW)[0] is True
    assert settings_applied([report(9, age=LIVE_S + 1)], 7, NOW)[:2] == (False, "NoWorkers")
    assert settings_applied([report(9)], None, NOW)[:2] == (None, "NotPublished")


def test_what_the_workers_cannot_apply_is_not_in_the_crd() -> None:
    for gone in ("aggregatesDays", "incidentsDays"):  # aggregates and incidents are kept: no retention to ask for
        with pytest.raises(ResourceError, match=gone):
            spec(retention={gone: 400})
    district = parse(
        IOCSiteSpec, {"unit": "724", "tier": "district", "thresholds": {"camera-event": {"min_confidence": 0.9}}}
    )
    document = config.effective_config(SiteNames("di-an", "ns", "724", "2024"), district, MODEL)
    assert next(r for r in document["rules"] if r["id"] == "camera-event")["min_confidence"] == 0.9


def test_an_isolated_sites_worker_is_told_its_site() -> None:
    children = manifests.site_children(
        names(),
        "uid",
        spec(workers={"isolated": True}),
        config_text="{}",
        login=manifests.Login("127.0.0.1", 9000, 8123, "ioc_site_25942", "ioc_site_25942", "pw"),
        settings=OperatorSettings(),
        modules=["environment"],
    )
    (worker,) = [c for c in children if c["metadata"]["name"] == "dong-hoa-worker"]
    env = {e["name"]: e.get("value") for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["IOC_STREAMS_SITE"] == "25942" and env["IOC_STREAMS_APP_ID"] == "ioc-streams-site-25942"
    assert env["IOC_STREAMS_DATABASE"] == OperatorSettings().clickhouse.database
