"""Kopf handlers of SensorVendor: issue credentials and ACLs, repair a deleted Secret, withdraw them on delete."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import kopf

from ioc.settings import OperatorSettings
from operators import sites, vendors
from operators.handlers._common import GROUP, NO_INDEX, VERSION, context, created, deleting, finish, flatten, spread

__all__ = ["PLURAL", "register"]

PLURAL: Final = "sensorvendors"
_ALL: Final = "all"


def _object(meta: Mapping[str, Any], spec: Mapping[str, Any], status: Mapping[str, Any]) -> vendors.VendorObject:
    return vendors.VendorObject(
        namespace=str(meta["namespace"]),
        name=str(meta["name"]),
        uid=str(meta["uid"]),
        generation=int(meta.get("generation") or 0),
        created=created(meta),
        spec=dict(spec),
        status=dict(status),
    )


def vendor_records(meta: kopf.Meta, **_: Any) -> dict[str, Any]:
    """Index: every vendor object, to keep vendor ids unique across namespaces."""
    record = vendors.VendorRecord(
        str(meta["namespace"]), str(meta["name"]), str(meta["uid"]), created(meta), deleting(meta)
    )
    return {_ALL: record}


def issue(
    *,
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    reason: str,
    retry: int,
    vendor_records: Mapping[str, Any] = NO_INDEX,
    **_: Any,
) -> None:
    trigger = {"create": sites.Trigger.CREATE, "update": sites.Trigger.UPDATE}.get(reason, sites.Trigger.RESUME)
    outcome = vendors.reconcile(
        context(memo), _object(meta, spec, status), records=flatten(vendor_records, _ALL), trigger=trigger
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
    vendor_records: Mapping[str, Any] = NO_INDEX,
    **_: Any,
) -> None:
    obj = _object(meta, spec, status)
    if obj.status.get("observedGeneration") != obj.generation:
        return  # a change is being handled right now
    outcome = vendors.reconcile(context(memo), obj, records=flatten(vendor_records, _ALL), trigger=sites.Trigger.REPAIR)
    finish(body, patch, outcome, 0, timer_of=obj.status)


def withdraw(
    *,
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
    vendor_records: Mapping[str, Any] = NO_INDEX,
    **_: Any,
) -> None:
    outcome = vendors.finalize(context(memo), _object(meta, spec, status), records=flatten(vendor_records, _ALL))
    finish(body, patch, outcome, retry)


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """Add the SensorVendor handlers (and their index) to `registry`."""
    kopf.index(GROUP, VERSION, PLURAL, registry=registry)(vendor_records)
    for on in (kopf.on.create, kopf.on.update, kopf.on.resume):
        on(GROUP, VERSION, PLURAL, registry=registry, id="issue")(issue)
    kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, id="withdraw")(withdraw)
    kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        registry=registry,
        id="repair",
        interval=settings.repair_interval_s,
        initial_delay=spread(settings.repair_interval_s, settings.repair_interval_s),
    )(repair)
