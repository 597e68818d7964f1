"""What every agent shares in one worker: the Faust app, topics from the registry, sink, model and clock."""

from __future__ import annotations

import bisect
import collections
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any, Final

import faust
from faust.types import TP
from faust.utils.functional import consecutive_numbers

from ioc import editions, topics
from ioc.clients import clickhouse
from ioc.reference import ReferenceModel, default_reference_model, load_reference_model
from ioc.settings import KafkaEndpoint, StreamsSettings
from ioc.units import UnitTree, load_tree
from ioc.workdays import WorkingCalendar, default_calendar
from streams.lifecycle import Context
from streams.pipeline import GroupedSink, Outgoing, Pipeline
from streams.warehouse.sink import RowSink

__all__ = ["GatedApp", "QuietWorker", "Runtime"]

log = logging.getLogger(__name__)

# Topics whose partitions receive ticks, so time-driven work runs where each partition's state lives.
TICKED: Final[tuple[topics.KafkaTopic, ...]] = (
    topics.READINGS,
    topics.CAMERA_EVENTS,
    topics.AGGREGATES,
    topics.INCIDENT_SIGNALS,
    topics.INCIDENTS,  # the notifier's SLA warnings and digests (streams/agents/notifications.py)
)


def broker_credentials(kafka: KafkaEndpoint) -> faust.types.auth.CredentialsT | None:
    """Faust's (aiokafka's) credentials for the worker's principal: SCRAM over TLS, TLS alone, or none."""
    context = kafka.ssl_context()
    if kafka.uses_sasl:
        secret = kafka.password.get_secret_value() if kafka.password else None
        return faust.SASLCredentials(
            username=kafka.username, password=secret, ssl_context=context, mechanism=kafka.sasl_mechanism
        )
    return faust.SSLCredentials(context) if context is not None else None


class QuietWorker(faust.Worker):
    """Faust's worker without the start-up spinner.

    The spinner leaves the root logger at DEBUG for the life of the process (its handler turns on every
    record), so each debug call in aiokafka and Faust built a log record nobody printed: about a tenth of
    a busy worker's CPU. The level given with `--loglevel` is the level, and "Ready" goes to the log.
    """

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None


