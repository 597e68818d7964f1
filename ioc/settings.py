"""One typed settings object per process, built once at its entry point from the environment.

Nothing else in the platform reads `os.environ`: entry points build their settings here and pass them
down. Variables are prefixed per component (`IOC_BRIDGE_`, `IOC_STREAMS_`, ...) and nested endpoints use
`__` (`IOC_BRIDGE_KAFKA__BOOTSTRAP=127.0.0.1:9092`). `ioc stack status --json` prints the same endpoint
shapes, so a client of the local stack can be configured from it (`Endpoints.from_stack_status`).
"""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import pydantic_settings

from ioc import snapshots

__all__ = [
    "ApiClientConfig",
    "BridgeSettings",
    "CitizenApiSettings",
    "ClickHouseEndpoint",
    "DashboardSettings",
    "Endpoints",
    "KafkaEndpoint",
    "KubeEndpoint",
    "LocalStackSettings",
    "MqttEndpoint",
    "MqttPersistence",
    "NotifySettings",
    "OperatorSettings",
    "PortalGatewaySettings",
    "ReportingSettings",
    "SimulatorSettings",
    "SiteReaderLimits",
    "StreamsSettings",
]


class _Endpoint(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")


class MqttEndpoint(_Endpoint):
    """An MQTT broker and the credentials to use on it."""

    host: str = "127.0.0.1"
    port: Annotated[int, pydantic.Field(gt=0, lt=65536)] = 1883
    username: str | None = None
    password: pydantic.SecretStr | None = None
    tls_ca_file: Path | None = pydantic.Field(None, description="CA bundle; TLS is on when set.")
    keepalive_s: Annotated[int, pydantic.Field(ge=5)] = 30


class KafkaEndpoint(_Endpoint):
    """A Kafka cluster and who this process is on it: bootstrap servers, protocol, SASL principal, CA.

    One shape for every client of the platform: `client_config()` configures confluent-kafka (librdkafka),
    `ssl_context()` and `sasl_username`/`sasl_password` configure aiokafka (Faust's driver). Each component
    connects with its own principal (ioc-bridge, ioc-streams, ...), over TLS, and the broker's ACLs say
    what it may do (docs/security.md); PLAINTEXT without a principal is the development default.
    """

    bootstrap: str = pydantic.Field(
        "127.0.0.1:9092", description="Bootstrap servers, comma-separated host:port (the broker's client listener)."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = pydantic.Field(
        "PLAINTEXT",
        description="How the client talks to the brokers: SASL_SSL (SCRAM over TLS) wherever they authenticate; "
        "PLAINTEXT only for a development broker without authentication.",
    )
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = pydantic.Field(
        "SCRAM-SHA-512",
        description="SASL mechanism: SCRAM-SHA-512, what Strimzi's KafkaUser issues and the local stack uses.",
    )
    username: str | None = pydantic.Field(
        None, description="The SASL principal this process acts as (e.g. ioc-bridge); required with SASL_*."
    )
    password: pydantic.SecretStr | None = pydantic.Field(None, description="The principal's SCRAM password.")
    ca_file: Path | None = pydantic.Field(
        None,
        description="PEM CA bundle the brokers' certificates are checked against (SSL and SASL_SSL); the "
        "system's trust store when unset.",
    )
    replication_factor: Annotated[int, pydantic.Field(ge=1)] = pydantic.Field(
        1,
        description="Brokers holding a copy of each partition of the topics this process creates (registry, site "
        "and changelog topics): 1 for one local broker; 3 in a cluster (the chart's default), so a broker lost "
        "loses nothing.",
    )
    min_insync_replicas: Annotated[int, pydantic.Field(ge=1)] = pydantic.Field(
        1,
        description="min.insync.replicas of the topics it creates: copies an acks=all write needs before it is "
        "acknowledged; 2 of 3 in a cluster (the chart's default) keeps writing with one broker down.",
    )

    @pydantic.model_validator(mode="after")
    def _sasl_needs_a_principal(self) -> KafkaEndpoint:
        if self.security_protocol.startswith("SASL_") and not (self.username and self.password):
            raise ValueError(f"security_protocol {self.security_protocol} needs a username and a password")
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"min_insync_replicas {self.min_insync_replicas} exceeds replication_factor "
                f"{self.replication_factor}: no acks=all write could ever succeed"
            )
        return self

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    def client_config(self) -> dict[str, str]:
        """librdkafka (confluent-kafka) settings: bootstrap, protocol and, when set, SASL and the CA."""
        config = {"bootstrap.servers": self.bootstrap, "security.protocol": self.security_protocol.lower()}
        if self.uses_sasl:
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.username or ""
            config["sasl.password"] = self.password.get_secret_value() if self.password else ""
        if self.uses_tls and self.ca_file is not None:
            config["ssl.ca.location"] = str(self.ca_file)
        return config

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for aiokafka (Faust): the CA's, hostname checked; None without TLS."""
        if not self.uses_tls:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def environment(self, prefix: str) -> dict[str, str]:
        """This endpoint as the environment a process's settings read, e.g. prefix `IOC_STREAMS_KAFKA__`."""
        env = {f"{prefix}BOOTSTRAP": self.bootstrap, f"{prefix}SECURITY_PROTOCOL": self.security_protocol}
        if self.uses_sasl:
            env[f"{prefix}SASL_MECHANISM"] = self.sasl_mechanism
            env[f"{prefix}USERNAME"] = self.username or ""
            env[f"{prefix}PASSWORD"] = self.password.get_secret_value() if self.password else ""
        if self.ca_file is not None:
            env[f"{prefix}CA_FILE"] = str(self.ca_file)
        env[f"{prefix}REPLICATION_FACTOR"] = str(self.replication_factor)
        env[f"{prefix}MIN_INSYNC_REPLICAS"] = str(self.min_insync_replicas)
        return env

    @classmethod
    def from_service(cls, info: dict[str, Any], principal: str | None = None) -> KafkaEndpoint:
        """From the `kafka` entry of `ioc stack status --json`, as `principal` (default: the stack's admin).

        A stack without authentication (IOC_STACK_KAFKA_AUTH off) has no principals: PLAINTEXT for all. The
        topics' replication is the stack's (3/2 with `--kafka-brokers 3`, else 1/1).
        """
        replication = {
            "replication_factor": int(info.get("replication_factor", 1)),
            "min_insync_replicas": int(info.get("min_insync_replicas", 1)),
        }
        if "principals" not in info:
            return cls(bootstrap=info["bootstrap"], **replication)
        name = principal or info["admin_principal"]
        principals: dict[str, str] = info["principals"]
        if name not in principals:
            raise KeyError(f"the local Kafka has no principal {name!r}; known: {', '.join(sorted(principals))}")
        return cls(
            bootstrap=info["bootstrap"],
            security_protocol=info["security_protocol"],
            sasl_mechanism=info["sasl_mechanism"],
            username=name,
            password=pydantic.SecretStr(principals[name]),
            ca_file=Path(info["ca_file"]),
            **replication,
        )


class ClickHouseEndpoint(_Endpoint):
    """A ClickHouse server's native-protocol endpoint and credentials."""

    host: str = "127.0.0.1"
    port: Annotated[int, pydantic.Field(gt=0, lt=65536)] = 9000
    http_port: Annotated[int, pydantic.Field(gt=0, lt=65536)] = 8123
    user: str = "default"
    password: pydantic.SecretStr = pydantic.SecretStr("")
    database: str = "ioc"
    cluster: str = pydantic.Field(
        "",
        description="Name of the ClickHouse cluster (its remote_servers entry) the warehouse spans: migrations then "
        "make replicated shard-local tables and Distributed tables over them, ON CLUSTER, and inserts through them "
        'are synchronous. Empty: one server, the schema as written (docs/warehouse.md, "Cluster").',
    )

    @classmethod
    def from_service(cls, info: dict[str, Any], **overrides: Any) -> ClickHouseEndpoint:
        """From the `clickhouse` entry of `ioc stack status --json` (both ports, admin credentials, cluster name)."""
        keys = ("host", "port", "http_port", "user", "password", "cluster")
        fields: dict[str, Any] = {k: info[k] for k in keys if k in info}
        fields.update(overrides)
        return cls(**fields)


class KubeEndpoint(_Endpoint):
    """How to reach the Kubernetes API: a kubeconfig file, or in-cluster configuration when unset."""

    kubeconfig: Path | None = None
    context: str | None = None


class Endpoints(_Endpoint):
    """Every service endpoint at once, as `ioc stack status --json` reports the local stack."""

    mqtt: MqttEndpoint = MqttEndpoint()
    kafka: KafkaEndpoint = KafkaEndpoint()
    clickhouse: ClickHouseEndpoint = ClickHouseEndpoint()
    kube: KubeEndpoint = KubeEndpoint()

    @classmethod
    def from_stack_status(cls, status: dict[str, Any]) -> Endpoints:
        """Build endpoints from the JSON that `ioc stack status --json` prints (admin credentials)."""
        services = status.get("services", {})
        found: dict[str, Any] = {}
        if "mosquitto" in services:
            m = services["mosquitto"]
            # The TLS listener when the stack has one, as devices and the bridge use it; plaintext is for probes.
            tls = {"port": m["tls_port"], "tls_ca_file": m["ca_file"]} if "tls_port" in m else {"port": m["port"]}
            found["mqtt"] = MqttEndpoint(host=m["host"], username=m["admin_user"], password=m["admin_password"], **tls)
        if "kafka" in services:
            found["kafka"] = KafkaEndpoint.from_service(services["kafka"])
        if "clickhouse" in services:
            c = services["clickhouse"]
            found["clickhouse"] = ClickHouseEndpoint(
                host=c["host"],
                port=c["port"],
                http_port=c["http_port"],
                user=c["user"],
                password=c["password"],
                cluster=c.get("cluster", ""),
            )
        if "kube-apiserver" in services:
            found["kube"] = KubeEndpoint(kubeconfig=services["kube-apiserver"]["kubeconfig"])
        return cls(**found)


class NotifySettings(_Endpoint):
    """How the stream workers' notifier (streams/notify.py) sends: the SMTP relay, webhook secrets, retries."""

    smtp_host: str | None = pydantic.Field(
        None, description="SMTP relay host; unset: e-mail deliveries are recorded as failed (no relay configured)."
    )
    smtp_port: Annotated[int, pydantic.Field(gt=0, lt=65536)] = pydantic.Field(25, description="SMTP relay port.")
    smtp_starttls: bool = pydantic.Field(False, description="Upgrade the SMTP connection with STARTTLS first.")
    smtp_username: str | None = pydantic.Field(None, description="SMTP login, when the relay wants one.")
    smtp_password: pydantic.SecretStr | None = None
    mail_from: str = pydantic.Field(
        "IOC <ioc-noreply@localhost>", description="The From of every e-mail (the province's no-reply address)."
    )
    webhook_secrets: dict[str, pydantic.SecretStr] = pydantic.Field(
        default_factory=dict,
        description="HMAC-SHA256 signing secrets by name; a site's webhook names one (`secretName`). A JSON object "
        "in IOC_STREAMS_NOTIFY__WEBHOOK_SECRETS, mounted from a Secret in the chart.",
    )
    attempts: Annotated[int, pydantic.Field(ge=1, le=10)] = pydantic.Field(
        4, description="Tries per delivery before it is recorded as failed."
    )
    backoff_s: Annotated[float, pydantic.Field(gt=0, le=60)] = pydantic.Field(
        0.5, description="Seconds before the second try, doubling after each (0.5, 1, 2: 3.5 s for four tries)."
    )
    timeout_s: Annotated[float, pydantic.Field(gt=0, le=120)] = pydantic.Field(
        10.0, description="Seconds one SMTP conversation or webhook call may take."
    )


class _Settings(pydantic_settings.BaseSettings):
    model_config = pydantic_settings.SettingsConfigDict(
        frozen=True, extra="forbid", env_nested_delimiter="__", case_sensitive=False
    )
    log_level: str = pydantic.Field("INFO", description="Python logging level name.")


class BridgeSettings(_Settings):
    """The MQTT→Kafka bridge (`python -m sensors.bridge`)."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="IOC_BRIDGE_")
    mqtt: MqttEndpoint = MqttEndpoint()
    kafka: KafkaEndpoint = KafkaEndpoint()
    client_id: str = pydantic.Field("ioc-bridge", description="MQTT client id prefix; each replica adds its name.")
    edition: Literal["2024", "2025"] = pydantic.Field(
        "2024",
        description="The units tree devices publish under: 2024 (three tiers) or 2025 (two tiers, new commune "
        "codes accepted and stamped with the 2024 commune they absorbed; ioc.editions).",
    )
    replica: str | None = pydantic.Field(
        None,
        description="This replica's stable name (a StatefulSet pod name); the hostname when unset. Its MQTT "
        "session, and the messages not yet in Kafka, survive a restart only under the same name.",
    )
    share_group: str = pydantic.Field("ioc-bridge", description="MQTT shared-subscription group all replicas join.")
    max_inflight: Annotated[int, pydantic.Field(ge=1)] = pydantic.Field(
        1000, description="Messages taken from MQTT but not yet acknowledged by Kafka before intake pauses."
    )
    device_rate_per_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        20.0,
        description="Sustained messages per second one device may send; beyond it messages are dead-lettered.",
    )
    device_burst: Annotated[int, pydantic.Field(ge=1)] = pydantic.Field(
        200, description="Token-bucket burst per device."
    )
    linger_ms: Annotated[int, pydantic.Field(ge=0)] = pydantic.Field(
        20, description="Kafka producer linger: batches many readings per request."
    )
    max_age_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        7 * 24 * 3600.0,
        description="Seconds: oldest observed_at accepted (7 days). A gateway back online after an outage still "
        "delivers its backlog; older data is dead-lettered (observed-too-old) instead of rewriting history.",
    )
    max_ahead_s: Annotated[float, pydantic.Field(ge=0)] = pydantic.Field(
        300.0,
        description="Seconds: how far ahead of the bridge's clock observed_at may be (5 minutes of clock skew); "
        "a reading from the future would pin a gauge's current level (observed-in-future).",
    )
    vendor_rate_per_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        2000.0,
        description="Sustained events per second one vendor may send across all its devices: a vendor inventing "
        "device ids cannot escape the per-device limit.",
    )
    vendor_burst: Annotated[int, pydantic.Field(ge=1)] = pydantic.Field(
        20000, description="Token-bucket burst per vendor (events)."
    )
    rate_limit_keys: Annotated[int, pydantic.Field(ge=1)] = pydantic.Field(
        100_000,
        description="Most devices (and vendors) whose buckets are kept, least recently seen dropped first: "
        "memory stays bounded (about 200 bytes each) however many device ids a flood invents.",
    )
    batch_max_bytes: Annotated[int, pydantic.Field(ge=1024)] = pydantic.Field(
        512 * 1024,
        description="Bytes: a batch to Kafka closes before it would pass this, well under the broker's "
        "message.max.bytes (1 MiB by default), so a batch of large events is never refused as too large.",
    )
    deadletter_summary_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        10.0,
        description="Seconds: per device and reason, the first refusal in this interval is dead-lettered with its "
        "bytes and the rest only counted, then summarised in one dead letter: a flood is not stored one by one.",
    )
    deadletter_summary_keys: Annotated[int, pydantic.Field(ge=1)] = pydantic.Field(
        10_000,
        description="Most device+reason counters held between summaries; the oldest is summarised early beyond it.",
    )
    produce_attempts: Annotated[int, pydantic.Field(ge=1)] = pydantic.Field(
        5,
        description="Times a batch Kafka refused is produced again before its events are dead-lettered "
        "(undeliverable); a batch too large for the broker is split first.",
    )


class StreamsSettings(_Settings):
    """The Faust stream workers (`python -m streams worker`)."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="IOC_STREAMS_")
    kafka: KafkaEndpoint = KafkaEndpoint()
    clickhouse: ClickHouseEndpoint = ClickHouseEndpoint()
    app_id: str = pydantic.Field("ioc-streams", description="Faust app id: the consumer group every worker shares.")
    edition: Literal["2024", "2025"] = pydantic.Field(
        "2024",
        description="The units tree incidents are routed and escalated in: 2024 (commune → district → province) "
        "or 2025 (commune → city; ioc.editions).",
    )
    data_dir: Path = pydantic.Field(
        Path("/var/lib/ioc/streams"), description="Faust's local table state (RocksDB or memory)."
    )
    web_port: Annotated[int, pydantic.Field(ge=0)] = pydantic.Field(
        6066, description="Faust web server port; 0 picks a free one."
    )
    sink_batch_rows: Annotated[int, pydantic.Field(ge=1)] = pydantic.Field(
        5000, description="Rows per ClickHouse insert."
    )
    sink_flush_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        2.0,
        description="Longest wait before a partial batch is written (detections and incident changes never wait);"
        " each flush also saves every state its events changed, a Kafka record each, so longer is cheaper.",
    )
    fetch_min_bytes: Annotated[int, pydantic.Field(ge=1)] = pydantic.Field(
        65536,
        description="Bytes a fetch waits for (or fetch_max_wait_ms): under load, fewer and fuller fetches"
        " (each a request to the broker and a hand-over between the consumer's thread and the agents).",
    )
    fetch_max_wait_ms: Annotated[int, pydantic.Field(ge=0, le=1000)] = pydantic.Field(
        50, description="Longest a fetch waits for fetch_min_bytes: what a reading can wait on each hop when quiet."
    )
    reference_model: Path | None = pydantic.Field(
        None, description="A reference-model YAML; the packaged default when unset."
    )
    database: str = pydantic.Field("ioc", description="The ClickHouse database the workers write.")
    site: str | None = pydantic.Field(
        None,
        description="Config key of the isolated IOCSite this worker is dedicated to (set by the operator on the "
        "site's worker Deployment): it handles only that site's readings. Unset: the shared pool, which skips them.",
    )
    site_config_wait_s: Annotated[float, pydantic.Field(ge=0)] = pydantic.Field(
        30.0,
        description="Seconds the first readings wait for `ioc.site-config.v1` to be read to its end, so the sites'"
        " thresholds and isolation apply from the first reading; after that the workers go on with what they know.",
    )
    auto_offset_reset: Literal["earliest", "latest"] = pydantic.Field(
        "earliest", description="Where a new consumer group starts: everything kept, or only what comes next."
    )
    tick_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        0.5, description="Seconds between ticks: the resolution of silence, SLA and window timing."
    )
    retention_every_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        3600.0,
        description="Seconds between runs of the retention job on the leader (drops months of readings older than"
        " every site's `retention.readingsDays`); hourly is plenty for whole months.",
    )
    indicators_every_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        60.0, description="Seconds between recomputations of the Decision 766 indicators."
    )
    session_timeout_s: Annotated[float, pydantic.Field(ge=10, le=300)] = pydantic.Field(
        60.0,
        description="Kafka consumer-group session timeout: how long a worker that died without leaving holds "
        "its partitions before the others take them over.",
    )
    clock_speed: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        1.0,
        description="Simulated seconds per wall-clock second for the workers' own clock (ticks, SLAs): a demo "
        "replaying an hour of simulated data in a minute runs at 60, from `clock_start`.",
    )
    clock_start: dt.datetime | None = pydantic.Field(
        None, description="When the simulated clock starts (the simulator's start); real time when unset."
    )
    clock_anchor: float | None = pydantic.Field(
        None,
        description="Unix time at which the simulated clock reads `clock_start` (default: when the worker "
        "starts); `ioc up` gives the workers and the simulator the same anchor so their clocks agree.",
    )
    notify: NotifySettings = pydantic.Field(
        default_factory=NotifySettings, description="The notifier's SMTP relay, webhook secrets and retries."
    )
    clock_fast_s: Annotated[float, pydantic.Field(ge=0)] | None = pydantic.Field(
        None,
        description="Simulated seconds the clock runs at `clock_speed` before slowing to real time (ioc.clock): a "
        "demo's scripted stories, then the living province; unset: `clock_speed` for ever.",
    )


