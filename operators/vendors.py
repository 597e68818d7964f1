"""Issuing one SensorVendor its MQTT credentials and ACLs, and withdrawing them when it is deleted.

Called by operators.handlers.sensorvendor. The vendor id is the object's name, so it must be unique across
namespaces (the broker has one namespace of clients): the oldest object keeps it, later ones are refused.
The password is derived (operators.credentials), so a deleted Secret is re-created with the same one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Final

from ioc import topics
from ioc.clients.dynsec import DynsecError
from operators import broker, conditions, manifests
from operators.context import Context
from operators.credentials import derive_password
from operators.kube import KubeError
from operators.models import ResourceError, SensorVendorSpec, parse
from operators.names import vendor_names
from operators.sites import Event, Outcome, Trigger

__all__ = ["PARTS", "VendorObject", "VendorRecord", "finalize", "reconcile"]

PARTS: Final = ("Valid", "Credentials", "Acl")
_LISTED: Final = 100


@dataclasses.dataclass(frozen=True, slots=True)
class VendorObject:
    namespace: str
    name: str
    uid: str
    generation: int
    created: str
    spec: Mapping[str, Any]
    status: Mapping[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class VendorRecord:
    """The index entry of a vendor: enough to tell who holds a vendor id."""

    namespace: str
    name: str
    uid: str
    created: str
    deleting: bool = False


def _holder(records: Iterable[VendorRecord], name: str) -> VendorRecord | None:
    same = [r for r in records if r.name == name and not r.deleting]
    return min(same, key=lambda r: (r.created, r.namespace), default=None)


def reconcile(ctx: Context, obj: VendorObject, *, records: Iterable[VendorRecord], trigger: Trigger) -> Outcome:
    gen = obj.generation
    old = obj.status.get("conditions", [])
    try:
        spec = parse(SensorVendorSpec, obj.spec)
        holder = _holder(records, obj.name)
        if holder is not None and holder.uid != obj.uid:
            raise ResourceError(
                "SensorVendor",
                [("metadata.name", f"vendor id {obj.name} is held by SensorVendor {holder.namespace}/{holder.name}")],
            )
    except ResourceError as exc:
        cond = conditions.condition("Valid", False, "InvalidSpec", str(exc), generation=gen)
        conds = conditions.merge(old, [cond, conditions.condition("Ready", False, "InvalidSpec", str(exc))])
        status = {"phase": "Failed", "observedGeneration": gen, "conditions": conds}
        return Outcome(status, [Event("Warning", "InvalidSpec", str(exc))], permanent=str(exc))
    names = vendor_names(obj.name, obj.namespace)
    password = derive_password(ctx.key, "mqtt", obj.uid)
    unit_segments, kinds = broker.vendor_grants(spec.units, spec.kinds)
    new = [conditions.condition("Valid", True, "SpecValid", generation=gen)]
    events: list[Event] = []
    retry: list[str] = []
    mqtt = ctx.settings.mqtt
    secret = manifests.vendor_secret(names, obj.uid, mqtt.host, mqtt.port, password)
    try:
        secret_ref = f"Secret/{names.credentials_secret}"
        if ctx.kube.apply(secret) and trigger is Trigger.REPAIR:
            events.append(Event("Warning", "Repaired", f"re-created {secret_ref} (deleted outside the operator)"))
        elif trigger is Trigger.CREATE:
            events.append(Event("Normal", "Created", f"created {secret_ref}"))
        new.append(conditions.condition("Credentials", True, "Issued", secret_ref, generation=gen))
    except KubeError as exc:
        retry.append(f"Credentials: {exc}")
        new.append(conditions.condition("Credentials", False, "KubernetesError", str(exc), generation=gen))
    previous = {c["type"]: c for c in old}
    if trigger is not Trigger.REPAIR or previous.get("Acl", {}).get("status") != "True":
        try:
            with ctx.dynsec() as admin:
                broker.ensure_vendor(admin, names.vendor, password, unit_segments, kinds)
            message = f"may publish for {len(unit_segments)} unit pattern(s) and {len(kinds)} kind pattern(s)"
            new.append(conditions.condition("Acl", True, "Granted", message, generation=gen))
            if trigger is not Trigger.REPAIR:
                events.append(Event("Normal", "Granted", f"MQTT client {names.vendor}: {message}"))
        except (DynsecError, OSError) as exc:
            retry.append(f"Acl: {exc}")
            new.append(conditions.condition("Acl", False, "MosquittoError", str(exc), generation=gen))
    conds = conditions.merge(old, new)
    conds = conditions.merge(conds, [conditions.ready(conds, PARTS, generation=gen)])
    patterns = [topics.mqtt_vendor_pattern(names.vendor, u, k) for u in unit_segments for k in kinds]
    status = {
        "phase": "Ready" if not retry else "Degraded",
        "observedGeneration": gen,
        "conditions": conds,
        "credentialsSecret": names.credentials_secret,
        "topics": patterns[:_LISTED],
    }
    return Outcome(status, events, retry="; ".join(retry) or None)


def finalize(ctx: Context, obj: VendorObject, *, records: Iterable[VendorRecord]) -> Outcome:
    """Withdraw the vendor's client and role (unless another object holds its id) and its Secret."""
    names = vendor_names(obj.name, obj.namespace)
    retry: list[str] = []
    others = [r for r in records if r.uid != obj.uid]
    if _holder(others, obj.name) is None:
        try:
            with ctx.dynsec() as admin:
                broker.remove_vendor(admin, names.vendor)
        except (DynsecError, OSError) as exc:
            retry.append(f"Acl: {exc}")
    try:
        ctx.kube.delete("v1", "Secret", names.credentials_secret, obj.namespace)
    except KubeError as exc:
        retry.append(f"Credentials: {exc}")
    status = {"phase": "Degraded" if retry else None}
    events = [] if retry else [Event("Normal", "Removed", f"withdrew MQTT client {names.vendor} and its Secret")]
    return Outcome(status, events, retry="; ".join(retry) or None)