class GatedApp(faust.App):
    """Faust's app whose consumer commits a pipeline topic's offsets only over events the pipeline stored.

    Three of faust-streaming 0.15's consumer habits could commit past an event no agent stored, and are
    changed here for the topics pipelines read (`gated_topics`); other topics keep Faust's behaviour:

    - Faust acknowledges by itself an event its stream skips — fetched before a rebalance, or taken while
      a revocation or shutdown stopped the flow — even on a `noack` stream. Such acks are refused;
      pipelines acknowledge inside `acknowledge`, once the events' rows are stored.
    - Its "read offset" drops a message below the highest offset already handed out. After a rebalance
      the flow resumes (for table recovery) before the stream partitions are sought to their committed
      offsets, so messages from before the seek raise it and the re-read ones below it were dropped, never
      processed (seen in tests/streams/test_worker.py: seven readings of a partition missing). Every
      message is handed out here; a re-read one is stored again, idempotently.
    - Its commit passes a one-offset hole at the head of the acknowledged offsets and fills holes with
      offsets it guessed were skipped. Here a commit moves only over a run of acknowledged offsets that
      starts at the committed one.
    - A partition the group has never committed has no such anchor: Faust commits the first run of
      acknowledged offsets wherever it starts. After a rebalance before the group's first commit, a worker
      that kept the partition is handed first what it had fetched before (a later offset), the events its
      revoked buffer held were never stored, and the commit passed them (seen in the fault run: the first
      seconds of four readings partitions, a citizen report and a dossier version lost). Here such a
      partition is anchored where the group starts reading it (`auto_offset_reset`: the log's start, or its
      end when the seek is made): pipelines expect that offset first and the commit starts there.

    Faust can also drop messages fetched while their partition is paused for recovery, the client having
    moved past them; pipelines see the hole in the offsets (`Pipeline.admit`) and seek back to it, and
    learn each seek to the committed offsets (or the anchors above) from `seek_listeners`.
    """

    gated_topics: frozenset[str] = frozenset()
    seek_listeners: list[Callable[[dict[tuple[str, int], int | None]], None]]
    """Told the committed offsets of the gated topics' partitions each time the consumer seeks to them."""
    refused_acks = 0
    _acknowledging = False
    fetch_min_bytes = 1
    fetch_max_wait_ms = 1500
    """What a fetch asks the broker for: at least `fetch_min_bytes`, or whatever came within `fetch_max_wait_ms`
    (Faust passes 1 byte and 1.5 s to its Kafka client and has no setting for either; see `StreamsSettings`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seek_listeners = []

    def _new_consumer(self) -> Any:
        consumer: Any = super()._new_consumer()  # its bookkeeping (_acked, ...) is not in Faust's types
        thread = consumer._thread
        create_client = thread._create_worker_consumer

        def fetching(transport: Any) -> Any:
            client = create_client(transport)
            client._fetch_min_bytes, client._fetch_max_wait_ms = self.fetch_min_bytes, self.fetch_max_wait_ms
            return client

        thread._create_worker_consumer = fetching
        faust_ack = consumer.ack
        faust_new_offset = consumer._new_offset
        faust_perform_seek = consumer.perform_seek
        consumer._read_offset = _ReadOffsets(self)
        starts: dict[Any, int] = {}
        """Gated partitions of this assignment with no committed offset: where the group starts reading them."""

        async def perform_seek() -> None:
            await faust_perform_seek()
            gated = [tp for tp in consumer.assignment() if tp.topic in self.gated_topics]
            uncommitted = [tp for tp in gated if consumer._committed_offset.get(tp) is None]
            starts.clear()
            if uncommitted:
                starts.update(await self._group_starts(consumer, uncommitted))
            committed = {(tp.topic, tp.partition): starts.get(tp, consumer._committed_offset.get(tp)) for tp in gated}
            for listener in self.seek_listeners:
                listener(committed)

        def ack(message: Any) -> bool:
            if self._acknowledging or message.topic not in self.gated_topics:
                return bool(faust_ack(message))
            self.refused_acks += 1
            log.info("refused Faust's acknowledgement of %s[%d]@%d", message.topic, message.partition, message.offset)
            return False

        def new_offset(tp: Any) -> int | None:
            if tp.topic not in self.gated_topics:
                offset: int | None = faust_new_offset(tp)
                return offset
            acked, index = consumer._acked[tp], consumer._acked_index[tp]
            committed = consumer._committed_offset[tp]
            return _contiguous_from_committed(acked, index, committed if committed is not None else starts.get(tp))

        consumer.ack = ack  # the instance's, not the class's
        consumer._new_offset = new_offset
        consumer.perform_seek = perform_seek
        return consumer

    async def _group_starts(self, consumer: Any, partitions: list[Any]) -> dict[Any, int]:
        """Where the group starts reading partitions it never committed: the log's start, or (latest) its end."""
        if self.conf.consumer_auto_offset_reset == "latest":
            found = await consumer.highwaters(*partitions)
        else:
            found = await consumer.earliest_offsets(*partitions)
        starts = {TP(tp.topic, tp.partition): int(offset) for tp, offset in found.items()}
        for tp in partitions:
            log.info(
                "%s[%d] has no committed offset: the group starts it at %s", tp.topic, tp.partition, starts.get(tp)
            )
        return starts

    def acknowledge(self, events: list[Any]) -> None:
        """Acknowledge events a pipeline has stored (their offsets may now be committed)."""
        self._acknowledging = True
        try:
            for event in events:
                event.ack()
        finally:
            self._acknowledging = False


