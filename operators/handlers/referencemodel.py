"""Kopf handlers of ReferenceModel: validate each model with the typed loader and say so in its status.

The CRD's schema and CEL rules catch most mistakes; the typed loader (ioc.reference) also checks what
CEL cannot say briefly (a rule's measure against its kind, clear levels below alarm levels, complete
SLAs). Sites read models from the operator's index and pick changes up on their repair timer.
"""

from __future__ import annotations

from typing import Any, Final

import kopf

from ioc.reference import ReferenceModelError, parse_reference_model
from ioc.settings import OperatorSettings
from operators.handlers._common import GROUP, VERSION

__all__ = ["PLURAL", "register", "validate"]

PLURAL: Final = "referencemodels"


def validate(
    body: kopf.Body, meta: kopf.Meta, spec: kopf.Spec, status: kopf.Status, patch: kopf.Patch, **_: Any
) -> None:
    generation = int(meta.get("generation") or 0)
    try:
        model = parse_reference_model(dict(spec), f"ReferenceModel {meta['name']}")
    except ReferenceModelError as exc:
        message = "; ".join(f"spec.{loc}: {msg}" for loc, msg in exc.errors)
        patch.status.update({"valid": False, "observedGeneration": generation, "message": message[:2000]})
        kopf.event(body, type="Warning", reason="InvalidModel", message=message[:1000])
        raise kopf.PermanentError(message) from None
    message = f"{model.name} {model.version}: {len(model.tiers)} tiers, {len(model.rules)} rules"
    if status.get("valid") is not True or status.get("observedGeneration") != generation:
        patch.status.update({"valid": True, "observedGeneration": generation, "message": message})
        kopf.event(body, type="Normal", reason="Validated", message=message)


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """Add the ReferenceModel handlers to `registry` (no finalizer: deleting a model needs no cleanup)."""
    del settings  # nothing to tune
    for on in (kopf.on.create, kopf.on.update, kopf.on.resume):
        on(GROUP, VERSION, PLURAL, registry=registry, id="validate")(validate)
