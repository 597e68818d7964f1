"""Notifications: tell the sites' people (and linked reports' citizens) about incidents, each delivery once.

Reads every incident version on `ioc.incidents.v1` and the ticks sent there. What to send is streams/notify.py's
(pure), how is streams/notifier.py's; this agent keeps, per incident, the version it last saw and the deliveries
already made (a Faust table, so a restarted or rebalanced worker goes on where the last one stopped), and per
partition the deliveries held for the next digest. docs/notifications.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from typing import Any, Final

import msgspec

from ioc import topics
from ioc.clients.clickhouse import WarehouseError
from ioc.events import Incident, Severity, Tick
from ioc.people import EMAIL_CHANNEL, NotifyEvent
from streams import notify
from streams.agents.common import PartitionedState, fail_fast, kept_state
from streams.notifier import Lookups, Sender, digest_delivery
from streams.pipeline import PartitionBuffer
from streams.runtime import Runtime
from streams.siteconfig import SiteConfigReader, SiteIndex, SiteSettings
from streams.warehouse import rows

__all__ = ["register"]

log = logging.getLogger(__name__)

REMEMBERED_DELIVERIES: Final = 256
"""Delivery ids kept per incident to refuse a second send (an incident gets a few dozen in its life)."""
_DIGEST: Final = "~digest:"


class _Held(msgspec.Struct, frozen=True):
    """A delivery waiting for its site's digest (the webhook is looked up again from the site when it goes)."""

    delivery_id: str
    event: NotifyEvent
    rule: str
    channel: str
    recipient: str
    address: str
    subject: str
    text: str
    site: str
    due_at: dt.datetime
    incident: Incident
    zalo_user_id: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)


class _State(msgspec.Struct):
    """Per incident: what was last seen and the deliveries made; per partition (`~digest:<n>`): the held ones."""

    seen: notify.Seen | None = None
    sent: list[str] = msgspec.field(default_factory=list)
    held: list[_Held] = msgspec.field(default_factory=list)


_decoder = msgspec.json.Decoder(_State)


def _partition_of(key: str) -> int:
    if key.startswith(_DIGEST):
        return int(key.removeprefix(_DIGEST))
    return topics.partition_for(key, topics.INCIDENTS.partitions)