class SiteReaderLimits(_Endpoint):
    """What a site's read-only ClickHouse login may use (operators.sitedb; docs/warehouse.md, "Site databases")."""

    max_memory_usage: Annotated[int, pydantic.Field(gt=0)] = pydantic.Field(
        2_000_000_000,
        description="Bytes one query may use: a province dashboard's heaviest read (a day of readings per unit) "
        "needs a few hundred MB; half the local server's 4 GB, so one site cannot starve the writers.",
    )
    max_execution_time_s: Annotated[int, pydantic.Field(gt=0)] = pydantic.Field(
        30, description="Seconds one query may run: a dashboard page gives up long before; a runaway scan stops here."
    )
    max_result_rows: Annotated[int, pydantic.Field(gt=0)] = pydantic.Field(
        1_000_000,
        description="Rows one result may hold (overflow throws, never truncates silently): every named query of "
        "the dashboards has a LIMIT far below; a bulk export is what this refuses.",
    )
    max_result_bytes: Annotated[int, pydantic.Field(gt=0)] = pydantic.Field(
        200_000_000, description="Bytes one result may hold (uncompressed, in memory), for the same reason."
    )
    quota_interval_s: Annotated[int, pydantic.Field(gt=0)] = pydantic.Field(
        3600, description="Seconds of the quota's interval (ClickHouse aligns it to the clock)."
    )
    quota_queries: Annotated[int, pydantic.Field(gt=0)] = pydantic.Field(
        36_000,
        description="Queries per interval: 10 a second on average; a site's dashboards cache every read 15 s or "
        "more, so a busy province uses a fraction. Beyond it the server refuses with a quota error.",
    )
    networks: tuple[str, ...] = pydantic.Field(
        ("::/0",),
        description="Addresses (IP or CIDR) the login is accepted from: users.d <networks> on 18.16, HOST IP on "
        "SQL users; set the dashboards' pod CIDR in a cluster (the chart's NetworkPolicy narrows it further).",
    )


