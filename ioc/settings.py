"""One typed settings object per process, built once at its entry point from the environment.

Nothing else in the platform reads `os.environ`: entry points build their settings here and pass them
down. Variables are prefixed per component (`IOC_BRIDGE_`, `IOC_STREAMS_`, ...) and nested endpoints use
`__` (`IOC_BRIDGE_KAFKA__BOOTSTRAP=127.0.0.1:9092`). `ioc stack status --json` prints the same endpoint
shapes, so a client of the local stack can be configured from it (`Endpoints.from_stack_status`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pydantic
import pydantic_settings

__all__ = [
    "BridgeSettings",
    "ClickHouseEndpoint",
    "DashboardSettings",
    "Endpoints",
    "KafkaEndpoint",
    "KubeEndpoint",
    "LocalStackSettings",
    "MqttEndpoint",
    "OperatorSettings",
    "SimulatorSettings",
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
    """A Kafka cluster's bootstrap servers (comma-separated host:port)."""

    bootstrap: str = "127.0.0.1:9092"


class ClickHouseEndpoint(_Endpoint):
    """A ClickHouse server's native-protocol endpoint and credentials."""

    host: str = "127.0.0.1"
    port: Annotated[int, pydantic.Field(gt=0, lt=65536)] = 9000
    http_port: Annotated[int, pydantic.Field(gt=0, lt=65536)] = 8123
    user: str = "default"
    password: pydantic.SecretStr = pydantic.SecretStr("")
    database: str = "ioc"


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
            found["mqtt"] = MqttEndpoint(
                host=m["host"], port=m["port"], username=m["admin_user"], password=m["admin_password"]
            )
        if "kafka" in services:
            found["kafka"] = KafkaEndpoint(bootstrap=services["kafka"]["bootstrap"])
        if "clickhouse" in services:
            c = services["clickhouse"]
            found["clickhouse"] = ClickHouseEndpoint(
                host=c["host"],
                port=c["port"],
                http_port=c["http_port"],
                user=c["user"],
                password=c["password"],
            )
        if "kube-apiserver" in services:
            found["kube"] = KubeEndpoint(kubeconfig=services["kube-apiserver"]["kubeconfig"])
        return cls(**found)


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


class StreamsSettings(_Settings):
    """The Faust stream workers (`python -m streams worker`)."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="IOC_STREAMS_")
    kafka: KafkaEndpoint = KafkaEndpoint()
    clickhouse: ClickHouseEndpoint = ClickHouseEndpoint()
    app_id: str = pydantic.Field("ioc-streams", description="Faust app id: the consumer group every worker shares.")
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
        1.0, description="Longest wait before a partial batch is written."
    )
    reference_model: Path | None = pydantic.Field(
        None, description="A reference-model YAML; the packaged default when unset."
    )


class OperatorSettings(_Settings):
    """The Kopf operator (`python -m operators`)."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="IOC_OPERATOR_")
    kube: KubeEndpoint = KubeEndpoint()
    kafka: KafkaEndpoint = KafkaEndpoint()
    clickhouse: ClickHouseEndpoint = ClickHouseEndpoint()
    mqtt: MqttEndpoint = MqttEndpoint()
    namespace: str | None = pydantic.Field(None, description="Watch one namespace; all namespaces when unset.")
    image: str = pydantic.Field(
        "ghcr.io/ioc-platform/ioc:0.1.0", description="Image for the dashboards and workers it creates."
    )
    status_refresh_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        60.0, description="How often site status figures are refreshed from ClickHouse."
    )


class DashboardSettings(_Settings):
    """One Streamlit dashboard instance, scoped to one site's unit."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="IOC_DASHBOARD_")
    clickhouse: ClickHouseEndpoint = ClickHouseEndpoint()
    kafka: KafkaEndpoint = KafkaEndpoint()
    site_unit: str = pydantic.Field("74", description="The unit this dashboard serves; it shows this subtree only.")
    edition: str = pydantic.Field("2024", description="Which units tree the site uses: 2024 (three tiers) or 2025.")
    public_enabled: bool = pydantic.Field(False, description="Whether the citizen page is served.")
    language: str = pydantic.Field("vi", description="Default language: vi or en.")
    query_ttl_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(
        15.0, description="Cache lifetime of live queries."
    )


class LocalStackSettings(_Settings):
    """The local stack and its installer (`ioc stack`, `ioc deps`, the test fixtures)."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="IOC_")
    cache_dir: Path = pydantic.Field(
        Path.home() / ".cache" / "ioc",
        description="Downloads, Go builds, Kafka jars and default stack data; keyed by version inside.",
    )


class SimulatorSettings(_Settings):
    """The fleet simulators (`ioc simulate`)."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="IOC_SIMULATOR_")
    mqtt: MqttEndpoint = MqttEndpoint()
    seed: int = pydantic.Field(766, description="Random seed: the same seed gives the same fleet and readings.")
    rate_per_s: Annotated[float, pydantic.Field(gt=0)] = pydantic.Field(50.0, description="Total messages per second.")
