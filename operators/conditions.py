"""Status conditions and phases of the operator's resources: pure functions over plain dicts.

One condition per provisioned part (Kubernetes objects, warehouse, streams, broker...) plus Ready; a
condition keeps its lastTransitionTime until its status changes, as Kubernetes conventions ask, so
`kubectl describe` shows since when a part has been failing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Literal

from ioc.workdays import Coverage

__all__ = ["Status", "calendar", "condition", "merge", "now", "phase", "ready"]

Status = Literal["True", "False", "Unknown"]
Condition = dict[str, Any]


def now() -> str:
    """The current time as Kubernetes writes it (RFC 3339, seconds, UTC)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    type_: str, ok: bool | None, reason: str, message: str = "", *, generation: int | None = None
) -> Condition:
    """A fresh condition; `ok` None means Unknown (not checked yet, or waiting on something else)."""
    status: Status = "Unknown" if ok is None else ("True" if ok else "False")
    out: Condition = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message[:1000],
        "lastTransitionTime": now(),
    }
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def merge(old: Iterable[Condition], new: Iterable[Condition]) -> list[Condition]:
    """The old conditions updated by the new ones, by type; unchanged statuses keep their transition time."""
    merged = {c["type"]: dict(c) for c in old if "type" in c}
    for cond in new:
        previous = merged.get(cond["type"])
        fresh = dict(cond)
        if previous is not None and previous.get("status") == cond["status"]:
            fresh["lastTransitionTime"] = previous.get("lastTransitionTime", cond["lastTransitionTime"])
        merged[cond["type"]] = fresh
    return sorted(merged.values(), key=lambda c: (c["type"] != "Ready", c["type"]))


def ready(conditions: Iterable[Condition], parts: Iterable[str], *, generation: int | None = None) -> Condition:
    """Ready: True when every part is True, else False naming the parts that are not."""
    by_type = {c["type"]: c for c in conditions}
    waiting = [p for p in parts if by_type.get(p, {}).get("status") != "True"]
    if not waiting:
        return condition("Ready", True, "Provisioned", "every part is in place", generation=generation)
    reasons = ", ".join(f"{p} ({by_type[p]['reason']})" if p in by_type else f"{p} (not checked)" for p in waiting)
    return condition("Ready", False, "PartsNotReady", f"not ready: {reasons}", generation=generation)


def phase(
    conditions: Iterable[Condition], parts: Iterable[str], *, failed: bool = False, deleting: bool = False
) -> str:
    """The one-word phase for `kubectl get`: Deleting, Failed, Ready, Degraded (a part failing) or Provisioning."""
    if deleting:
        return "Deleting"
    if failed:
        return "Failed"
    by_type = {c["type"]: c for c in conditions}
    if by_type.get("Ready", {}).get("status") == "True":
        return "Ready"
    if any(by_type.get(p, {}).get("status") == "False" for p in parts):
        return "Degraded"
    return "Provisioning"


def calendar(coverage: Coverage, *, generation: int | None = None) -> Condition:
    """Calendar: whether the working-day table still covers today, False ahead of its end (not part of Ready).

    SLA deadlines in working days past the table's last year would count weekends only (holidays as working
    days), so the warning comes `ioc.workdays.COVERAGE_WARNING_DAYS` before that year ends.
    """
    span = f"{coverage.first_year}–{coverage.last_year}"
    upcoming = coverage.last_year + 1
    if coverage.state == "not-covered":
        message = (
            f"the working-day calendar has no {coverage.year} (it covers {span}): SLA deadlines in working days "
            f"count only weekly rest days, not holidays or swapped days; add {coverage.year} to the calendar"
        )
        return condition("Calendar", False, "NotCovered", message, generation=generation)
    if coverage.state == "ending-soon":
        message = (
            f"the working-day calendar's last covered year is {coverage.last_year} ({coverage.days_left} days left): "
            f"add {upcoming}'s days off and worked days before it ends, or SLA deadlines in {upcoming} will count "
            "only weekly rest days"
        )
        return condition("Calendar", False, "EndingSoon", message, generation=generation)
    message = f"the working-day calendar covers {span}; last covered year {coverage.last_year}"
    return condition("Calendar", True, "Covered", message, generation=generation)
