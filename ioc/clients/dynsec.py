"""Managing Mosquitto's dynamic-security plugin: vendor clients, roles and ACLs, over MQTT.

Shared by the local stack (which creates the bridge's and tests' identities), the sensors' broker
security helpers and the operator (which issues each SensorVendor its credentials): all of them call
`ensure_vendor` / `remove_vendor` here rather than spelling ACLs themselves. Commands go to
`$CONTROL/dynamic-security/v1` as the broker's admin; each reply is matched by correlation data.

Tenants live in their own namespace of usernames and role names: a vendor's client is `vendor.<id>`, a
device's `vendor.<id>.<device>` (vendor ids hold no dot, so neither can be read two ways), while the
platform's accounts (`admin`, `ioc-bridge`, `ioc-site-*` roles) never start with `vendor.`. Whatever a
vendor is called, its client cannot be a platform account. Every client issued here is marked (its
`textdescription`), and an existing client without the mark is never changed or deleted.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import uuid
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ioc import topics
from ioc.clients import mqttstop
from ioc.settings import MqttEndpoint

__all__ = [
    "BRIDGE_ROLE",
    "PLATFORM_MARK",
    "TENANT_MARK",
    "TENANT_PREFIX",
    "Acl",
    "DynsecAdmin",
    "DynsecError",
    "ForeignClient",
    "bridge_acls",
    "device_acls",
    "device_username",
    "is_tenant",
    "vendor_acls",
    "vendor_role",
    "vendor_username",
]

CONTROL_TOPIC: Final = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC: Final = f"{CONTROL_TOPIC}/response"
TENANT_PREFIX: Final = "vendor."
"""Every tenant username and role starts with this; no platform account does."""
TENANT_MARK: Final = "ioc: tenant client issued by the platform"
"""The `textdescription` of every vendor or device client issued here: what may be reset or deleted."""
PLATFORM_MARK: Final = "ioc: platform account"
"""The `textdescription` of the platform's own clients (the bridge)."""
BRIDGE_ROLE: Final = "ioc-bridge"


class DynsecError(RuntimeError):
    """The broker refused a dynamic-security command, or did not answer."""


class ForeignClient(DynsecError):
    """A client exists under this username but was not issued by the platform for this purpose: left alone."""


@dataclasses.dataclass(frozen=True, slots=True)
class Acl:
    """One ACL entry: `acltype` is publishClientSend, publishClientReceive, subscribePattern, ..."""

    acltype: str
    topic: str
    allow: bool = True
    priority: int = 0


def vendor_username(vendor: str) -> str:
    """The broker username of a vendor: in the tenant namespace, so never a platform account."""
    topics.mqtt_vendor_pattern(vendor)  # validates the id: no dot, no wildcard
    return f"{TENANT_PREFIX}{vendor}"


def device_username(vendor: str, device: str) -> str:
    """The broker username of one device of a vendor that asked for per-device credentials."""
    topics.mqtt_topic("00", topics.CAMERA_KIND, vendor, device)  # validates both segments
    return f"{TENANT_PREFIX}{vendor}.{device}"


def is_tenant(username: str) -> bool:
    return username.startswith(TENANT_PREFIX)


def vendor_role(vendor: str) -> str:
    return vendor_username(vendor)


def vendor_acls(vendor: str, units: Iterable[str] = ("+",), kinds: Iterable[str] = ("+",)) -> list[Acl]:
    """A vendor may publish only under its own vendor segment, for the units and kinds it was granted."""
    return [
        Acl("publishClientSend", topics.mqtt_vendor_pattern(vendor, unit, kind))
        for unit, kind in itertools.product(list(units), list(kinds))
    ]


def device_acls(vendor: str, device: str, units: Iterable[str] = ("+",), kinds: Iterable[str] = ("+",)) -> list[Acl]:
    """A device may publish only its own topic `ioc/v1/<unit>/<kind>/<vendor>/<device>`, in the vendor's grants."""
    device_username(vendor, device)  # validates both segments: the device id holds no wildcard
    return [
        Acl("publishClientSend", f"{topics.MQTT_PREFIX}/{unit}/{kind}/{vendor}/{device}")
        for unit, kind in itertools.product(list(units), list(kinds))
    ]


