"""Provisioning one IOCSite: every part it needs, in and outside Kubernetes, reported as status and events.

The IOCSite handlers (operators.handlers.iocsite) call `reconcile` on create, update, resume and from the
repair timer (the figures timer is operators.sitefigures, deletion operators.siteremoval); this module
decides what each part needs and calls the pure builders and the service clients. It never raises for a part that
fails: the part's condition says why and the outcome asks for a retry, so one unreachable service does
not stop the others from being put in place. A spec the operator must refuse is a permanent outcome.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from typing import Any, Final

from confluent_kafka import KafkaException

from ioc.clients.clickhouse import WarehouseError
from ioc.clients.dynsec import DynsecError
from ioc.kafka_access import site_command_topic, site_principal
from ioc.reference import ReferenceModel, ReferenceModelError, default_reference_model, parse_reference_model
from ioc.scope import Scope, site_scope
from operators import broker, conditions, config, manifests, sitedb, sitekafka
from operators.context import Context
from operators.credentials import derive_password
from operators.kube import KubeError
from operators.models import IOCSiteSpec, ResourceError, parse
from operators.names import SiteNames, site_names
from operators.siteconfig import (
    PublishError,
    settings_effects,
)

__all__ = [
    "PARTS",
    "Event",
    "Outcome",
    "SiteObject",
    "Trigger",
    "reconcile",
    "record",
    "sign_in",
]

PARTS: Final = ("Valid", "Parent", "Kubernetes", "Warehouse", "Streams", "Broker", "Kafka")
"""The conditions Ready waits for."""

DEFAULT_MODEL: Final = "default"
SERVED_BY_PARENT: Final = "ServedByParent"
"""The reason of the Dashboard, Warehouse, Kafka and SignIn conditions of a site its ancestor's dashboard serves."""


