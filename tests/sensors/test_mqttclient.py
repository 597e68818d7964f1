"""The bridge's buffered paho client (sensors/bridge/mqttclient.py) on a real socket pair: every packet read at once."""

from __future__ import annotations

import socket

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sensors.bridge.mqttclient import BufferedClient


def publish_packet(topic: str, payload: bytes) -> bytes:
    """An MQTT 5 PUBLISH at QoS 0 (no properties)."""
    name = topic.encode()
    body = len(name).to_bytes(2, "big") + name + b"\x00" + payload
    length, encoded = len(body), bytearray()
    while True:
        byte, length = length % 128, length // 128
        encoded.append(byte | (128 if length else 0))
        if not length:
            break
    return b"\x30" + bytes(encoded) + body


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
