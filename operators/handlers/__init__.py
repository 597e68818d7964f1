"""Kopf handlers, one module per custom resource; each module's `register` adds its handlers to a registry.

Handlers stay thin: they turn Kopf's arguments into the operator's own objects, call one function of
`operators.sites`, `operators.vendors` or `operators.reference`, and write back status, events and
the retry decision. Registration is explicit (not at import) because intervals come from the settings.
"""

from __future__ import annotations

from operators.handlers import iocsite, referencemodel, sensorvendor

__all__ = ["iocsite", "referencemodel", "sensorvendor"]
