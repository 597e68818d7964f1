"""The vendor SDK: publish contract events to the platform over MQTT with issued credentials."""

from sensors.sdk.client import (
    ConnectRefused,
    Device,
    InvalidEvent,
    OfflineQueueFull,
    PublishRefused,
    SdkError,
    VendorClient,
)

__all__ = [
    "ConnectRefused",
    "Device",
    "InvalidEvent",
    "OfflineQueueFull",
    "PublishRefused",
    "SdkError",
    "VendorClient",
]