class OperatorSettings(_Settings):
    """The Kopf operator (`python -m operators`)."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="IOC_OPERATOR_")
    kube: KubeEndpoint = KubeEndpoint()
    kafka: KafkaEndpoint = KafkaEndpoint()
    clickhouse: ClickHouseEndpoint = ClickHouseEndpoint()
    mqtt: MqttEndpoint = MqttEndpoint()
    namespace: str | None = pydantic.Field(None, description="Watch one namespace; all namespaces when unset.")
    edition: Literal["2024", "2025"] = pydantic.Field(
        "2024",
        description="The deployment's units tree (the bridge's and workers' edition): on 2025, vendors' MQTT grants "
        "also list their communes' 2025 codes; on 2024 never (the reform reused codes of other communes).",
    )
    image: str = pydantic.Field(
        "ghcr.io/ioc-platform/ioc:0.1.0", description="Image for the dashboards and workers it creates."
    )
    status_refresh_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        60.0, description="How often site status figures are refreshed from ClickHouse."
    )
    repair_interval_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        60.0,
        description="Seconds between drift checks of each site (deleted children, dropped views) and vendor; "
        "each check re-applies a site's objects, so a province of 101 sites costs about 17 writes/s at 60 s.",
    )
    namespaces: tuple[str, ...] = pydantic.Field(
        (),
        description="Watch these namespaces (a JSON list), with `namespace`; every namespace when both are unset. "
        "The chart then gives the operator a Role in each of them and no namespaced rights elsewhere.",
    )
    bridge_username: str | None = pydantic.Field(
        None,
        description="The bridge's MQTT login to keep on the broker (role ioc-bridge: the device topics' share group "
        "only, no publish), created at startup so the bridge never uses the admin; none when unset.",
    )
    bridge_password: pydantic.SecretStr | None = pydantic.Field(
        None, description="Its password (from the bridge's own Secret)."
    )
    secret_key: pydantic.SecretStr | None = pydantic.Field(
        None,
        description="Key the issued passwords are derived from (HMAC per object); set it from a Secret so they "
        "survive restarts. A random key per process when unset: credentials then rotate on every restart.",
    )
    vendor_token_key: pydantic.SecretStr | None = pydantic.Field(
        None,
        description="Key of the vendors' read tokens (ioc.vendortoken), the citizen API's setting of the same name: "
        "each vendor's Secret then holds `api-token`, which reads its own rejections; unset: no token is issued.",
    )
    clickhouse_users_d: Path | None = pydantic.Field(
        None,
        description="ClickHouse users.d directory to write site users into, for servers without SQL users "
        "(18.16, the local stack); modern servers get CREATE USER instead.",
    )
    site_reader: SiteReaderLimits = pydantic.Field(
        SiteReaderLimits(),
        description="Limits and quota of every site's read-only ClickHouse login "
        "(e.g. IOC_OPERATOR_SITE_READER__QUOTA_QUERIES=36000).",
    )
    workers: Annotated[int, pydantic.Field(ge=1, le=128)] = pydantic.Field(
        16, description="Threads for blocking calls (Kubernetes, ClickHouse, Kafka, MQTT): sites handled at once."
    )
    worker_env_secret: str = pydantic.Field(
        "ioc-streams",
        description="Secret in a site's namespace whose keys a dedicated (isolated) worker gets as environment; "
        "optional, e.g. the ClickHouse writer's credentials.",
    )
    dashboard_kafka_ca_secret: str | None = pydantic.Field(
        None,
        description="Secret (key ca.crt) holding the brokers' CA, in each watched namespace, that site dashboards "
        "mount when Kafka speaks TLS (the chart passes its Kafka CA Secret); the system trust store when unset.",
    )
    liveness_endpoint: str | None = pydantic.Field(
        None, description="Kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz; off when unset."
    )
    crd_wait_s: Annotated[float, pydantic.Field(ge=0)] = pydantic.Field(
        120.0, description="How long to wait at startup for the ioc.platform CRDs to be served before giving up."
    )


class DashboardSettings(_Settings):
    """One Streamlit dashboard instance, scoped to one site's unit."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="IOC_DASHBOARD_")
    clickhouse: ClickHouseEndpoint = ClickHouseEndpoint()
    kafka: KafkaEndpoint = KafkaEndpoint()
    site_unit: str = pydantic.Field("74", description="The unit this dashboard serves; it shows this subtree only.")
    edition: str = pydantic.Field("2024", description="Which units tree the site uses: 2024 (three tiers) or 2025.")
    public_enabled: bool = pydantic.Field(False, description="Whether the citizen page is served.")
    reports_inbox_url: str | None = pydantic.Field(
        None,
        description="The site's portal connector's received-reports endpoint (its read API), e.g. "
        "http://ioc-portal-74:8080/reports/v1/upward: the Public services page lists the upward reports the "
        "children sent; off when unset.",
    )
    reports_inbox_token: pydantic.SecretStr | None = pydantic.Field(
        None, description="The connector's read token (IOC_PORTAL_READ_TOKEN) for reports_inbox_url."
    )
    language: str = pydantic.Field("vi", description="Default language: vi or en.")
    query_ttl_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        15.0, description="Cache lifetime of live queries."
    )
    slow_query_ttl_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        300.0, description="Cache lifetime (s) of slow-moving queries: Decision 766 scores, periods, rankings."
    )
    refresh_s: Annotated[float, pydantic.Field(ge=0)] = pydantic.Field(
        15.0, description="Seconds between automatic refreshes of live page sections (fragments); 0 turns it off."
    )
    chdb_path: Path | None = pydantic.Field(
        None, description="Read a chDB data directory in-process instead of the server (tests, quick looks)."
    )
    modules: tuple[str, ...] | None = pydantic.Field(
        None, description="Domain modules whose pages are served; unset: the site tier's modules (reference model)."
    )
    address: str = pydantic.Field("127.0.0.1", description="Address Streamlit listens on (0.0.0.0 in a pod).")
    port: Annotated[int, pydantic.Field(gt=0, lt=65536)] = pydantic.Field(
        8501, description="HTTP port Streamlit listens on."
    )
    oidc_metadata_url: str | None = pydantic.Field(
        None,
        description="The identity provider's /.well-known/openid-configuration URL; unset: no sign-in (local use).",
    )
    oidc_client_id: str = pydantic.Field("ioc-dashboard", description="OIDC client id registered for dashboards.")
    oidc_client_secret: pydantic.SecretStr = pydantic.Field(
        pydantic.SecretStr(""), description="OIDC client secret (confidential client)."
    )
    oidc_redirect_uri: str | None = pydantic.Field(
        None, description="OIDC redirect URI ending in /oauth2callback; default http://localhost:<port>/oauth2callback."
    )
    oidc_scope: str = pydantic.Field(
        "openid email profile", description="Scopes asked for; the grants claim must be released for them."
    )
    grants_claim: str = pydantic.Field(
        "ioc_grants", description="ID-token claim listing a person's grants as 'role@unit' (viewer or operator)."
    )
    roster_claim: str = pydantic.Field(
        "ioc_roster",
        description="ID-token claim listing a person's roster roles as 'role@unit' (on-duty, officer, lead): they are "
        "offered for assignment with the site's roster (ioc.people.roster_from_claims).",
    )
    site_config: Path | None = pydantic.Field(
        None,
        description="The site's effective configuration file (the operator's ConfigMap, /etc/ioc/site/site.json): its "
        "roster is offered for assigning incidents. Unset: the signed-in person only.",
    )
    evidence_dir: Path | None = pydantic.Field(
        None,
        description="The site's evidence store (dashboards.evidence): photos and PDFs attached to resolutions, served "
        "to the site's operators only. Unset: attaching files is not offered.",
    )
    cookie_secret: pydantic.SecretStr | None = pydantic.Field(
        None, description="Signs the sign-in cookie; set the same value on every replica (random when unset)."
    )
    session_max_age_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        8 * 3600.0, description="A sign-in lasts at most this long (one shift), even if the ID token lives longer."
    )
    local_role: Literal["viewer", "operator"] | None = pydantic.Field(
        None,
        description="Without OIDC: the role (viewer or operator) of the local, unauthenticated user; unset: none.",
    )
    anonymous_viewer: bool = pydantic.Field(
        False,
        description="Without OIDC: serve every visitor as an anonymous, read-only viewer, also on a non-loopback "
        "address (the operator sets it for a site that declares no sign-in). Never an operator: refused with "
        "local_role operator. Ignored when OIDC is configured (sign-in then decides).",
    )
    audit_log: Path | None = pydantic.Field(
        None, description="Append-only JSON-lines audit file; the `ioc.audit` logger always gets the records too."
    )
    map_tiles: str = pydantic.Field(
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        description="Basemap raster tiles, a {z}/{x}/{y} URL template the visitor's browser fetches (OpenStreetMap's "
        "public tiles by default: light use only, per its tile usage policy); empty: no basemap, the layers alone on "
        "a plain background (sites without internet, or point it at the province's own tile server). docs/maps.md.",
    )
    map_attribution: str = pydantic.Field(
        "© OpenStreetMap contributors",
        description="The tiles' credit, shown under every map (the tile provider's licence requires it).",
    )
    boundaries_dir: Path = pydantic.Field(
        Path.home() / ".config" / "ioc" / "boundaries",
        description="Where `ioc units import-boundaries` writes <edition>.geojson (unit polygons with their licence) "
        "and the maps read it; no file: maps without boundaries. In a pod, mount it from a ConfigMap.",
    )
    snapshots_dir: Path = pydantic.Field(
        snapshots.DEFAULT_DIR,
        description="The snapshot store (ioc.snapshots) camera images are read from, for operators only: the "
        "simulator's and the gateways' (a volume shared with them in a cluster).",
    )
    clock_speed: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        1.0,
        description="A demo's simulated clock (ioc.clock), as the stream workers get it: simulated seconds per wall "
        "second, so every page's \"now\" is the data's; 1 (default): real time.",
    )
    clock_start: dt.datetime | None = pydantic.Field(
        None, description="When the simulated clock starts (the simulator's start); real time when unset."
    )
    clock_anchor: float | None = pydantic.Field(
        None, description="Unix time at which the simulated clock reads `clock_start` (the workers' anchor)."
    )
    clock_fast_s: Annotated[float, pydantic.Field(ge=0)] | None = pydantic.Field(
        None, description="Simulated seconds at `clock_speed` before real time (the demo's scripted part)."
    )

    @pydantic.model_validator(mode="after")
    def _anonymous_visitors_only_view(self) -> DashboardSettings:
        if self.anonymous_viewer and self.local_role == "operator":
            raise ValueError(
                "IOC_DASHBOARD_ANONYMOUS_VIEWER serves anonymous visitors as viewers only: it cannot be combined "
                "with IOC_DASHBOARD_LOCAL_ROLE=operator (--role operator); configure sign-in "
                "(IOC_DASHBOARD_OIDC_METADATA_URL) for operators"
            )
        return self