class Trigger(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    RESUME = "resume"
    REPAIR = "repair"


@dataclasses.dataclass(frozen=True, slots=True)
class SiteObject:
    """The parts of an IOCSite object the operator reads."""

    namespace: str
    name: str
    uid: str
    generation: int
    created: str
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    deleting: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """A Kubernetes Event to post about the object: type Normal or Warning."""

    type: str
    reason: str
    message: str


@dataclasses.dataclass(slots=True)
class Outcome:
    """What a reconcile produced: the status to write, events to post, and whether to try again."""

    status: dict[str, Any]
    events: list[Event] = dataclasses.field(default_factory=list)
    retry: str | None = None
    permanent: str | None = None


def record(obj: SiteObject) -> config.SiteRecord | None:
    """The index entry of a site (None when its spec cannot be read: such a site serves nothing)."""
    try:
        spec = parse(IOCSiteSpec, obj.spec)
    except ResourceError:
        return None
    parent = None
    if spec.parent_ref is not None:
        parent = (spec.parent_ref.namespace or obj.namespace, spec.parent_ref.name)
    return config.SiteRecord(
        obj.namespace,
        obj.name,
        obj.uid,
        spec.unit,
        spec.edition,
        spec.tier,
        parent,
        obj.created,
        obj.deleting,
        spec.dashboard.served_by,
    )


def resolve_model(models: Mapping[str, Any], name: str) -> ReferenceModel:
    """The ReferenceModel object's spec, validated; the packaged default stands in for a missing "default"."""
    spec = models.get(name)
    if spec is None:
        if name == DEFAULT_MODEL:
            return default_reference_model()
        raise LookupError(f"ReferenceModel {name!r} does not exist")
    return parse_reference_model(spec, f"ReferenceModel {name}")


def _failed(obj: SiteObject, reason: str, message: str, field_message: str) -> Outcome:
    old = obj.status.get("conditions", [])
    conds = conditions.merge(
        old,
        [
            conditions.condition("Valid", False, reason, field_message, generation=obj.generation),
            conditions.condition("Ready", False, reason, f"{message}: {field_message}", generation=obj.generation),
        ],
    )
    status = {
        "phase": conditions.phase(conds, PARTS, failed=True),
        "observedGeneration": obj.generation,
        "conditions": conds,
    }
    return Outcome(status, [Event("Warning", reason, field_message)], permanent=field_message)


def _login(ctx: Context, names: SiteNames, password: str) -> manifests.Login:
    endpoint = ctx.settings.clickhouse
    return manifests.Login(
        endpoint.host, endpoint.port, endpoint.http_port, names.database, names.clickhouse_user, password
    )


def _kube_reason(exc: KubeError) -> str:
    return {403: "Forbidden", 422: "Invalid", 409: "Conflict", 0: "Unreachable"}.get(exc.status, "ApiError")


@dataclasses.dataclass(slots=True)
class _Run:
    """One reconcile of a valid spec: what every part needs, and what they report."""

    ctx: Context
    obj: SiteObject
    spec: IOCSiteSpec
    names: SiteNames
    scope: Scope
    text: str
    chash: str
    password: str
    trigger: Trigger
    modules: list[str]
    kafka_password: str
    server: SiteNames | None
    """The ancestor site whose dashboard serves this one; None when it runs its own."""
    previous: Mapping[str, Mapping[str, Any]]
    """The conditions before this reconcile, by type."""
    events: list[Event] = dataclasses.field(default_factory=list)
    retry: list[str] = dataclasses.field(default_factory=list)
    removal_failed: bool = False
    """Removing what a formerly own dashboard needed failed: the status keeps naming its own database, so the
    next attempt removes the rest (`was_own`)."""

    def condition(self, type_: str, ok: bool | None, reason: str, message: str = "") -> dict[str, Any]:
        if ok is False:
            self.retry.append(f"{type_}: {message}")
        return conditions.condition(type_, ok, reason, message, generation=self.obj.generation)

    def event(self, repaired: bool, what: str) -> None:
        if repaired:
            self.events.append(Event("Warning", "Repaired", f"re-created {what} (deleted outside the operator)"))
        else:
            self.events.append(Event("Normal", "Created", f"created {what}"))

    def kubernetes(self) -> dict[str, Any]:
        ctx, names, spec = self.ctx, self.names, self.spec
        login = _login(ctx, names, self.password) if self.server is None else None
        kafka = self.kafka_login()
        children = manifests.site_children(
            names,
            self.obj.uid,
            spec,
            config_text=self.text,
            login=login,
            settings=ctx.settings,
            modules=self.modules,
            kafka=kafka,
        )
        try:
            created = [f"{m['kind']}/{m['metadata']['name']}" for m in children if ctx.kube.apply(m)]
            removed = [
                f"{ref.kind}/{ref.name}"
                for ref in self.obsolete(kafka is not None)
                if ctx.kube.delete(ref.api_version, ref.kind, ref.name, ref.namespace)
            ]
        except KubeError as exc:
            self.removal_failed = self.removal_failed or self.was_own()
            return self.condition("Kubernetes", False, _kube_reason(exc), str(exc))
        if created:
            self.event(self.trigger is Trigger.REPAIR, ", ".join(created))
        if removed:
            self.events.append(Event("Normal", "Removed", f"removed {', '.join(removed)} (no longer asked for)"))
        return self.condition("Kubernetes", True, "Applied", f"{len(children)} objects applied server-side")

    def obsolete(self, kafka: bool) -> list[manifests.ChildRef]:
        """Children to delete: only those the site may still have, so a steady site costs no extra calls."""
        if self.server is not None:
            return manifests.obsolete_children(self.names, self.spec, dashboard=not self.was_own())
        had_principal = self.previous.get("Kafka", {}).get("reason") == "PrincipalReady"
        return manifests.obsolete_children(self.names, self.spec, kafka=kafka or not had_principal)

    def was_own(self) -> bool:
        """Whether a site served by its parent may still hold what its own dashboard needed: its status last
        reported its own database (a switch, an upgrade from one dashboard per commune, or a removal that
        failed and is retried). Read from the status field only the reconcile writes: the figures timer
        rewrites the conditions from what it read, and could hide a switch."""
        return self.server is not None and self.obj.status.get("database") == self.names.database

    def kafka_login(self) -> manifests.KafkaLogin | None:
        """The site's principal when the brokers authenticate (the operator's own endpoint uses SASL)."""
        if not self.ctx.settings.kafka.uses_sasl or self.server is not None:
            return None
        return manifests.KafkaLogin(site_principal(self.spec.unit), self.kafka_password)

    def kafka(self) -> dict[str, Any]:
        """The site's command topic and principal, with exactly its grants; nothing on a broker without SASL."""
        endpoint = self.ctx.settings.kafka
        if self.server is not None:
            served = f"commands come from the dashboard of IOCSite {self.server.namespace}/{self.server.name}"
            if endpoint.uses_sasl and self.was_own():
                try:
                    sitekafka.remove_identity(endpoint, self.spec.unit)
                except (KafkaException, TimeoutError) as exc:
                    self.removal_failed = True
                    return self.condition("Kafka", False, "KafkaError", str(exc)[:500])
            return self.condition("Kafka", True, SERVED_BY_PARENT, f"no principal of its own: {served}")
        if not endpoint.uses_sasl:
            message = f"the brokers do not authenticate ({endpoint.security_protocol}): no principal to issue"
            return self.condition("Kafka", True, "NoAuthentication", message)
        try:
            principal = sitekafka.ensure_identity(endpoint, self.spec.unit, self.kafka_password)
        except (KafkaException, TimeoutError) as exc:
            return self.condition("Kafka", False, "KafkaError", str(exc)[:500])
        topic = site_command_topic(self.spec.unit).name
        message = f"principal {principal} writes {topic} only; its password is in Secret {self.names.kafka_secret}"
        return self.condition("Kafka", True, "PrincipalReady", message)

    def warehouse(self) -> dict[str, Any]:
        ctx, names = self.ctx, self.names
        if self.server is not None:
            return self.served_warehouse()
        try:
            report = sitedb.ensure_site(
                ctx.warehouse(),
                names,
                self.scope,
                self.password,
                source_db=ctx.settings.clickhouse.database,
                users_d=ctx.settings.clickhouse_users_d,
                limits=ctx.settings.site_reader,
            )
        except (WarehouseError, OSError) as exc:
            ctx.drop_warehouse()
            reason = "NoUsersDirectory" if isinstance(exc, FileNotFoundError) else "ClickHouseError"
            return self.condition("Warehouse", False, reason, str(exc)[:500])
        if report.recreated:
            changed = ", ".join(report.recreated)
            self.events.append(
                Event("Normal", "CopiesRebuilt", f"rebuilt and back-filled copies that had drifted: {changed}")
            )
        if report.created:
            self.event(self.trigger is Trigger.REPAIR, f"copies {', '.join(report.created)} in {names.database}")
        copies = len(sitedb.SITE_TABLES) - len(report.missing_tables)
        message = f"database {names.database} with {copies} scoped copies and user {names.clickhouse_user}"
        if report.missing_tables:
            message += (
                f"; tables not in {ctx.settings.clickhouse.database} yet (their copies follow): "
                f"{', '.join(report.missing_tables)}"
            )
            return self.condition("Warehouse", True, "TablesMissing", message)
        return self.condition("Warehouse", True, "Provisioned", message)

    def served_warehouse(self) -> dict[str, Any]:
        """No database, copies or login of its own; those it had before are dropped."""
        ctx, names, server = self.ctx, self.names, self.server
        assert server is not None
        if self.was_own():
            try:
                sitedb.drop_site(ctx.warehouse(), names, users_d=ctx.settings.clickhouse_users_d)
            except (WarehouseError, OSError) as exc:
                self.removal_failed = True
                ctx.drop_warehouse()
                return self.condition("Warehouse", False, "ClickHouseError", str(exc)[:500])
            self.events.append(Event("Normal", "Removed", f"removed database and user {names.database}"))
        message = f"no database of its own: its rows are in {server.database}, read by {server.namespace}/{server.name}"
        return self.condition("Warehouse", True, SERVED_BY_PARENT, message)

    def parent(self, parent: config.SiteRecord | None) -> dict[str, Any]:
        ref = self.spec.parent_ref
        if ref is not None and parent is None:
            message = f"spec.parentRef: IOCSite {ref.namespace or self.obj.namespace}/{ref.name} does not exist (yet)"
            # Unknown, not False: nothing is broken, the parent is usually applied in the same batch.
            self.retry.append(message)
            return self.condition("Parent", None, "ParentMissing", message)
        where = "is a root" if parent is None else f"reports to {parent.namespace}/{parent.name}"
        return self.condition("Parent", True, "ParentFound", f"the site {where}")

    def dashboard(self) -> list[dict[str, Any]]:
        """Dashboard and SignIn: which dashboard serves the site (its own, or the nearest ancestor's with one)."""
        gen = self.obj.generation
        if self.server is None:
            return [
                self.condition("Dashboard", True, "Own", f"Deployment and Service {self.names.dashboard}"),
                # Straight from `conditions`: a read-only site (SignIn False) is a choice, never a reason to retry.
                conditions.condition(*sign_in(self.spec), generation=gen),
            ]
        server = f"IOCSite {self.server.namespace}/{self.server.name}"
        message = (
            f"served by the dashboard of {server} ({self.server.dashboard_url}): a person signed in there with a "
            f"grant for {self.spec.unit} or a unit below it sees and acts on that part only"
        )
        where = f"visitors sign in on the dashboard of {server}"
        return [
            self.condition("Dashboard", True, SERVED_BY_PARENT, message),
            conditions.condition("SignIn", None, SERVED_BY_PARENT, where, generation=gen),
        ]

    def streams(self, previous: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, Any], bool, int | None]:
        """Topics and the published configuration; whether it is on the topic now, and its offset if published now."""
        ctx, spec = self.ctx, self.spec
        stale = (
            self.obj.status.get("configHash") != self.chash
            or previous.get("Streams", {}).get("status") != "True"
            or self.trigger in (Trigger.CREATE, Trigger.RESUME)
        )
        offset = None
        try:
            ctx.ensure_shared_topics()
            if stale:
                offset = ctx.publisher().publish(self.names.config_key, self.text)
        except (KafkaException, PublishError) as exc:
            return self.condition("Streams", False, "KafkaError", str(exc)), False, None
        published = f"configuration {self.chash} published on {ctx.publisher().topic} (key {self.names.config_key})"
        message = f"{published}; {settings_effects(self.names, spec)}"
        return self.condition("Streams", True, "Published", message), True, offset

    def broker(self) -> dict[str, Any]:
        acls = broker.site_acls(self.scope)
        try:
            with self.ctx.dynsec() as admin:
                broker.ensure_role(admin, self.names.mqtt_role, acls)
        except (DynsecError, OSError) as exc:
            return self.condition("Broker", False, "MosquittoError", str(exc))
        message = f"role {self.names.mqtt_role} reads the device topics of {len(acls) // 2} unit pattern(s)"
        return self.condition("Broker", True, "RoleReady", message)


