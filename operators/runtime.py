"""Wiring the operator into Kopf: its settings, login, startup and the handler registry; and running it.

`python -m operators` (operators.__main__) and `kopf run -m operators.app` both end here. Startup builds
the shared `Context`, waits until the API server serves the ioc.platform CRDs (the operator does not
scan for CRDs, so it needs no permission on them), creates the default ReferenceModel when none exists,
and keeps the bridge's own MQTT login when its settings name one. Kopf runs standalone (one replica; no
peering objects) and keeps its progress in annotations under ioc.platform/, with the finalizer
ioc.platform/cleanup.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import kopf

from ioc.clients.dynsec import DynsecError
from ioc.reference import default_reference_model
from ioc.settings import OperatorSettings
from operators import broker, handlers
from operators.context import Context
from operators.kube import Kube, KubeError
from operators.models import API_VERSION, GROUP, VERSION

__all__ = [
    "CRD_PLURALS",
    "FINALIZER",
    "build_registry",
    "configure",
    "default_reference_model_manifest",
    "ensure_default_reference_model",
    "run",
    "wait_for_crds",
    "watched_namespaces",
]

FINALIZER: Final = f"{GROUP}/cleanup"
CRD_PLURALS: Final = frozenset({"iocsites", "sensorvendors", "referencemodels"})

_log = logging.getLogger(__name__)


def watched_namespaces(settings: OperatorSettings) -> tuple[str, ...]:
    """The namespaces the operator watches (`namespace` and `namespaces`); empty: every namespace."""
    listed = [settings.namespace] if settings.namespace else []
    return tuple(dict.fromkeys([*listed, *settings.namespaces]))


def configure(kopf_settings: kopf.OperatorSettings, settings: OperatorSettings) -> None:
    """Kopf's own settings for this operator."""
    kopf_settings.peering.standalone = True
    # The CRDs come with the chart, before the operator: no need to watch (or be allowed to read) CRDs.
    kopf_settings.scanning.disabled = True
    kopf_settings.execution.max_workers = settings.workers
    kopf_settings.persistence.finalizer = FINALIZER
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Handlers post the events worth reading themselves; Kopf adds only its warnings and errors.
    kopf_settings.posting.level = logging.WARNING
    kopf_settings.posting.reporting_component = "ioc-operator"
    kopf_settings.networking.request_timeout = 60
    kopf_settings.networking.connect_timeout = 10


def wait_for_crds(kube: Kube, timeout: float) -> None:
    """Block until the API server serves every ioc.platform resource, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            missing = set(CRD_PLURALS - kube.served(f"{GROUP}/{VERSION}"))
        except KubeError as exc:
            missing, reason = set(CRD_PLURALS), str(exc)
        else:
            reason = f"not served yet: {', '.join(sorted(missing))}"
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {GROUP} CRDs are not installed ({reason}); apply charts/ioc-platform/crds/ first")
        time.sleep(0.5)


def default_reference_model_manifest() -> dict[str, Any]:
    """The ReferenceModel object named "default", from the packaged model."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ReferenceModel",
        "metadata": {
            "name": "default",
            "labels": {"app.kubernetes.io/part-of": "ioc-platform", "app.kubernetes.io/managed-by": "ioc-operator"},
        },
        "spec": default_reference_model().model_dump(mode="json", exclude_none=True),
    }


def ensure_default_reference_model(kube: Kube) -> bool:
    """Create the default ReferenceModel unless one exists (an edited one is left alone)."""
    return kube.create(default_reference_model_manifest())


def _startup(settings: kopf.OperatorSettings, memo: kopf.Memo, operator_settings: OperatorSettings) -> None:
    configure(settings, operator_settings)
    if memo.get("ctx") is None:
        memo["ctx"] = Context(operator_settings)
    ctx: Context = memo["ctx"]
    wait_for_crds(ctx.kube, operator_settings.crd_wait_s)
    try:
        if ensure_default_reference_model(ctx.kube):
            _log.info("created the default ReferenceModel from the packaged model")
    except KubeError as exc:
        # Not fatal: sites asking for "default" fall back to the packaged model the object would hold.
        _log.warning("could not create the default ReferenceModel: %s", exc)
    if operator_settings.bridge_username and operator_settings.bridge_password:
        try:
            with ctx.dynsec() as admin:
                broker.ensure_bridge(
                    admin, operator_settings.bridge_username, operator_settings.bridge_password.get_secret_value()
                )
            _log.info("the bridge's MQTT login %s has its own role", operator_settings.bridge_username)
        except (DynsecError, OSError) as exc:
            # Not fatal for sites and vendors; the bridge cannot log in until this succeeds (next start).
            _log.warning("could not create the bridge's MQTT login: %s", exc)


def _login(memo: kopf.Memo, operator_settings: OperatorSettings) -> kopf.ConnectionInfo:
    ctx: Context | None = memo.get("ctx")
    kube = ctx.kube if ctx is not None else Kube(operator_settings.kube)
    found = kube.connection()
    return kopf.ConnectionInfo(
        server=found.server,
        ca_path=found.ca_file,
        insecure=found.insecure,
        scheme="Bearer" if found.token else None,
        token=found.token,
        certificate_path=found.cert_file,
        private_key_path=found.key_file,
        # Where events about cluster-scoped objects go: a watched namespace, where its Role lets it post them.
        default_namespace=next(iter(watched_namespaces(operator_settings)), "default"),
    )


def _cleanup(memo: kopf.Memo, **_: Any) -> None:
    ctx: Context | None = memo.get("ctx")
    if ctx is not None:
        ctx.close()


def build_registry(
    operator_settings: OperatorSettings, registry: kopf.OperatorRegistry | None = None
) -> kopf.OperatorRegistry:
    """Every activity and handler of the operator, in `registry` (a new one by default)."""
    registry = registry or kopf.OperatorRegistry()
    settings = operator_settings

    def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        _startup(settings, memo, operator_settings)

    def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
        return _login(memo, operator_settings)

    kopf.on.startup(registry=registry, id="startup")(startup)
    kopf.on.login(registry=registry, id="login")(login)
    kopf.on.cleanup(registry=registry, id="cleanup")(_cleanup)
    handlers.referencemodel.register(registry, settings)
    handlers.iocsite.register(registry, settings)
    handlers.sensorvendor.register(registry, settings)
    return registry


def run(settings: OperatorSettings) -> None:
    """Run the operator in this thread until it is stopped (SIGINT/SIGTERM)."""
    kopf_settings = kopf.OperatorSettings()
    configure(kopf_settings, settings)
    kopf.run(
        registry=build_registry(settings),
        settings=kopf_settings,
        standalone=True,
        clusterwide=not watched_namespaces(settings),
        namespaces=list(watched_namespaces(settings)),
        liveness_endpoint=settings.liveness_endpoint,
        memo=kopf.Memo(),
    )
