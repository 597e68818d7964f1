"""Kopf handlers of IOCSite: provision on create/update/resume, timers to repair and refresh figures, cleanup."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import kopf

from ioc.settings import OperatorSettings
from operators import sitefigures, siteremoval, sites
from operators.handlers._common import GROUP, NO_INDEX, VERSION, context, created, deleting, finish, flatten, spread

__all__ = ["PLURAL", "register"]

PLURAL: Final = "iocsites"
_ALL: Final = "all"


def _object(meta: Mapping[str, Any], spec: Mapping[str, Any], status: Mapping[str, Any]) -> sites.SiteObject:
    return sites.SiteObject(
        namespace=str(meta["namespace"]),
        name=str(meta["name"]),
        uid=str(meta["uid"]),
        generation=int(meta.get("generation") or 0),
        created=created(meta),
        spec=dict(spec),
        status=dict(status),
        deleting=deleting(meta),
    )


def site_records(meta: kopf.Meta, spec: kopf.Spec, status: kopf.Status, **_: Any) -> dict[str, Any]:
    """Index: every site's record under one key, for parent, duplicate and child checks without API calls."""
    return {_ALL: sites.record(_object(meta, spec, status))}


def reference_models(name: str | None, spec: kopf.Spec, **_: Any) -> dict[str | None, Any]:
    """Index: each ReferenceModel's spec by name."""
    return {name: dict(spec)}


def provision(
    *,
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    reason: str,
    retry: int,
    site_records: Mapping[str, Any] = NO_INDEX,
    reference_models: Mapping[str, Any] = NO_INDEX,
    **_: Any,
) -> None:
    trigger = {"create": sites.Trigger.CREATE, "update": sites.Trigger.UPDATE}.get(reason, sites.Trigger.RESUME)
    outcome = sites.reconcile(
        context(memo),
        _object(meta, spec, status),
        records=flatten(site_records, _ALL),
        models={k: next(iter(v), None) for k, v in reference_models.items()},
        trigger=trigger,
    )
    finish(body, patch, outcome, retry)


def repair(
    *,
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    site_records: Mapping[str, Any] = NO_INDEX,
    reference_models: Mapping[str, Any] = NO_INDEX,
    **_: Any,
) -> None:
    obj = _object(meta, spec, status)
    if obj.status.get("observedGeneration") != obj.generation:
        return  # a change is being handled right now; it puts everything in place itself
    outcome = sites.reconcile(
        context(memo),
        obj,
        records=flatten(site_records, _ALL),
        models={k: next(iter(v), None) for k, v in reference_models.items()},
        trigger=sites.Trigger.REPAIR,
    )
    finish(body, patch, outcome, 0, timer_of=obj.status)


def figures(
    *, meta: kopf.Meta, spec: kopf.Spec, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, **_: Any
) -> None:
    obj = _object(meta, spec, status)
    found = sitefigures.refresh_figures(context(memo), obj)
    if found is None:
        return
    for key, value in found.items():
        if key == "conditions" and not _conditions_changed(value, obj.status.get("conditions", [])):
            continue
        if obj.status.get(key) != value:
            patch.status[key] = value


def _conditions_changed(new: list[dict[str, Any]], old: list[dict[str, Any]]) -> bool:
    def strip(conds: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in conds]

    return strip(new) != strip(old)


def cleanup(
    *,
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
    site_records: Mapping[str, Any] = NO_INDEX,
    **_: Any,
) -> None:
    outcome = siteremoval.finalize(context(memo), _object(meta, spec, status), records=flatten(site_records, _ALL))
    finish(body, patch, outcome, retry)


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """Add the IOCSite handlers (and the indexes they use) to `registry`."""
    kopf.index(GROUP, VERSION, PLURAL, registry=registry)(site_records)
    kopf.index(GROUP, VERSION, "referencemodels", registry=registry)(reference_models)
    for on in (kopf.on.create, kopf.on.update, kopf.on.resume):
        on(GROUP, VERSION, PLURAL, registry=registry, id="provision")(provision)
    kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, id="cleanup")(cleanup)
    kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        registry=registry,
        id="repair",
        interval=settings.repair_interval_s,
        initial_delay=spread(settings.repair_interval_s, settings.repair_interval_s),
    )(repair)
    kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        registry=registry,
        id="figures",
        interval=settings.status_refresh_s,
        initial_delay=spread(settings.status_refresh_s, min(5.0, settings.status_refresh_s)),
    )(figures)