def _validate(
    obj: SiteObject, records: list[config.SiteRecord], models: Mapping[str, Any]
) -> tuple[IOCSiteSpec, ReferenceModel, dict[str, Any], config.SiteRecord | None] | Outcome:
    """The spec, its model, its effective configuration and its parent; or the outcome refusing it."""
    gen = obj.generation
    try:
        spec = parse(IOCSiteSpec, obj.spec)
    except ResourceError as exc:
        return _failed(obj, "InvalidSpec", "the spec is invalid", str(exc))
    try:
        model = resolve_model(models, spec.reference_model)
    except LookupError as exc:
        message = f"spec.referenceModel: {exc}"
        cond = conditions.condition("Valid", None, "ReferenceModelMissing", message, generation=gen)
        conds = conditions.merge(obj.status.get("conditions", []), [cond])
        conds = conditions.merge(conds, [conditions.ready(conds, PARTS, generation=gen)])
        status = {"phase": conditions.phase(conds, PARTS), "observedGeneration": gen, "conditions": conds}
        return Outcome(status, retry=message)
    except ReferenceModelError as exc:
        return _failed(obj, "InvalidReferenceModel", "its reference model is invalid", f"spec.referenceModel: {exc}")
    me = record(obj)
    assert me is not None  # the spec parsed above
    owner = config.owner_of_unit([*(r for r in records if r.uid != obj.uid), me], spec.unit, spec.edition)
    if owner is not None and owner.uid != obj.uid:
        held = f"IOCSite {owner.namespace}/{owner.name}"
        message = f"spec.unit: unit {spec.unit} ({spec.edition}) is already served by {held}"
        return _failed(obj, "UnitTaken", "another site serves this unit", message)
    names = site_names(obj.name, obj.namespace, spec)
    try:
        document = config.effective_config(names, spec, model)
        parent = config.check_parent(records, me, spec, model)
    except config.SiteSpecError as exc:
        return _failed(obj, "InvalidSpec", "the spec does not fit the reference model or the tree", str(exc))
    return spec, model, document, parent


