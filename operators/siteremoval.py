"""Removing an IOCSite: its Kubernetes children and its external parts, once no site below it remains.

The IOCSite delete handler (operators.handlers.iocsite) calls `finalize` until it asks for no retry; parts
outside Kubernetes (ClickHouse database and user, configuration key, MQTT role, Kafka principal) are
removed only when no other site serves the same unit.
"""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import KafkaException

from ioc.clients.clickhouse import WarehouseError
from ioc.clients.dynsec import DynsecError
from operators import broker, conditions, config, manifests, sitedb, sitekafka
from operators.context import Context
from operators.kube import KubeError
from operators.models import IOCSiteSpec, parse
from operators.names import SiteNames, site_names
from operators.siteconfig import PublishError, delete_isolated_topics
from operators.sites import PARTS, Event, Outcome, SiteObject, record

__all__ = ["finalize"]


def finalize(ctx: Context, obj: SiteObject, *, records: Iterable[config.SiteRecord]) -> Outcome:
    """Remove the site's parts, unless sites below it still exist (they must be deleted first)."""
    records = list(records)
    gen = obj.generation
    children = sorted(
        f"{r.namespace}/{r.name}" for r in records if r.parent == (obj.namespace, obj.name) and r.uid != obj.uid
    )
    if children:
        message = f"sites report to this one and must be deleted first: {', '.join(children)}"
        cond = conditions.condition("Ready", False, "ChildSitesExist", message, generation=gen)
        conds = conditions.merge(obj.status.get("conditions", []), [cond])
        status = {"phase": conditions.phase(conds, PARTS, deleting=True), "conditions": conds}
        return Outcome(status, [Event("Warning", "DeletionBlocked", message)], retry=message)
    retry: list[str] = []
    me = record(obj)
    done: list[str] = []
    if me is not None:
        spec = parse(IOCSiteSpec, obj.spec)
        names = site_names(obj.name, obj.namespace, spec)
        others = [r for r in records if r.uid != obj.uid and not r.deleting]
        if config.owner_of_unit(others, spec.unit, spec.edition) is None:
            done += _remove_external(ctx, names, spec, retry)
        # The principal is named by unit only: a site of the other edition with the same code keeps it.
        if ctx.settings.kafka.uses_sasl and not any(r.unit == spec.unit for r in others):
            try:
                done.append(f"Kafka principal {sitekafka.remove_identity(ctx.settings.kafka, spec.unit)}")
            except (KafkaException, TimeoutError) as exc:
                retry.append(f"Kafka: {exc}")
    else:
        names = SiteNames(obj.name, obj.namespace, "00", "2024")
    try:
        for ref in manifests.all_children(names):
            if ctx.kube.delete(ref.api_version, ref.kind, ref.name, ref.namespace):
                done.append(f"{ref.kind}/{ref.name}")
    except KubeError as exc:
        retry.append(f"Kubernetes: {exc}")
    cond = conditions.condition(
        "Ready", False, "Deleting", "; ".join(retry) or "removing the site's parts", generation=gen
    )
    conds = conditions.merge(obj.status.get("conditions", []), [cond])
    status = {"phase": "Deleting", "conditions": conds}
    events = [Event("Normal", "Removed", f"removed {', '.join(done)}")] if done else []
    return Outcome(status, events, retry="; ".join(retry) or None)


def _remove_external(ctx: Context, names: SiteNames, spec: IOCSiteSpec, retry: list[str]) -> list[str]:
    done = []
    try:
        sitedb.drop_site(ctx.warehouse(), names, users_d=ctx.settings.clickhouse_users_d)
        done.append(f"database and user {names.database}")
    except (WarehouseError, OSError) as exc:
        ctx.drop_warehouse()
        retry.append(f"Warehouse: {exc}")
    try:
        ctx.publisher().publish(names.config_key, None)
        if spec.workers.isolated:
            # Only while isolated: a 2025 site may share its unit code (so its topic names) with a 2024 one.
            delete_isolated_topics(ctx.settings.kafka, spec.unit)
        done.append(f"configuration key {names.config_key}")
    except (KafkaException, PublishError) as exc:
        retry.append(f"Streams: {exc}")
    try:
        with ctx.dynsec() as admin:
            broker.delete_role(admin, names.mqtt_role)
        done.append(f"MQTT role {names.mqtt_role}")
    except (DynsecError, OSError) as exc:
        retry.append(f"Broker: {exc}")
    return done
