"""A runnable vendor example: an air-quality station and a camera gateway publishing with the SDK.

    python -m sensors.sdk.example --host 127.0.0.1 --port 8883 --ca-file ca.crt --vendor acme --password ...

It connects over TLS (trusting the platform's CA) with the credentials the platform issued to the vendor
(the username in its Secret is `vendor.<id>`), publishes a few readings (one at a
time, then a batch, the cheap way for gateways) and a camera violation, waits until the broker has
acknowledged everything, and reports any refusal the way a vendor's own code should.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys

from ioc.events import CameraEventType, SensorKind
from ioc.settings import MqttEndpoint
from sensors.sdk import ConnectRefused, PublishRefused, SdkError, VendorClient


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8883)
    parser.add_argument("--ca-file", help="the platform's CA certificate; TLS is on when given")
    parser.add_argument("--vendor", required=True, help="your vendor id (the topics' vendor segment)")
    parser.add_argument("--username", help="your MQTT username from the Secret; default vendor.<vendor id>")
    parser.add_argument("--password", required=True)
    parser.add_argument("--unit", default="25987", help="GSO code of the commune the devices stand in")
    parser.add_argument("--count", type=int, default=10, help="readings to send")
    args = parser.parse_args(argv)

    endpoint = MqttEndpoint(
        host=args.host,
        port=args.port,
        username=args.username or f"vendor.{args.vendor}",
        password=args.password,
        tls_ca_file=args.ca_file,
    )
    client = VendorClient(endpoint, args.vendor)
    try:
        client.connect()
    except ConnectRefused as exc:
        print(f"cannot connect: {exc}", file=sys.stderr)
        return 2
    try:
        station = client.device("aq-01", unit=args.unit, kind=SensorKind.AIR)
        for _ in range(args.count):
            station.reading({"pm25": round(random.uniform(20, 60), 1), "pm10": round(random.uniform(40, 90), 1)})  # noqa: S311
        # A gateway that buffered a minute of readings sends them as one message.
        now = dt.datetime.now(dt.UTC)
        station.readings([({"pm25": 35.0}, now - dt.timedelta(seconds=10 * i)) for i in range(6, 0, -1)])
        camera = client.device("cam-01", unit=args.unit, kind="camera")
        camera.camera_event(CameraEventType.RED_LIGHT, confidence=0.92, plate="61A-123.45")
        client.flush(timeout=30)
    except PublishRefused as exc:
        print(f"the broker refused some messages (check your ACL): {exc}", file=sys.stderr)
        return 3
    except SdkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(f"sent {args.count + 6} readings and 1 camera event as {args.vendor}; next sequence {station.next_seq}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