def sign_in(spec: IOCSiteSpec) -> tuple[str, bool, str, str]:
    """The SignIn condition (type, ok, reason, message): how the dashboard's visitors are known. Not a part Ready
    waits for: a site without an identity provider is a choice, served read-only, not a failure."""
    ref = spec.dashboard.sign_in
    if ref is None:
        return "SignIn", False, "ReadOnlyViewer", "no identity provider configured; visitors can only view"
    return (
        "SignIn",
        True,
        "IdentityProvider",
        f"visitors sign in through the OIDC client in Secret {ref.secret_ref.name}; grants decide what they may do",
    )


def _serving_site(obj: SiteObject, records: list[config.SiteRecord], model: ReferenceModel) -> SiteNames | None:
    me = record(obj)
    found = None if me is None else config.serving_site(records, me, model)
    return None if found is None else SiteNames(found.name, found.namespace, found.unit, found.edition)


def _waiting_for_server(run: _Run, new: list[dict[str, Any]]) -> Outcome:
    """The outcome of a site its parent's dashboard should serve while no ancestor that could exists (yet)."""
    gen = run.obj.generation
    # Unknown, not False: its parent (or one above it) is usually applied in the same batch.
    message = "no ancestor site with its own dashboard exists (yet) to serve it"
    new.append(conditions.condition("Dashboard", None, "ServingSiteMissing", message, generation=gen))
    run.retry.append(f"Dashboard: {message}")
    conds = conditions.merge(run.obj.status.get("conditions", []), new)
    conds = conditions.merge(conds, [conditions.ready(conds, PARTS, generation=gen)])
    status = {"phase": conditions.phase(conds, PARTS), "observedGeneration": gen, "conditions": conds}
    return Outcome(status, run.events, retry="; ".join(run.retry))


