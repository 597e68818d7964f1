"""Entry for `kopf run -m operators.app`: the handlers on Kopf's default registry, settings from the environment.

`python -m operators` is the usual way in; this module exists for those who drive the operator with
Kopf's own command line (e.g. `kopf run -m operators.app --all-namespaces --standalone`).
"""

from __future__ import annotations

import kopf

from ioc.settings import OperatorSettings
from operators import runtime

__all__ = ["registry", "settings"]

settings = OperatorSettings()
registry = runtime.build_registry(settings, kopf.get_default_registry())
