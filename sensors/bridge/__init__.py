"""The MQTT→Kafka bridge: validates every device message, batches the valid, dead-letters the rest."""

from sensors.bridge.service import Bridge, BridgeStats
from sensors.bridge.validate import Accepted, Rejected, Validator

__all__ = ["Accepted", "Bridge", "BridgeStats", "Rejected", "Validator"]