MqttPersistence = Literal["interval", "every-change", "every-minute"]
"""When the local Mosquitto saves its state (`LocalStackSettings.stack_mqtt_persistence`)."""


class LocalStackSettings(_Settings):
    """The local stack and its installer (`ioc stack`, `ioc deps`, the test fixtures)."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="IOC_")
    cache_dir: Path = pydantic.Field(
        Path.home() / ".cache" / "ioc",
        description="Downloads, Go builds, Kafka jars and default stack data; keyed by version inside.",
    )
    stack_kafka_auth: bool = pydantic.Field(
        True,
        description="IOC_STACK_KAFKA_AUTH: the local Kafka takes SCRAM-SHA-512 over TLS only, with a principal and "
        "ACLs per component (as the chart's Strimzi cluster); off (IOC_STACK_KAFKA_AUTH=0), a PLAINTEXT listener "
        "anyone may use, for development only.",
    )
    stack_mqtt_persistence: MqttPersistence = pydantic.Field(
        "interval",
        description="IOC_STACK_MQTT_PERSISTENCE: when the local Mosquitto saves (fsynced) its sessions and queued "
        "messages. interval: every 2 s, whatever happened (a SIGKILL loses at most the last 2 s of messages queued "
        "for an offline session; the bridge's README throughput holds); every-change: at the end of every loop turn "
        "with a change, its subscriber's acknowledgements included (nothing saved is older than one turn, at about "
        "one fsync per message: a few hundred messages/s); every-minute: the former 60 s, for measuring only. "
        "docs/durability.md has the figures.",
    )


class SimulatorSettings(_Settings):
    """The fleet simulators (`ioc simulate`)."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="IOC_SIMULATOR_")
    mqtt: MqttEndpoint = MqttEndpoint()
    seed: int = pydantic.Field(766, description="Random seed: the same seed gives the same fleet and readings.")
    rate_per_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(50.0, description="Total messages per second.")
    snapshots_dir: Path = pydantic.Field(
        snapshots.DEFAULT_DIR,
        description="The snapshot store (ioc.snapshots) each simulated camera event's generated image goes into; "
        "the event carries its key, and the dashboards read it from the same place.",
    )


