"""paho's MQTT client, fast intake: whole packets from large reads, lean QoS 1 publishes, bulk acknowledgements.

paho 2.2 reads every packet with at least three receives (the command byte, each byte of the remaining length, then
the rest) and, from one readiness of the socket, only one packet before it selects again; over TLS each receive is a
pass through the SSL layer. It then decodes each PUBLISH into an `MQTTMessage` with an MQTT 5 `Properties` object,
matches its topic against the filtered callbacks, and writes each acknowledgement as its own packet (a TLS record
and a wake-up of its thread through a socket pair). Profiled in the pipeline benchmark (docs/performance.md), that
was most of the bridge's network thread with one reading per message. `BufferedClient`:

- receives up to `READ_BYTES` at a time and reads every packet the socket has before selecting again;
- takes each packet whole from that block when it is there (paho's byte-by-byte path handles the rest);
- hands a QoS 1 PUBLISH without properties (what devices send) to `on_publish_received` as topic bytes, payload and
  packet id, without building paho's objects; any other packet goes through paho as before;
- acknowledges many messages in one write (`ack_many`).

Only these internals are replaced; sessions, keep-alive, reconnects and every other packet are paho's own. The
buffer belongs to one connection: a reconnect starts an empty one.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.exception import MalformedPacket

if TYPE_CHECKING:
    from paho.mqtt.client import _InPacket

__all__ = ["BufferedClient", "PublishHandler"]

READ_BYTES: Final = 256 * 1024
"""Most bytes taken from the socket in one receive."""
PACKETS_PER_READ: Final = 100_000
"""Most packets handled for one readiness of the socket. The broker's receive maximum (the bridge's `max_inflight`)
bounds the publishes it sends before acknowledgements, which paho's loop writes once this returns."""
_PUBLISH_QOS1: Final = 0x32
"""A PUBLISH's first byte with QoS 1, once its DUP (0x08) and RETAIN (0x01) flags are masked out (0xF6)."""
_PUBACK: Final = 0x40

PublishHandler = Callable[[bytes, bytes, int], None]
"""(topic bytes, payload, packet id) of a QoS 1 PUBLISH; acknowledge it with `ack_many`."""


def _in_packet(command: int = 0, body: bytes = b"") -> _InPacket:
    """paho's record of the packet being read: a whole one (`command`, `body`), or none (between packets)."""
    return {
        "command": command, "have_remaining": 1 if command else 0, "remaining_count": [], "remaining_mult": 1,
        "remaining_length": len(body), "packet": bytearray(body), "to_process": 0, "pos": 0,
    }  # fmt: skip


class BufferedClient(mqtt.Client):
    """`paho.mqtt.client.Client` with a receive buffer and a lean QoS 1 path (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_publish_received: PublishHandler | None = None
        """Set to take QoS 1 publishes without properties here instead of `on_message` (which gets the others)."""
        self.lean_publishes = 0
        """Publishes handed to `on_publish_received`."""
        self._block = b""
        """The bytes of the last receive; paho has read up to `_taken`."""
        self._taken = 0
        self._block_socket: object | None = None

    # --- receiving ------------------------------------------------------------------------------------------

    def _fill(self) -> bool:
        """Receive a new block if the last one is used up; False when the peer has closed the connection."""
        sock = self._sock
        if sock is None:
            raise ConnectionError("self._sock is None")
        if sock is not self._block_socket:  # a new connection: nothing of the old one's bytes applies
            self._block_socket, self._block, self._taken = sock, b"", 0
        if self._taken < len(self._block):
            return True
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
            return False
        self._block, self._taken = block, 0
        with self._msgtime_mutex:  # the keep-alive's clock, once per block rather than per packet
            self._last_bytes_received = time.monotonic()
        return True

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self._fill():
            return b""  # the peer closed: paho takes an empty read as a lost connection
        start = self._taken
        self._taken = min(start + bufsize, len(self._block))
        return self._block[start : self._taken]

    def _packet_read(self) -> MQTTErrorCode:
        """The next packet: whole from the block when it is all there, else paho's way (across receives)."""
        if self._in_packet["command"] == 0:  # paho is not in the middle of a packet
            try:
                if not self._fill():
                    return MQTTErrorCode.MQTT_ERR_CONN_LOST
            except BlockingIOError:
                return MQTTErrorCode.MQTT_ERR_AGAIN
            except OSError:
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            rc = self._whole_packet()
            if rc is not None:
                return rc
        return super()._packet_read()

    def _whole_packet(self) -> MQTTErrorCode | None:
        """Handle the packet at the block's read position if the block holds all of it; None if it does not."""
        block, start = self._block, self._taken
        end = len(block)
        pos, length, shift = start + 1, 0, 0
        while True:  # the remaining length: 1 to 4 bytes, 7 bits each, least significant first
            if pos >= end or shift > 21:
                return None  # cut by the block's end (or malformed: paho says so)
            byte = block[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if pos + length > end:
            return None
        command = block[start]
        body = block[pos : pos + length]
        self._taken = pos + length
        handler = self.on_publish_received
        if (command & 0xF6) == _PUBLISH_QOS1 and handler is not None:
            handled = self._lean_publish(handler, body)
            if handled is not None:
                return handled
        # Any other packet: paho's handler, with the packet as paho's own reading would have left it.
        self._in_packet = _in_packet(command, body)
        try:
            return self._packet_handle()
        except MalformedPacket as exc:
            self._easy_log(mqtt.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        finally:
            self._in_packet = _in_packet()

    def _lean_publish(self, handler: PublishHandler, body: bytes) -> MQTTErrorCode | None:
        """A QoS 1 PUBLISH of MQTT 5 without properties, to `handler`; None: paho's way instead."""
        if self._protocol != mqtt.MQTTv5 or len(body) < 5:
            return None
        topic_end = 2 + ((body[0] << 8) | body[1])
        if topic_end + 3 > len(body) or body[topic_end + 2] != 0:  # cut short, or it carries properties
            return None
        mid = (body[topic_end] << 8) | body[topic_end + 1]
        with self._in_callback_mutex:
            handler(body[2:topic_end], body[topic_end + 3 :], mid)
        self.lean_publishes += 1
        return MQTTErrorCode.MQTT_ERR_SUCCESS

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

    # --- acknowledging --------------------------------------------------------------------------------------

    def ack_many(self, mids: Iterable[int]) -> None:
        """Acknowledge these QoS 1 messages (manual acknowledgement) with one write for all of them."""
        packet = b"".join(bytes((_PUBACK, 2, mid >> 8, mid & 0xFF)) for mid in mids)
        if packet:
            self._packet_queue(_PUBACK, packet, 0, 0)
