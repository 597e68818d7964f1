"""paho's MQTT client reading the socket in large blocks: the bridge's intake at thousands of messages a second.

paho 2.2 reads every packet with at least three receives (the command byte, each byte of the remaining length, then
the rest) and, from one readiness of the socket, only one packet before it selects again; over TLS each receive is a
pass through the SSL layer. Profiled in the pipeline benchmark (docs/performance.md), that was about two thirds of the
bridge's network thread with one reading per message. `BufferedClient` receives up to `READ_BYTES` at a time and
serves paho's small reads from that block, and reads every packet the socket has before selecting again (a
select would not see the bytes already taken). Only paho's two socket-reading methods are replaced; the protocol,
sessions and callbacks are paho's own. The buffer belongs to one connection: a reconnect starts an empty one.
"""

from __future__ import annotations

import ssl
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

__all__ = ["BufferedClient"]

READ_BYTES: Final = 256 * 1024
"""Most bytes taken from the socket in one receive."""
PACKETS_PER_READ: Final = 100_000
"""Most packets handled for one readiness of the socket. The broker's receive maximum (the bridge's `max_inflight`)
bounds the publishes it sends before acknowledgements, which paho's loop writes once this returns."""


class BufferedClient(mqtt.Client):
    """`paho.mqtt.client.Client` with a receive buffer (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._block = b""
        """The bytes of the last receive; paho has read up to `_taken`."""
        self._taken = 0
        self._block_socket: object | None = None

    def _sock_recv(self, bufsize: int) -> bytes:
        sock = self._sock
        if sock is None:
            raise ConnectionError("self._sock is None")
        if sock is not self._block_socket:  # a new connection: nothing of the old one's bytes applies
            self._block_socket, self._block, self._taken = sock, b"", 0
        if self._taken == len(self._block):
            try:
                block = sock.recv(READ_BYTES)
            except ssl.SSLWantReadError as err:
                raise BlockingIOError from err
            except ssl.SSLWantWriteError as err:
                self._call_socket_register_write()
                raise BlockingIOError from err
            except AttributeError as err:
                raise ConnectionError from err
            if not block:
                return b""  # the peer closed: paho takes an empty read as a lost connection
            self._block, self._taken = block, 0
        start = self._taken
        self._taken = min(start + bufsize, len(self._block))
        return self._block[start : self._taken]

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Read packets until the socket has nothing more now (paho stops after one packet per readiness)."""
        if self._sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        for _ in range(max(max_packets, PACKETS_PER_READ)):
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        return MQTTErrorCode.MQTT_ERR_SUCCESS
