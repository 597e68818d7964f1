"""Pure parts of iocctl.localstack.onnode: the chart's values for the local node, a dashboard's address from here."""

from __future__ import annotations

from iocctl.localstack.onnode import chart_values, host_url

IPS = {"ioc-dash-di-an-724.ioc-sites": "10.0.0.57", "headless.ioc-sites": "None"}


def test_a_dashboard_url_in_the_status_becomes_its_cluster_ip() -> None:
    assert host_url("http://ioc-dash-di-an-724.ioc-sites.svc", IPS) == "http://10.0.0.57/"
    assert host_url("http://ioc-dash-di-an-724.ioc-sites.svc.cluster.local:8080/p?x=1", IPS) == (
        "http://10.0.0.57:8080/p?x=1"
    )
    # A commune served by its district's dashboard under its own path keeps the path.
    assert host_url("http://ioc-dash-di-an-724.ioc-sites.svc/sites/25741", IPS) == "http://10.0.0.57/sites/25741"


def test_no_address_for_an_unknown_or_headless_service() -> None:
    assert host_url("http://other.ioc-sites.svc", IPS) == ""
    assert host_url("http://headless.ioc-sites.svc", IPS) == ""


def test_values_follow_the_stacks_kafka_and_its_single_broker() -> None:
    values = chart_values({"security_protocol": "SASL_SSL"}, logLevel="DEBUG")
    assert values["kafka"] == {"securityProtocol": "SASL_SSL", "replicationFactor": 1, "minInsyncReplicas": 1}
    assert values["image"]["pullPolicy"] == "Never" and values["logLevel"] == "DEBUG"
    assert chart_values({})["kafka"]["securityProtocol"] == "PLAINTEXT"


def test_extra_values_merge_in_depth() -> None:
    values = chart_values({}, operator={"enabled": False}, bridge={"extraEnv": [{"name": "A", "value": "1"}]})
    assert values["operator"] == {"enabled": False, "secretKey": {"existingSecret": "ioc-operator-key"}}
    assert values["bridge"]["extraEnv"] == [{"name": "A", "value": "1"}]