def _next_digest(site: SiteSettings, at: dt.datetime) -> dt.datetime:
    """The first digest time after `at` (every `digestMinutes` from midnight UTC) outside the quiet hours."""
    spec = site.notifications
    period = dt.timedelta(minutes=spec.digest_minutes)
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    due = midnight + period * ((at - midnight) // period + 1)
    for _ in range(24 * 60 // spec.digest_minutes + 1):
        if spec.quiet_hours is None or not spec.quiet_hours.holds(due, Severity.LOW):
            break
        due += period
    return due


class _Notifier:
    """One worker's notifier: the agent's per-partition handling, over its kept states."""

    def __init__(self, rt: Runtime, states: PartitionedState[_State]) -> None:
        self.rt = rt
        self.states = states
        self.sites = SiteConfigReader(rt.settings, rt.model.rules)
        self.sender = Sender(rt.settings.notify)
        self.lookups = Lookups(rt.sink.warehouse, rt.database)
        self.tree = rt.context.tree
        self.edition = rt.settings.edition

    async def handle(self, partition: int, buffer: PartitionBuffer, value: Incident | Tick) -> None:
        index = self.sites.current()
        if isinstance(value, Tick):
            await self.on_tick(partition, buffer, value.at, index)
        else:
            await self.on_incident(partition, buffer, value, index)

    def record(
        self, buffer: PartitionBuffer, incident: Incident, delivery: notify.Delivery, *, status: str, attempts: int,
        detail: str,
    ) -> None:  # fmt: skip
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        row = rows.delivery_row(
            incident,
            delivery_id=delivery.delivery_id,
            event=delivery.event.value,
            rule=delivery.rule,
            recipient=delivery.recipient,
            channel=delivery.channel,
            status=status,
            attempts=attempts,
            detail=detail,
            path=self.rt.path(incident.unit),
            responsible_path=self.rt.path(incident.responsible_unit or incident.unit),
            created_at=now,
            updated_at=now,
        )
        buffer.add_rows("notification_deliveries", [row])
        buffer.urgent = True  # the incident page shows it

    async def send(self, buffer: PartitionBuffer, incident: Incident, delivery: notify.Delivery) -> bool:
        outcome = await asyncio.to_thread(self.sender.deliver, delivery)
        status = "sent" if outcome.sent else "failed"
        self.record(buffer, incident, delivery, status=status, attempts=outcome.attempts, detail=outcome.detail)
        if not outcome.sent:
            log.error("notification %s to %s failed: %s", delivery.delivery_id, delivery.recipient, outcome.detail)
        return outcome.sent

    async def deliver(
        self, where: tuple[int, PartitionBuffer], state: _State, incident: Incident, site: SiteSettings, *,
        deliveries: list[notify.Delivery], at: dt.datetime,
    ) -> None:  # fmt: skip
        """Send (or hold for the digest) the deliveries not made yet, each recorded; remembers them in `state`."""
        partition, buffer = where
        fresh = [d for d in deliveries if d.delivery_id not in state.sent]
        if not fresh:
            return
        try:
            done = await asyncio.to_thread(self.lookups.already_sent, [d.delivery_id for d in fresh])
        except WarehouseError as exc:  # at least once: better twice than never
            log.warning("notifications: sent deliveries unreadable (%s); sending", exc)
            done = set()
        for delivery in fresh:
            state.sent = [*state.sent, delivery.delivery_id][-REMEMBERED_DELIVERIES:]
            if delivery.delivery_id in done:
                continue
            if delivery.held:
                key = f"{_DIGEST}{partition}"
                held = _held(delivery, incident, site, _next_digest(site, at))
                self.states.get(partition, key, _State).held.append(held)
                self.states.mark(partition, key)
                detail = f"for the digest at {held.due_at:%Y-%m-%d %H:%M} UTC"
                self.record(buffer, incident, delivery, status="held", attempts=0, detail=detail)
                continue
            await self.send(buffer, incident, delivery)

    async def on_incident(self, partition: int, buffer: PartitionBuffer, incident: Incident, index: SiteIndex) -> None:
        state = self.states.get(partition, incident.incident_id, _State)
        previous = state.seen.incident if state.seen is not None else None
        if previous is not None and incident.version <= previous.version:
            return  # replayed or out of order: told already
        events = notify.events_between(previous, incident)
        state.seen = msgspec.structs.replace(state.seen or notify.Seen(incident), incident=incident)
        self.states.mark(partition, incident.incident_id)
        site = notify.deciding_site(index.sites, incident.responsible_unit or incident.unit)
        if site is None or not events:
            return
        deliveries: list[notify.Delivery] = []
        at = incident.updated_at
        for event in events:
            reporters: dict[str, str] = {}
            if event is NotifyEvent.REPORT_STATE and any(r.to_reporters for r in site.notifications.rules):
                try:
                    reporters = await asyncio.to_thread(self.lookups.reporter_emails, incident.reports)
                except WarehouseError as exc:
                    log.warning("notifications: reporters' contacts unreadable (%s); citizens not told", exc)
            key = notify.change_key(event, incident)
            deliveries += notify.plan(
                incident, event, key, site, self.tree, at=at, reporters=reporters, edition=self.edition
            )
        await self.deliver((partition, buffer), state, incident, site, deliveries=deliveries, at=at)

    async def on_tick(self, partition: int, buffer: PartitionBuffer, now: dt.datetime, index: SiteIndex) -> None:
        for key, state in list(self.states.load(partition).items()):
            if key.startswith(_DIGEST) or state.seen is None:
                continue
            incident = state.seen.incident
            site = notify.deciding_site(index.sites, incident.responsible_unit or incident.unit)
            if site is None:
                continue
            events, seen = notify.clock_events(state.seen, now, site.notifications.sla_warning_minutes)
            if not events:
                continue
            state.seen = seen
            self.states.mark(partition, key)
            deliveries = [
                d
                for event in events
                for d in notify.plan(
                    incident, event, notify.clock_key(event, incident), site, self.tree, at=now, edition=self.edition
                )
            ]
            await self.deliver((partition, buffer), state, incident, site, deliveries=deliveries, at=now)
        await self.send_digests(partition, buffer, now, index)

    async def send_digests(self, partition: int, buffer: PartitionBuffer, now: dt.datetime, index: SiteIndex) -> None:
        """Send what was held and is due: one e-mail per address, webhook calls one by one."""
        key = f"{_DIGEST}{partition}"
        digest = self.states.get(partition, key, _State)
        due = [h for h in digest.held if h.due_at <= now]
        if not due:
            return
        digest.held = [h for h in digest.held if h.due_at > now]
        self.states.mark(partition, key)
        groups: dict[tuple[str, str], list[_Held]] = defaultdict(list)
        for held in due:
            groups[(held.channel, held.address)].append(held)
        for items in groups.values():
            deliveries = [_delivery(h, index.site(h.site)) for h in items]
            if items[0].channel == EMAIL_CHANNEL:
                sent = await self.send(buffer, items[0].incident, digest_delivery(deliveries))
                status = "sent" if sent else "failed"
                for held, delivery in zip(items[1:], deliveries[1:], strict=True):
                    self.record(buffer, held.incident, delivery, status=status, attempts=1, detail="in the digest")
                continue
            for held, delivery in zip(items, deliveries, strict=True):
                if delivery.webhook is None:
                    detail = f"webhook {held.channel} is no longer configured"
                    self.record(buffer, held.incident, delivery, status="failed", attempts=0, detail=detail)
                else:
                    await self.send(buffer, held.incident, delivery)


def register(rt: Runtime) -> None:
    """Follow incidents and the clock; plan, send and record deliveries (`notification_deliveries`)."""
    source = topics.INCIDENTS
    pipeline = rt.pipeline("notifications", source.name)
    states = kept_state(
        rt,
        pipeline,
        "notified",
        source,
        decode=_decoder.decode,
        encode=msgspec.json.encode,
        partition_of=_partition_of,
    )
    notifier = _Notifier(rt, states)

    def decode(event: Any) -> Incident | Tick:
        return source.decode(event.value)

    def prepare(partition: int, _buffer: PartitionBuffer) -> None:
        states.save(partition)

    @rt.app.agent(rt.topic(source.name), name="streams.notifications")
    @fail_fast
    async def notifications(stream: Any) -> None:
        await pipeline.consume(stream, decode, notifier.handle, prepare)


def _held(delivery: notify.Delivery, incident: Incident, site: SiteSettings, due: dt.datetime) -> _Held:
    return _Held(
        delivery_id=delivery.delivery_id,
        event=delivery.event,
        rule=delivery.rule,
        channel=delivery.channel,
        recipient=delivery.recipient,
        address=delivery.address,
        subject=delivery.subject,
        text=delivery.text,
        site=site.key,
        due_at=due,
        incident=incident,
        zalo_user_id=delivery.zalo_user_id,
        payload=dict(delivery.payload),
    )


def _delivery(held: _Held, site: SiteSettings | None) -> notify.Delivery:
    hooks = {w.name: w for w in site.notifications.webhooks} if site is not None else {}
    return notify.Delivery(
        held.delivery_id,
        held.incident.incident_id,
        held.event,
        held.rule,
        held.channel,
        held.recipient,
        held.address,
        held.subject,
        held.text,
        webhook=hooks.get(held.channel),
        zalo_user_id=held.zalo_user_id,
        payload=held.payload,
    )
