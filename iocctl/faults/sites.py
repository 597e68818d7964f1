"""The operator under faults: IOCSites created, changed and deleted while it is killed, each checked to converge.

An operator that is SIGKILLed in the middle of a reconcile must, once started again, finish what was cut off (Kopf
resumes every object): every site the API server acknowledged ends Ready for the generation it was last given, with
that generation's settings in its effective configuration (the `<site>-config` ConfigMap's `site.json`), and every
site it acknowledged deleting is gone with its children. `SiteChurn` makes those changes through kubectl, as a
platform engineer would, and records each acknowledgement; `SiteChurn.check` waits for convergence and names each
site that did not get there (a `history.Anomaly` of kind `site-not-converged` or `site-not-removed`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from iocctl.faults.history import Anomaly, FaultSpan, faults_at
from iocctl.localstack.platform import apply_crds, kubectl
from operators.models import GROUP, VERSION

__all__ = ["NAMESPACE", "SiteAck", "SiteChurn"]

NAMESPACE: Final = "ioc-faults"
"""The namespace the fault run's sites live in."""
DISTRICT: Final = "724"
"""Dĩ An: the district site the run's commune sites report to."""
FIRST_DAYS: Final = 30


@dataclasses.dataclass(frozen=True)
class SiteAck:
    """What the API server acknowledged about one site at `at` (Unix seconds): its spec's generation and the
    `retention.readingsDays` it was given, or `None` for a deletion."""

    name: str
    generation: int
    readings_days: int | None
    at: float


class SiteChurn:
    """Commune sites of Dĩ An created, changed and deleted one step at a time; `acks` is what was acknowledged."""

    def __init__(self, kube: dict[str, Any], communes: Sequence[str], *, say: Callable[[str], None] = print) -> None:
        self.kube = kube
        self.communes = list(communes)
        self.say = say
        self.acks: dict[str, SiteAck] = {}
        """Site name → its latest acknowledgement."""
        self.changes = 0
        """Creations, changes and deletions acknowledged."""
        self._live: list[str] = []
        self._steps = 0

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return kubectl(self.kube, *args, stdin=stdin, timeout=60)

    def prepare(self) -> None:
        """The CRDs, the namespace and the district site the communes report to (before any fault)."""
        apply_crds(self.kube)
        self.kubectl("create", "namespace", NAMESPACE)
        self._apply("faults-di-an", DISTRICT, "district", None, FIRST_DAYS)

    def _apply(self, name: str, unit: str, tier: str, parent: str | None, days: int) -> None:
        spec: dict[str, Any] = {"unit": unit, "tier": tier, "retention": {"readingsDays": days}}
        if parent is not None:
            spec["parentRef"] = {"name": parent, "tier": "district"}
        manifest = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "IOCSite", "metadata": {"name": name}, "spec": spec}
        applied = json.loads(
            self.kubectl("apply", "-n", NAMESPACE, "-o", "json", "-f", "-", stdin=json.dumps(manifest))
        )
        self.acks[name] = SiteAck(name, int(applied["metadata"]["generation"]), days, time.time())
        self.changes += 1

    def step(self) -> None:
        """One change: a new commune site, a live one's retention changed, or the oldest one deleted, in turn."""
        n, self._steps = self._steps, self._steps + 1
        kind = n % 3
        if kind == 1 and self._live:
            name = self._live[n % len(self._live)]
            unit = name.removeprefix("faults-")
            self._apply(name, unit, "commune", "faults-di-an", FIRST_DAYS + 1 + n)
        elif kind == 2 and len(self._live) > 2:
            name = self._live.pop(0)
            self.kubectl("delete", "iocsite", name, "-n", NAMESPACE, "--wait=false")
            self.acks[name] = SiteAck(name, 0, None, time.time())
            self.changes += 1
        else:
            code = self.communes[(n // 3) % len(self.communes)]
            name = f"faults-{code}"
            if name in self._live or (name in self.acks and self.acks[name].readings_days is None):
                return  # every commune used (or one still going away): nothing new this step
            self._apply(name, code, "commune", "faults-di-an", FIRST_DAYS)
            self._live.append(name)

    def _state(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        sites = json.loads(self.kubectl("get", "iocsites", "-n", NAMESPACE, "-o", "json"))["items"]
        maps = json.loads(self.kubectl("get", "configmaps", "-n", NAMESPACE, "-o", "json"))["items"]
        return {s["metadata"]["name"]: s for s in sites}, {m["metadata"]["name"]: m for m in maps}

    def _unconverged(self) -> dict[str, tuple[str, str]]:
        """Site name → (anomaly kind, what is wrong) for every acknowledgement not yet carried out."""
        sites, maps = self._state()
        wrong: dict[str, tuple[str, str]] = {}
        for name, ack in self.acks.items():
            site, config = sites.get(name), maps.get(f"{name}-config")
            if ack.readings_days is None:
                if site is not None or config is not None:
                    left = "the IOCSite" if site is not None else "its ConfigMap"
                    wrong[name] = ("site-not-removed", f"deleted, {left} still there")
                continue
            if site is None:
                wrong[name] = ("site-not-converged", "acknowledged, no IOCSite")
                continue
            status = site.get("status", {})
            observed = status.get("observedGeneration", 0)
            if status.get("phase") != "Ready" or observed < ack.generation:
                wrong[name] = (
                    "site-not-converged",
                    f"generation {ack.generation} acknowledged, status {status.get('phase')!r} for {observed}",
                )
                continue
            days = json.loads(config["data"]["site.json"])["retention"]["readingsDays"] if config else None
            if days != ack.readings_days:
                wrong[name] = (
                    "site-not-converged",
                    f"readingsDays {ack.readings_days} acknowledged, {days} in site.json",
                )
        return wrong

    def check(self, spans: Sequence[FaultSpan], timeout: float) -> list[Anomaly]:
        """Wait up to `timeout` for every acknowledged change to be carried out; what is not, as anomalies."""
        deadline = time.monotonic() + timeout
        while (wrong := self._unconverged()) and time.monotonic() < deadline:
            time.sleep(1)
        return [
            Anomaly(kind, f"site {name}", detail, None, faults_at(spans, self.acks[name].at))
            for name, (kind, detail) in sorted(wrong.items())
        ]
