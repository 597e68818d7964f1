"""Settings: one typed object per process, from the environment, with nested endpoints."""

from __future__ import annotations

import pydantic
import pytest

from ioc import settings


def test_bridge_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOC_BRIDGE_KAFKA__BOOTSTRAP", "127.0.0.1:19092")
    monkeypatch.setenv("IOC_BRIDGE_MQTT__PORT", "11883")
    monkeypatch.setenv("IOC_BRIDGE_MQTT__PASSWORD", "s3cret")
    built = settings.BridgeSettings()
    assert built.kafka.bootstrap == "127.0.0.1:19092"
    assert built.mqtt.port == 11883
    assert built.mqtt.password is not None and built.mqtt.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(built)


def test_invalid_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOC_STREAMS_SINK_BATCH_ROWS", "0")
    with pytest.raises(pydantic.ValidationError, match="sink_batch_rows"):
        settings.StreamsSettings()


def test_settings_are_frozen() -> None:
    built = settings.DashboardSettings()
    with pytest.raises(pydantic.ValidationError):
        built.site_unit = "724"  # type: ignore[misc]


def test_endpoints_from_stack_status() -> None:
    status = {
        "services": {
            "mosquitto": {"host": "127.0.0.1", "port": 1, "admin_user": "admin", "admin_password": "p"},
            "kafka": {"bootstrap": "127.0.0.1:2"},
            "clickhouse": {
                "host": "127.0.0.1",
                "port": 3,
                "http_port": 4,
                "user": "default",
                "password": "q",
            },
        }
    }
    endpoints = settings.Endpoints.from_stack_status(status)
    assert endpoints.kafka.bootstrap == "127.0.0.1:2"
    assert endpoints.clickhouse.port == 3
    assert endpoints.mqtt.username == "admin"
    assert endpoints.kube.kubeconfig is None