class _ReadOffsets(collections.defaultdict[Any, int | None]):
    """Faust's read offsets per partition, never read back for a gated topic (every message is handed out)."""

    def __init__(self, app: GatedApp) -> None:
        super().__init__(lambda: None)
        self._app = app

    def __getitem__(self, tp: Any) -> int | None:
        if tp.topic in self._app.gated_topics:
            return None
        return super().__getitem__(tp)


def _contiguous_from_committed(acked: list[int], index: set[int], committed: int | None) -> int | None:
    """The offset to commit: after the run of acknowledged offsets that starts at the committed one, if any.

    `acked` and `index` are Faust's acknowledged offsets of one partition (list and set); the run is taken
    out of both, as Faust does. Offsets below the committed one (acknowledged again after a re-read) go too.
    `committed` is the group's start for a partition it never committed; unknown (None), nothing is committed.
    """
    if not acked or committed is None:
        return None
    acked.sort()
    below = bisect.bisect_left(acked, committed)
    if below:
        index.difference_update(acked[:below])
        del acked[:below]
    if not acked or acked[0] != committed:
        return None  # the event at the committed offset is not stored yet
    run = next(consecutive_numbers(acked))
    del acked[: len(run)]
    index.difference_update(run)
    return run[-1] + 1


@dataclasses.dataclass
class Runtime:
    """One worker's Faust app, topics, sink, reference model, units tree and calendar; agents register on it.

    `build(settings)` creates the Faust app configured for at-least-once work with manual acknowledgement (see
    streams/pipeline.py), declares every topic it reads or writes from `ioc.topics`, and loads the reference model, the
    units tree and the working-day calendar once. Agents (streams/agents/) register themselves on it.
    """

    settings: StreamsSettings
    app: GatedApp
    sink: RowSink
    model: ReferenceModel
    tree: UnitTree
    calendar: WorkingCalendar
    clock: Callable[[], float]
    database: str
    topic_objects: dict[str, Any] = dataclasses.field(default_factory=dict)
    grouped: GroupedSink | None = None
    pipelines: list[Pipeline] = dataclasses.field(default_factory=list)

    @classmethod
    def build(
        cls,
        settings: StreamsSettings,
        *,
        clock: Callable[[], float] = time.time,
        warehouse: clickhouse.Warehouse | None = None,
    ) -> Runtime:
        brokers = ";".join(f"kafka://{b.strip()}" for b in settings.kafka.bootstrap.split(","))
        app = GatedApp(
            settings.app_id,
            broker=brokers,
            broker_credentials=broker_credentials(settings.kafka),
            store="memory://",
            key_serializer="raw",
            value_serializer="raw",
            web_enabled=settings.web_port > 0,
            web_port=max(settings.web_port, 1),
            producer_acks=-1,
            # A flush hands the producer hundreds of state records at once. The Kafka client keeps one open
            # batch per partition and one request in flight per broker; a send that finds its partition's
            # batch full waits until that batch is on its way. With 16 KiB batches (the default) that was
            # every 20 states, and Faust paused the streams meanwhile (its producer buffer over 100).
            producer_max_batch_size=PRODUCER_BATCH_BYTES,
            table_standby_replicas=0,
            broker_session_timeout=settings.session_timeout_s,
            broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 4),
            # Faust's own topics (the assignor's leader topic) as the registry's: the cluster's replication; their
            # min.insync.replicas is the brokers' default (2 on a three-broker cluster, as in the chart).
            topic_replication_factor=settings.kafka.replication_factor,
            consumer_auto_offset_reset=settings.auto_offset_reset,
            # Agents acknowledge events only once their rows are stored (streams/pipeline.py). Waiting for
            # every event to be acknowledged before a rebalance would deadlock an agent whose buffer flushes
            # on the next event; unacknowledged events are simply delivered again after the rebalance.
            stream_wait_empty=False,
            datadir=str(settings.data_dir),
            Worker=QuietWorker,
        )
        app.fetch_min_bytes, app.fetch_max_wait_ms = settings.fetch_min_bytes, settings.fetch_max_wait_ms
        model = (
            load_reference_model(settings.reference_model) if settings.reference_model else default_reference_model()
        )
        sink = RowSink(warehouse or clickhouse.connect(settings.clickhouse), settings.database)
        runtime = cls(settings, app, sink, model, load_tree("2024"), default_calendar(), clock, settings.database)
        for topic in (
            topics.READINGS,
            topics.CAMERA_EVENTS,
            topics.AGGREGATES,
            topics.INCIDENT_SIGNALS,
            topics.INCIDENT_COMMANDS,
            topics.INCIDENTS,
            topics.CITIZEN_REPORTS,
            topics.SERVICE_RECORDS,
            topics.DEADLETTER,
        ):
            runtime.topic_objects[topic.name] = app.topic(
                topic.name, key_type=bytes, value_type=bytes, partitions=topic.partitions, internal=False
            )

        async def _revoked(_sender: Any, revoked: set[Any], **_kw: Any) -> None:
            for pipeline in runtime.pipelines:
                pipeline.revoked(revoked)

        app.on_partitions_revoked.connect(_revoked)  # type: ignore[arg-type]

        return runtime

    @property
    def context(self) -> Context:
        return Context(self.model, self.calendar, self.tree, self.settings.edition)

    def topic(self, name: str) -> Any:
        return self.topic_objects[name]

    def pipeline(self, name: str, *topics: str, flush_when_idle: bool = False) -> Pipeline:
        if self.grouped is None:
            self.grouped = GroupedSink(self.sink)
        pipeline = Pipeline(
            name,
            self.grouped,
            self._send,
            self._flush_producer,
            batch_rows=self.settings.sink_batch_rows,
            flush_s=self.settings.sink_flush_s,
            topics=frozenset(topics),
            acknowledge=self.app.acknowledge,
            rewind=self._rewind,
            flush_when_idle=flush_when_idle,
        )
        self.app.gated_topics |= pipeline.topics
        self.app.seek_listeners.append(pipeline.sought)
        self.pipelines.append(pipeline)
        return pipeline

    async def _rewind(self, tp: Any, offset: int) -> None:
        await self.app.consumer.seek_wait({tp: offset})

    async def _send(self, message: Outgoing) -> None:
        await self.topic(message.topic).send(key=message.key, value=message.value, partition=message.partition)

    async def _flush_producer(self) -> None:
        """Until what this worker handed to the producer (messages, table changelogs) is in Kafka.

        Faust's `Producer.flush` waits on its buffer one message at a time, each wait a task and a timer
        with a 0.1 s timeout, and returns at the first timeout with messages still waiting. Here each
        wait is for the buffer's next send, without a timeout, until the buffer is empty; then the Kafka
        client's own flush waits for the brokers.
        """
        producer = self.app.producer
        buffer: Any = producer.buffer  # Faust's ProducerBuffer (its type in faust.types lacks `message_sent`)
        while buffer.size:
            buffer.message_sent.clear()
            await buffer.message_sent.wait()
        await producer.flush()

    def table(self, name: str, partitions: int) -> Any:
        """A Faust table of bytes → bytes (values are msgspec-encoded state), co-partitioned with its source."""
        return self.app.Table(name, partitions=partitions, key_type=bytes, value_type=bytes)

    def now(self) -> float:
        return self.clock()

    def path(self, unit: str) -> str:
        return self.tree.path(unit) if unit in self.tree else unit

    def responsible_path(self, unit: str) -> str:
        """The path of a unit answering for an incident: a unit of the deployment's edition (ioc.editions)."""
        return editions.path(unit, self.settings.edition)


PRODUCER_BATCH_BYTES: Final = 512 * 1024
"""Largest batch of records the producer sends to one partition in one request (Kafka takes up to 1 MB)."""
