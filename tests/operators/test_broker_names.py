"""Broker accounts as pure data: namespaced usernames, reserved vendor ids, per-device and bridge ACLs, Secrets."""

from __future__ import annotations

import base64

import pytest

from ioc import topics
from ioc.clients import dynsec
from operators import crds, manifests, models
from operators.names import vendor_names


@pytest.mark.parametrize("name", [*models.RESERVED_VENDOR_IDS, "ioc-bridge", "ioc-site-74", "kube-x", "vendor-x"])
def test_reserved_vendor_ids_say_why(name: str) -> None:
    reason = models.reserved_vendor_id(name)
    assert reason is not None and reason.startswith(name) and "platform account" in reason


@pytest.mark.parametrize("name", ["acme", "lotus-vision", "admins", "iocx", "bridge2"])
def test_ordinary_vendor_ids_are_free(name: str) -> None:
    assert models.reserved_vendor_id(name) is None


def test_the_crd_refuses_every_reserved_id_and_prefix() -> None:
    rules = crds.sensorvendor_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]
    text = " ".join(r["rule"] for r in rules)
    for name in models.RESERVED_VENDOR_IDS:
        assert f'"{name}"' in text
    for prefix in models.RESERVED_VENDOR_PREFIXES:
        assert f'startsWith("{prefix}")' in text
    assert all("metadata.name" in r["messageExpression"] for r in rules if "messageExpression" in r)


def test_tenant_usernames_never_name_a_platform_account() -> None:
    assert dynsec.vendor_username("admin") == "vendor.admin" != "admin"
    assert dynsec.device_username("acme", "wl.1") == "vendor.acme.wl.1"
    assert dynsec.is_tenant(dynsec.vendor_username("ioc-bridge")) and not dynsec.is_tenant("ioc-bridge")
    with pytest.raises(topics.TopicError):
        dynsec.vendor_username("a.b")  # a dot would make vendor.a.b ambiguous with a device login
    with pytest.raises(topics.TopicError):
        dynsec.device_username("acme", "+")


def test_a_device_may_publish_only_its_own_topic() -> None:
    acls = dynsec.device_acls("acme", "wl-1", ["25957"], ["water", "air"])
    assert {a.topic for a in acls} == {"ioc/v1/25957/water/acme/wl-1", "ioc/v1/25957/air/acme/wl-1"}
    assert {a.acltype for a in acls} == {"publishClientSend"}


def test_the_bridge_publishes_nothing_and_subscribes_only_through_a_share_group() -> None:
    acls = dynsec.bridge_acls()
    assert not [a for a in acls if a.acltype.startswith("publishClientSend")]
    assert [a.topic for a in acls if a.acltype.startswith("subscribe")] == ["$share/+/ioc/v1/#"]


def test_the_vendor_secret_holds_namespaced_logins_and_the_ca() -> None:
    secret = manifests.vendor_secret(
        vendor_names("acme", "ns"),
        "uid-1",
        "mqtt.example",
        8883,
        "p",
        username="vendor.acme",
        devices={"wl-1": ("vendor.acme.wl-1", "q")},
        ca="-----BEGIN CERTIFICATE-----\n",
    )
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["username"] == "vendor.acme" and data["port"] == "8883" and data["tls"] == "true"
    assert data["device.wl-1.username"] == "vendor.acme.wl-1" and data["device.wl-1.password"] == "q"
    assert data["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")


def test_per_device_credentials_need_devices() -> None:
    with pytest.raises(models.ResourceError, match="perDeviceCredentials needs the devices"):
        models.parse(models.SensorVendorSpec, {"units": ["25957"], "kinds": ["air"], "perDeviceCredentials": True})
