"""Issuing one SensorVendor its MQTT credentials and ACLs, and withdrawing them when it is deleted.

Called by operators.handlers.sensorvendor. The vendor id is the object's name, so it must be unique across
namespaces (the broker has one namespace of clients): the oldest object keeps it, later ones are refused.
The password is derived (operators.credentials), so a deleted Secret is re-created with the same one.
The broker username is `vendor.<id>` (ioc.clients.dynsec), never a platform account; ids reserved for
platform accounts are refused here as well as by the API server (an older CRD, a hand-made object).
A client the operator did not create is never reset: the Acl condition says ForeignClient instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Final

from ioc import topics, vendortoken
from ioc.clients.dynsec import DynsecError, ForeignClient, device_username, vendor_username
from operators import broker, conditions, manifests
from operators.context import Context
from operators.credentials import derive_password
from operators.kube import KubeError
from operators.models import ResourceError, SensorVendorSpec, parse, reserved_vendor_id
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


def _valid(obj: VendorObject, records: Iterable[VendorRecord]) -> SensorVendorSpec:
    """The vendor's spec, or ResourceError: a reserved id, a bad spec, an id another object holds."""
    reserved = reserved_vendor_id(obj.name)
    if reserved is not None:
        raise ResourceError("SensorVendor", [("metadata.name", reserved)])
    spec = parse(SensorVendorSpec, obj.spec)
    holder = _holder(records, obj.name)
    if holder is not None and holder.uid != obj.uid:
        raise ResourceError(
            "SensorVendor",
            [("metadata.name", f"vendor id {obj.name} is held by SensorVendor {holder.namespace}/{holder.name}")],
        )
    return spec


def _grant(
    ctx: Context, vendor: str, password: str, devices: dict[str, str], grants: tuple[list[str], list[str]], *, gen: int
) -> tuple[dict[str, Any], list[Event], str | None]:
    """The vendor's (and its devices') clients and ACLs on the broker: the Acl condition, events, a retry."""
    unit_segments, kinds = grants
    try:
        with ctx.dynsec() as admin:
            username = broker.ensure_vendor(admin, vendor, password, unit_segments, kinds)
            broker.ensure_devices(admin, vendor, devices, unit_segments, kinds)
    except ForeignClient as exc:
        # Someone else's client under this name: refuse, loudly, and try again later (it may be removed).
        cond = conditions.condition("Acl", False, "ForeignClient", str(exc), generation=gen)
        return cond, [Event("Warning", "ForeignClient", str(exc))], f"Acl: {exc}"
    except (DynsecError, OSError) as exc:
        return conditions.condition("Acl", False, "MosquittoError", str(exc), generation=gen), [], f"Acl: {exc}"
    message = f"may publish for {len(unit_segments)} unit pattern(s) and {len(kinds)} kind pattern(s)"
    if devices:
        message += f"; {len(devices)} device login(s), each for its own topic only"
    cond = conditions.condition("Acl", True, "Granted", message, generation=gen)
    return cond, [Event("Normal", "Granted", f"MQTT client {username}: {message}")], None


def _api_token(ctx: Context, vendor: str) -> str | None:
    key = ctx.settings.vendor_token_key
    return vendortoken.issue(key.get_secret_value(), vendor) if key is not None else None


def reconcile(ctx: Context, obj: VendorObject, *, records: Iterable[VendorRecord], trigger: Trigger) -> Outcome:
    gen = obj.generation
    old = obj.status.get("conditions", [])
    try:
        spec = _valid(obj, records)
    except ResourceError as exc:
        cond = conditions.condition("Valid", False, "InvalidSpec", str(exc), generation=gen)
        conds = conditions.merge(old, [cond, conditions.condition("Ready", False, "InvalidSpec", str(exc))])
        status = {"phase": "Failed", "observedGeneration": gen, "conditions": conds}
        return Outcome(status, [Event("Warning", "InvalidSpec", str(exc))], permanent=str(exc))
    names = vendor_names(obj.name, obj.namespace)
    password = derive_password(ctx.key, "mqtt", obj.uid)
    unit_segments, kinds = broker.vendor_grants(spec.units, spec.kinds, ctx.settings.edition)
    new = [conditions.condition("Valid", True, "SpecValid", generation=gen)]
    events: list[Event] = []
    retry: list[str] = []
    mqtt = ctx.settings.mqtt
    devices = list(spec.devices) if spec.per_device_credentials else []
    device_passwords = {d: derive_password(ctx.key, f"mqtt-device\0{d}", obj.uid) for d in devices}
    logins = {d: (device_username(obj.name, d), p) for d, p in device_passwords.items()}
    secret = manifests.vendor_secret(
        names,
        obj.uid,
        mqtt.host,
        mqtt.port,
        password,
        username=vendor_username(obj.name),
        devices=logins,
        ca=mqtt.tls_ca_file.read_text(encoding="utf-8") if mqtt.tls_ca_file is not None else None,
        api_token=_api_token(ctx, names.vendor),
    )
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
        acl, granted, again = _grant(ctx, names.vendor, password, device_passwords, (unit_segments, kinds), gen=gen)
        new.append(acl)
        if again is not None:
            retry.append(again)
        if trigger is not Trigger.REPAIR or again is not None:
            events += granted
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
        except ForeignClient:
            pass  # not ours to delete: the vendor's object may go, the client stays as it was
        except (DynsecError, OSError) as exc:
            retry.append(f"Acl: {exc}")
    try:
        ctx.kube.delete("v1", "Secret", names.credentials_secret, obj.namespace)
    except KubeError as exc:
        retry.append(f"Credentials: {exc}")
    status = {"phase": "Degraded" if retry else None}
    removed = f"withdrew MQTT client {vendor_username(obj.name)} and its Secret"
    events = [] if retry else [Event("Normal", "Removed", removed)]
    return Outcome(status, events, retry="; ".join(retry) or None)
