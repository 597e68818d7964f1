"""The fault run's site check (iocctl/faults/sites.py): what counts as an IOCSite that did not converge. Pure."""

from __future__ import annotations

import json
from typing import Any

from iocctl.faults.history import FaultSpan
from iocctl.faults.sites import SiteAck, SiteChurn


class _Seen(SiteChurn):
    """The check over a given cluster state instead of kubectl's."""

    def __init__(self, sites: dict[str, dict[str, Any]], maps: dict[str, dict[str, Any]]) -> None:
        super().__init__({}, ["25942"], say=lambda _: None)
        self.seen = sites, maps

    def _state(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        return self.seen


def _site(phase: str, observed: int) -> dict[str, Any]:
    return {"status": {"phase": phase, "observedGeneration": observed}}


def _config(days: int) -> dict[str, Any]:
    return {"data": {"site.json": json.dumps({"retention": {"readingsDays": days}})}}


def test_a_site_converged_when_ready_for_its_generation_with_its_settings_and_a_deleted_one_when_gone() -> None:
    churn = _Seen({"a": _site("Ready", 3)}, {"a-config": _config(40)})
    churn.acks = {"a": SiteAck("a", 3, 40, 10.0), "gone": SiteAck("gone", 0, None, 11.0)}
    assert churn.check([], timeout=0) == []


def test_every_way_of_not_converging_is_named_with_the_fault_in_effect() -> None:
    sites = {"old-gen": _site("Ready", 2), "failed": _site("Failed", 3), "stale": _site("Ready", 3), "kept": {}}
    maps = {"old-gen-config": _config(30), "failed-config": _config(30), "stale-config": _config(30)}
    churn = _Seen(sites, maps)
    churn.acks = {
        "old-gen": SiteAck("old-gen", 3, 31, 10.0),
        "failed": SiteAck("failed", 3, 30, 10.0),
        "stale": SiteAck("stale", 3, 31, 10.0),
        "never": SiteAck("never", 1, 30, 10.0),
        "kept": SiteAck("kept", 0, None, 50.0),
    }
    found = churn.check([FaultSpan("kill operator@27s", "kill", 5.0, 12.0)], timeout=0)
    assert [(a.kind, a.subject) for a in found] == [
        ("site-not-converged", "site failed"),
        ("site-not-removed", "site kept"),
        ("site-not-converged", "site never"),
        ("site-not-converged", "site old-gen"),
        ("site-not-converged", "site stale"),
    ]
    assert found[0].faults == ("kill operator@27s",) and found[1].faults == ()
    assert "readingsDays 31 acknowledged, 30 in site.json" in found[-1].detail
    assert "generation 3 acknowledged, status 'Ready' for 2" in found[-2].detail