def bridge_acls() -> list[Acl]:
    """The bridge reads every device topic through a shared subscription only, and publishes nothing.

    No `publishClientSend` at all (dynamic security denies publishing by default, `$CONTROL` included),
    and no plain subscription: a bridge login can join a share group of the device topics and nothing else.
    """
    pattern = f"{topics.MQTT_PREFIX}/#"
    # Mosquitto 2.0 checks a shared subscription's ACL against the whole "$share/<group>/..." filter.
    return [
        Acl("subscribePattern", f"$share/+/{pattern}"),
        Acl("publishClientReceive", pattern),
    ]


class DynsecAdmin:
    """A connection to the broker as its dynamic-security admin; use as a context manager."""

    def __init__(self, endpoint: MqttEndpoint, *, timeout: float = 10.0) -> None:
        if endpoint.username is None or endpoint.password is None:
            raise DynsecError("the dynamic-security admin needs a username and password")
        self._endpoint = endpoint
        self._timeout = timeout
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"ioc-dynsec-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        self._client.username_pw_set(endpoint.username, endpoint.password.get_secret_value())
        if endpoint.tls_ca_file is not None:
            self._client.tls_set(ca_certs=str(endpoint.tls_ca_file))
        self._client.on_message = self._on_message
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._connect_error: str | None = None
        self._pending: dict[str, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    # paho callbacks run on its network thread.
    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: Properties | None) -> None:
        if reason.is_failure:
            self._connect_error = str(reason)
        self._connected.set()

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, _mid: int, _rc: list[ReasonCode], _p: Properties | None
    ) -> None:
        self._subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            payload = json.loads(message.payload)
        except ValueError:
            return
        for response in payload.get("responses", []):
            key = response.get("correlationData")
            with self._lock:
                waiter = self._pending.get(key)
            if waiter is not None:
                waiter[1].append(response)
                waiter[0].set()

    @property
    def username(self) -> str | None:
        """The admin's own username: no tenant or platform client may take it."""
        return self._endpoint.username

    def __enter__(self) -> DynsecAdmin:
        self._client.connect(self._endpoint.host, self._endpoint.port, keepalive=self._endpoint.keepalive_s)
        self._client.loop_start()
        if not self._connected.wait(self._timeout):
            self.close()
            raise DynsecError(f"no CONNACK from {self._endpoint.host}:{self._endpoint.port} within {self._timeout} s")
        if self._connect_error is not None:
            self.close()
            raise DynsecError(f"the broker refused the admin connection: {self._connect_error}")
        self._client.subscribe(RESPONSE_TOPIC, qos=1)
        if not self._subscribed.wait(self._timeout):
            self.close()
            raise DynsecError("could not subscribe to the dynamic-security response topic")
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        mqttstop.stop(self._client)

    def execute(self, command: str, *, ignore: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
        """Run one command and return its response; an error not listed in `ignore` raises DynsecError."""
        key = uuid.uuid4().hex
        done = threading.Event()
        replies: list[dict[str, Any]] = []
        with self._lock:
            self._pending[key] = (done, replies)
        try:
            body = json.dumps({"commands": [{"command": command, "correlationData": key, **fields}]})
            self._client.publish(CONTROL_TOPIC, body, qos=1)
            if not done.wait(self._timeout):
                raise DynsecError(f"no answer to {command} within {self._timeout} s")
        finally:
            with self._lock:
                self._pending.pop(key, None)
        reply = replies[0]
        error = reply.get("error")
        if error and not any(part in error for part in ignore):
            raise DynsecError(f"{command} refused: {error}")
        return reply

    # --- roles and clients -------------------------------------------------------------------------------

    def ensure_role(self, role: str, acls: Iterable[Acl]) -> None:
        """Create `role` or replace its ACLs so they are exactly `acls`."""
        wanted = list(acls)
        self.execute("createRole", rolename=role, ignore=("already exists",))
        current = self.execute("getRole", rolename=role).get("data", {}).get("role", {}).get("acls", [])
        for acl in current:
            self.execute(
                "removeRoleACL",
                rolename=role,
                acltype=acl["acltype"],
                topic=acl["topic"],
                ignore=("not found",),
            )
        for acl in wanted:
            self.execute(
                "addRoleACL",
                rolename=role,
                acltype=acl.acltype,
                topic=acl.topic,
                allow=acl.allow,
                priority=acl.priority,
            )

    def delete_role(self, role: str) -> None:
        self.execute("deleteRole", rolename=role, ignore=("not found",))

    def get_client(self, username: str) -> dict[str, Any] | None:
        """The client's record (roles, textdescription, ...), or None when there is none."""
        reply = self.execute("getClient", username=username, ignore=("not found",))
        if reply.get("error"):
            return None
        client: dict[str, Any] = reply.get("data", {}).get("client", {})
        return client

    def ensure_client(self, username: str, password: str, roles: Iterable[str], *, mark: str | None = None) -> None:
        """Create the client, or reset its password and roles when it exists.

        With `mark`, the client is created carrying it, and an existing client is changed only when it
        carries the same mark: otherwise ForeignClient, and nothing is touched.
        """
        names = list(roles)
        role_list = [{"rolename": r} for r in names]
        extra = {} if mark is None else {"textdescription": mark}
        reply = self.execute(
            "createClient", username=username, password=password, roles=role_list, ignore=("already exists",), **extra
        )
        if not reply.get("error"):
            return
        existing = self.get_client(username) or {}
        if mark is not None and existing.get("textdescription") != mark:
            raise ForeignClient(f"client {username!r} exists and was not issued by the platform: left untouched")
        self.execute("setClientPassword", username=username, password=password)
        current = {r["rolename"] for r in existing.get("roles", [])}
        for role in current - set(names):
            self.execute("removeClientRole", username=username, rolename=role, ignore=("not found",))
        for name in names:
            if name not in current:
                self.execute("addClientRole", username=username, rolename=name)

    def delete_client(self, username: str, *, mark: str | None = None) -> None:
        """Delete the client; with `mark`, only a client carrying it (else ForeignClient)."""
        if mark is not None:
            existing = self.get_client(username)
            if existing is None:
                return
            if existing.get("textdescription") != mark:
                raise ForeignClient(f"client {username!r} was not issued by the platform: not deleted")
        self.execute("deleteClient", username=username, ignore=("not found",))

    def list_clients(self) -> list[str]:
        clients: list[str] = self.execute("listClients", verbose=False).get("data", {}).get("clients", [])
        return clients

    def ensure_vendor(
        self, vendor: str, password: str, units: Iterable[str] = ("+",), kinds: Iterable[str] = ("+",)
    ) -> str:
        """Issue `vendor` a client that may publish only its own topics; returns its username (`vendor.<id>`)."""
        username = vendor_username(vendor)
        self.ensure_role(vendor_role(vendor), vendor_acls(vendor, units, kinds))
        self.ensure_client(username, password, [vendor_role(vendor)], mark=TENANT_MARK)
        return username

    def ensure_device(
        self, vendor: str, device: str, password: str, units: Iterable[str] = ("+",), kinds: Iterable[str] = ("+",)
    ) -> str:
        """Issue one device a client that may publish only its own topic; returns its username."""
        username = device_username(vendor, device)
        self.ensure_role(username, device_acls(vendor, device, units, kinds))
        self.ensure_client(username, password, [username], mark=TENANT_MARK)
        return username

    def remove_vendor(self, vendor: str) -> None:
        self.delete_client(vendor_username(vendor), mark=TENANT_MARK)
        self.delete_role(vendor_role(vendor))

    def remove_device(self, vendor: str, device: str) -> None:
        username = device_username(vendor, device)
        self.delete_client(username, mark=TENANT_MARK)
        self.delete_role(username)
