"""Stopping a paho MQTT client so that its socket is closed, whatever its loop thread had reached."""

from __future__ import annotations

import paho.mqtt.client as mqtt

__all__ = ["stop"]


def stop(client: mqtt.Client) -> None:
    """Disconnect, stop the network thread, and close the socket if paho left it open.

    `loop_stop` can end the thread before it has written the DISCONNECT and closed the socket, and a connection
    still waiting for its CONNACK keeps its socket too: the garbage collector then reports an unclosed socket
    (a ResourceWarning) wherever it happens to run.
    """
    client.disconnect()
    client.loop_stop()
    sock = client.socket()
    if sock is not None:
        sock.close()