class ApiClientConfig(_Endpoint):
    """One client of the citizen API (an app, a partner's system): its key and its rate limit."""

    key: pydantic.SecretStr = pydantic.Field(description="The client's API key (Open311 `api_key`, or X-API-Key).")
    rate_per_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        5.0, description="Sustained report submissions per second the client may make; beyond it: 429."
    )
    burst: Annotated[int, pydantic.Field(ge=1)] = pydantic.Field(50, description="Token-bucket burst of submissions.")


class CitizenApiSettings(_Settings):
    """The citizen API (`python -m dashboards.api`): Open311 reports and open data for one site."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="IOC_API_")
    clickhouse: ClickHouseEndpoint = ClickHouseEndpoint()
    kafka: KafkaEndpoint = KafkaEndpoint()
    site_unit: str = pydantic.Field("74", description="The unit this API serves; it shows and accepts this subtree.")
    edition: str = pydantic.Field("2024", description="Which units tree the site uses: 2024 (three tiers) or 2025.")
    public_enabled: bool = pydantic.Field(
        False, description="Whether the open-data endpoints are served (the site's public tier); Open311 always is."
    )
    host: str = pydantic.Field("127.0.0.1", description="Address the HTTP server listens on (0.0.0.0 in a pod).")
    port: Annotated[int, pydantic.Field(gt=0, lt=65536)] = pydantic.Field(8080, description="HTTP port.")
    clients: dict[str, ApiClientConfig] = pydantic.Field(
        default_factory=dict,
        description='Client name → key and rate limit, as JSON: {"app": {"key": "...", "rate_per_s": 5}}. '
        "Submitting a report needs a key; reading does not.",
    )
    cache_ttl_s: Annotated[float, pydantic.Field(ge=0)] = pydantic.Field(
        15.0, description="Seconds a live open-data answer (AQI, floods, report status) is cached and may be stale."
    )
    slow_cache_ttl_s: Annotated[float, pydantic.Field(ge=0)] = pydantic.Field(
        300.0, description="Seconds slow-moving answers (cameras, public-service scores, services) are cached."
    )
    max_body_bytes: Annotated[int, pydantic.Field(ge=1024)] = pydantic.Field(
        64 * 1024, description="Largest request body (bytes): a report is text, a location and media URLs, not media."
    )
    page_size: Annotated[int, pydantic.Field(ge=1)] = pydantic.Field(50, description="Default items per page.")
    max_page_size: Annotated[int, pydantic.Field(ge=1)] = pydantic.Field(500, description="Most items per page.")
    idempotency_db: Path | None = pydantic.Field(
        None,
        description="SQLite file remembering Idempotency-Keys and just-submitted reports across restarts; "
        "in memory when unset.",
    )
    idempotency_ttl_h: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        24.0, description="Hours an Idempotency-Key is remembered: a retry within it returns the first answer."
    )
    aqi_hours: Annotated[int, pydantic.Field(ge=1, le=72)] = pydantic.Field(
        3, description="Hours back an air station's latest AQI still counts as current."
    )
    kafka_timeout_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        10.0, description="Longest wait (s) for Kafka to take a report before answering 503 (the client retries)."
    )
    address_rate_per_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        20.0, description="Sustained requests per second from one client address (reads and writes); beyond: 429."
    )
    address_burst: Annotated[int, pydantic.Field(ge=1)] = pydantic.Field(
        200, description="Requests one address may make at once before its sustained rate applies (a page's burst)."
    )
    address_table_size: Annotated[int, pydantic.Field(ge=16)] = pydantic.Field(
        65_536,
        description="Most client addresses metered at once (~300 bytes each: ~19 MB at 65,536); the least recent go.",
    )
    duplicate_window_s: Annotated[float, pydantic.Field(ge=0)] = pydantic.Field(
        3600.0,
        description="Seconds within which the same text, place and reporter is a duplicate: the answer is the "
        "first report's id (a double tap or a resend); 0 turns it off.",
    )
    citizen_page_client: str | None = pydantic.Field(
        None,
        description="The client (a name in `clients`) whose key the citizen page (/citizen/) sends its reports with; "
        "unset: no page. The key is in a public page, so that client's rate limit is what guards it.",
    )
    photo_dir: Path | None = pydantic.Field(
        None, description="Where the citizen page's photos are kept (re-encoded, no EXIF); unset: no photo upload."
    )
    photo_max_bytes: Annotated[int, pydantic.Field(ge=1024)] = pydantic.Field(
        8 * 1024 * 1024, description="Largest photo the citizen page takes (bytes, before re-encoding)."
    )
    vendor_token_key: pydantic.SecretStr | None = pydantic.Field(
        None,
        description="Key of the vendors' read tokens (ioc.vendortoken; the operator's own setting of the same name "
        "issues them): a vendor reads its own rejections with its token; unset: that route answers 404.",
    )


class PortalGatewaySettings(_Settings):
    """The one-stop portal connector (`python -m sensors.gateways`): dossier events and children's reports in."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="IOC_PORTAL_")
    kafka: KafkaEndpoint = KafkaEndpoint()
    site_unit: str = pydantic.Field("74", description="Dossiers and reports are accepted for this unit's subtree.")
    host: str = pydantic.Field("127.0.0.1", description="Address the HTTP server listens on (0.0.0.0 in a pod).")
    port: Annotated[int, pydantic.Field(gt=0, lt=65536)] = pydantic.Field(8090, description="HTTP port.")
    webhook_secrets: list[pydantic.SecretStr] = pydantic.Field(
        default_factory=list,
        description="HMAC secrets the portal signs with (JSON list); several while a secret is being rotated.",
    )
    signature_tolerance_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        300.0, description="Seconds a signature's timestamp may differ from our clock (skew plus retries)."
    )
    max_body_bytes: Annotated[int, pydantic.Field(ge=1024)] = pydantic.Field(
        1024 * 1024, description="Largest request body (bytes): a batch of a few hundred dossier snapshots."
    )
    max_batch: Annotated[int, pydantic.Field(ge=1)] = pydantic.Field(
        1000, description="Most dossier snapshots in one webhook call or poll page."
    )
    state_db: Path = pydantic.Field(
        Path("/var/lib/ioc/portal/state.sqlite3"),
        description="SQLite file: highest status version sent per dossier, poll cursors, children's reports.",
    )
    poll_url: str | None = pydantic.Field(
        None, description="A portal's event feed to poll (for portals that cannot push); off when unset."
    )
    poll_token: pydantic.SecretStr | None = pydantic.Field(None, description="Bearer token for the polled feed.")
    poll_every_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        30.0, description="Seconds between polls once the feed is drained."
    )
    poll_page_size: Annotated[int, pydantic.Field(ge=1)] = pydantic.Field(200, description="Events asked per poll.")
    poll_signed: bool = pydantic.Field(
        True, description="Require the polled feed's responses to carry a valid X-IOC-Signature."
    )
    report_keys: dict[str, str] = pydantic.Field(
        default_factory=dict,
        description="Child sites' Ed25519 public keys (base64) by key id, for their upward reports (JSON).",
    )
    relay_reports: bool = pydantic.Field(
        False, description="Also put each new child report on our own outbox, so it travels on up the tree."
    )
    read_token: pydantic.SecretStr | None = pydantic.Field(
        None, description="Bearer token for reading received reports; reading is off when unset."
    )
    kafka_timeout_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        10.0, description="Longest wait (s) for Kafka to take an event before answering 503 (the sender retries)."
    )