def reconcile(
    ctx: Context,
    obj: SiteObject,
    *,
    records: Iterable[config.SiteRecord],
    models: Mapping[str, Any],
    trigger: Trigger,
) -> Outcome:
    """Bring every part of the site to what its spec asks; idempotent."""
    records = list(records)
    validated = _validate(obj, records, models)
    if isinstance(validated, Outcome):
        return validated
    spec, model, document, parent = validated
    gen = obj.generation
    names = site_names(obj.name, obj.namespace, spec)
    text = config.config_json(document)
    previous = {c["type"]: c for c in obj.status.get("conditions", [])}
    served = document["dashboard"]["servedBy"] == "Parent"
    server = _serving_site(obj, records, model) if served else None
    run = _Run(
        ctx,
        obj,
        spec,
        names,
        site_scope(spec.unit, spec.edition),
        text,
        config.config_hash(text),
        derive_password(ctx.key, "clickhouse", obj.uid),
        trigger,
        list(document["modules"]),
        derive_password(ctx.key, "kafka", obj.uid),
        server,
        previous,
    )
    new = [run.condition("Valid", True, "SpecValid"), run.parent(parent)]
    if served and server is None:
        # Nothing is provisioned or removed until it is known who serves the site.
        return _waiting_for_server(run, new)
    new += run.dashboard()
    # Every trigger but a repair of a working principal: an operator restarted with a new key (resume)
    # re-issues the password it now derives, and the Secret below carries it.
    if trigger is not Trigger.REPAIR or previous.get("Kafka", {}).get("status") != "True":
        new.append(run.kafka())
    new.append(run.kubernetes())
    # A site switching to its parent's dashboard has its database removed; one switching back gets one made.
    switched = run.was_own() or (server is None and obj.status.get("servedBy") is not None)
    if trigger is not Trigger.UPDATE or previous.get("Warehouse", {}).get("status") != "True" or switched:
        new.append(run.warehouse())
    streams, published, offset = run.streams(previous)
    new.append(streams)
    if trigger in (Trigger.CREATE, Trigger.RESUME) or previous.get("Broker", {}).get("status") != "True":
        new.append(run.broker())
    conds = conditions.merge(obj.status.get("conditions", []), new)
    conds = conditions.merge(conds, [conditions.ready(conds, PARTS, generation=gen)])
    status: dict[str, Any] = {
        "phase": conditions.phase(conds, PARTS),
        "observedGeneration": gen,
        "conditions": conds,
        "unitName": document["site"]["unitName"],
        "path": run.scope.path,
        # None removes a field (a merge patch): a site served by its parent has no database or login of its own.
        "database": names.database if server is None or run.removal_failed else server.database,
        "credentialsSecret": names.credentials_secret if server is None else None,
        "dashboardUrl": (server or names).dashboard_url,
        "servedBy": None if server is None else f"{server.namespace}/{server.name}",
    }
    if published:
        status["configHash"] = run.chash
    if offset is not None:
        status["configOffset"] = offset
    if trigger is Trigger.CREATE and not run.retry:
        message = f"unit {spec.unit} ({document['site']['unitName']}): every part in place"
        run.events.append(Event("Normal", "Provisioned", message))
    return Outcome(status, run.events, retry="; ".join(run.retry) or None)
