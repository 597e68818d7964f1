"""The bridge's paho client (sensors/bridge/mqttclient.py) on a real socket pair: every packet read at once, QoS 1
publishes the lean way, acknowledgements in one write."""

from __future__ import annotations

import collections
import socket

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sensors.bridge.mqttclient import BufferedClient


def publish_packet(topic: str, payload: bytes, *, mid: int = 0, properties: bytes = b"") -> bytes:
    """An MQTT 5 PUBLISH: at QoS 0, or QoS 1 with packet id `mid`; `properties` encoded (without their length)."""
    name = topic.encode()
    packet_id = mid.to_bytes(2, "big") if mid else b""
    body = len(name).to_bytes(2, "big") + name + packet_id + bytes((len(properties),)) + properties + payload
    length, encoded = len(body), bytearray()
    while True:
        byte, length = length % 128, length // 128
        encoded.append(byte | (128 if length else 0))
        if not length:
            break
    return (b"\x32" if mid else b"\x30") + bytes(encoded) + body


@pytest.mark.parametrize(("kind", "per_read"), [(mqtt.Client, 1), (BufferedClient, 300)])
def test_one_read_takes_every_packet_the_socket_holds(kind: type[mqtt.Client], per_read: int) -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    received: list[tuple[str, bytes]] = []
    client = kind(CallbackAPIVersion.VERSION2, client_id="t", protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, m: received.append((m.topic, m.payload))
    client._sock = ours
    packets = [publish_packet(f"ioc/v1/acme/d{n}/air", b'{"seq": %d}' % n) for n in range(300)]
    stream = b"".join(packets)
    try:
        theirs.sendall(stream[:1000])  # a packet cut in two: the rest comes later
        client.loop_read()
        theirs.sendall(stream[1000:])
        while client.loop_read() == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS and len(received) < len(packets):
            pass
        assert received == [(f"ioc/v1/acme/d{n}/air", b'{"seq": %d}' % n) for n in range(300)]
        # paho reads one packet for each readiness of the socket; the bridge's client reads all there are.
        received.clear()
        theirs.sendall(b"".join(packets[:per_read]))
        client.loop_read()
        assert len(received) == per_read
    finally:
        ours.close()
        theirs.close()


def test_a_new_connection_starts_with_an_empty_buffer() -> None:
    first, first_peer = socket.socketpair()
    second, second_peer = socket.socketpair()
    for end in (first, second):
        end.setblocking(False)
    received: list[bytes] = []
    client = BufferedClient(CallbackAPIVersion.VERSION2, client_id="t", protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, m: received.append(m.payload)
    try:
        client._sock = first
        first_peer.sendall(publish_packet("a/b", b"one") + publish_packet("a/b", b"two")[:5])  # half a packet left
        client.loop_read()
        client._in_packet = {
            "command": 0, "have_remaining": 0, "remaining_count": [], "remaining_mult": 1,
            "remaining_length": 0, "packet": bytearray(b""), "to_process": 0, "pos": 0,
        }  # fmt: skip
        client._sock = second
        second_peer.sendall(publish_packet("a/b", b"three"))
        client.loop_read()
        assert received == [b"one", b"three"]
    finally:
        for end in (first, first_peer, second, second_peer):
            end.close()


def test_qos1_publishes_take_the_lean_path_and_the_rest_go_through_paho() -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    lean: list[tuple[bytes, bytes, int]] = []
    through_paho: list[tuple[str, bytes, int]] = []
    client = BufferedClient(CallbackAPIVersion.VERSION2, client_id="t", protocol=mqtt.MQTTv5, manual_ack=True)
    client.on_message = lambda _c, _u, m: through_paho.append((m.topic, m.payload, m.mid))
    client.on_publish_received = lambda topic, payload, mid: lean.append((topic, payload, mid))
    client._sock = ours
    content_type = b"\x03\x00\x10application/json"  # property 3: a content type
    big = b"x" * 300  # a remaining length of two bytes
    stream = b"".join(
        [
            publish_packet("ioc/v1/a/d1/air", b"one", mid=1),
            publish_packet("ioc/v1/a/d2/air", b"two", mid=2, properties=content_type),
            publish_packet("ioc/v1/a/d3/air", b"three"),
            publish_packet("ioc/v1/a/d4/air", big, mid=65535),
        ]
    )
    try:
        theirs.sendall(stream[:-100])  # the last packet comes in two reads: paho's way takes it
        client.loop_read()
        theirs.sendall(stream[-100:])
        client.loop_read()
        assert lean == [(b"ioc/v1/a/d1/air", b"one", 1)]
        assert through_paho == [
            ("ioc/v1/a/d2/air", b"two", 2),
            ("ioc/v1/a/d3/air", b"three", 0),
            ("ioc/v1/a/d4/air", big, 65535),
        ]
        theirs.sendall(publish_packet("ioc/v1/a/d4/air", big, mid=7))  # whole in one read: the lean way
        client.loop_read()
        assert lean[-1] == (b"ioc/v1/a/d4/air", big, 7)
        assert client.lean_publishes == 2
    finally:
        ours.close()
        theirs.close()


def test_many_acknowledgements_go_out_in_one_write() -> None:
    ours, theirs = socket.socketpair()
    client = BufferedClient(CallbackAPIVersion.VERSION2, client_id="t", protocol=mqtt.MQTTv5, manual_ack=True)
    client._sock = ours
    client.ack_many([1, 258, 65535])
    client.ack_many([])
    assert client._out_packet == collections.deque()  # written already (no network thread: paho writes at once)
    theirs.settimeout(2)
    assert theirs.recv(100) == b"\x40\x02\x00\x01" + b"\x40\x02\x01\x02" + b"\x40\x02\xff\xff"
    ours.close()
    theirs.close()


def test_the_keep_alive_clock_moves_only_when_bytes_come() -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    client = BufferedClient(CallbackAPIVersion.VERSION2, client_id="t", protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, _m: None
    client._sock = ours
    try:
        client._last_bytes_received = 0.0
        client.loop_read()  # nothing to read: a silent broker must still look silent to the keep-alive
        assert client._last_bytes_received == 0.0
        theirs.sendall(publish_packet("a/b", b"one"))
        client.loop_read()
        assert client._last_bytes_received > 0.0
    finally:
        ours.close()
        theirs.close()