class ReportingSettings(_Settings):
    """Upward reporting (`python -m streams.reporting`, `ioc report`): build, sign, outbox, push."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="IOC_REPORTING_")
    kafka: KafkaEndpoint = KafkaEndpoint()
    clickhouse: ClickHouseEndpoint = ClickHouseEndpoint()
    site_unit: str = pydantic.Field("74", description="The site whose reports are built (its whole subtree).")
    edition: str = pydantic.Field("2024", description="Which units tree the site uses: 2024 or 2025.")
    parent_url: str | None = pydantic.Field(
        None, description="The parent IOC's (or national) report endpoint, e.g. https://parent/reports/v1/upward."
    )
    signing_key: pydantic.SecretStr | None = pydantic.Field(
        None, description="The site's Ed25519 private key (base64, from `ioc report keygen`); needed to publish."
    )
    key_id: str | None = pydantic.Field(None, description="Key id the parent knows our public key by; the unit code.")
    period_kinds: tuple[Literal["day", "month", "quarter", "year"], ...] = pydantic.Field(
        ("month",), description="Which periods are reported (current and previous of each)."
    )
    publish_every_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        3600.0, description="Seconds between rebuilds; a report is published only when its figures changed."
    )
    retry_min_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        1.0, description="First wait (s) before re-pushing after a failure; doubles up to retry_max_s."
    )
    retry_max_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        60.0, description="Longest wait (s) between pushes to an endpoint that is down."
    )
    request_timeout_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        15.0, description="Timeout (s) of one push."
    )
    group_id: str = pydantic.Field(
        "ioc-reporting", description="Kafka consumer group of the pusher; offsets commit only after the parent has it."
    )
