"""Names and labels of everything the operator creates for a site or a vendor, in one place.

Kubernetes children are named after the IOCSite (unique in its namespace); parts outside Kubernetes
(ClickHouse database and user, Mosquitto role, the site's key on the site-config topic) are named after
its unit, with the edition added for the 2025 tree because the reform reused 2024 codes for new units.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from operators.models import API_VERSION, IOCSiteSpec

__all__ = [
    "MANAGED_BY",
    "PART_OF",
    "SITE_LABEL",
    "SiteNames",
    "VendorNames",
    "labels",
    "owner_reference",
    "site_names",
    "vendor_names",
]

MANAGED_BY: Final = "ioc-operator"
PART_OF: Final = "ioc-platform"
SITE_LABEL: Final = "ioc.platform/site"
UNIT_LABEL: Final = "ioc.platform/unit"
VENDOR_LABEL: Final = "ioc.platform/vendor"


@dataclasses.dataclass(frozen=True, slots=True)
class SiteNames:
    """Every name derived from one IOCSite."""

    name: str
    namespace: str
    unit: str
    edition: str

    @property
    def suffix(self) -> str:
        """The site's identity outside Kubernetes: the unit code, plus the edition when it is not 2024."""
        return self.unit if self.edition == "2024" else f"{self.unit}_{self.edition}"

    @property
    def config_map(self) -> str:
        return f"{self.name}-config"

    @property
    def dashboard(self) -> str:
        """The dashboard's Deployment and Service."""
        return f"{self.name}-dashboard"

    @property
    def service_account(self) -> str:
        """The site's pods' identity, with its Role, RoleBinding and NetworkPolicy."""
        return f"{self.name}-site"

    @property
    def worker(self) -> str:
        return f"{self.name}-worker"

    @property
    def credentials_secret(self) -> str:
        return f"{self.name}-clickhouse"

    @property
    def kafka_secret(self) -> str:
        """The Secret with the site's Kafka principal (username, password), for its dashboard pods."""
        return f"{self.name}-kafka"

    @property
    def database(self) -> str:
        return f"ioc_site_{self.suffix}"

    @property
    def clickhouse_user(self) -> str:
        return self.database

    @property
    def mqtt_role(self) -> str:
        return f"ioc-site-{self.suffix.replace('_', '-')}"

    @property
    def config_key(self) -> str:
        """The Kafka key of the site's effective configuration on the compacted site-config topic."""
        return self.suffix

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.dashboard}.{self.namespace}.svc"


def site_names(name: str, namespace: str, spec: IOCSiteSpec) -> SiteNames:
    return SiteNames(name, namespace, spec.unit, spec.edition)


@dataclasses.dataclass(frozen=True, slots=True)
class VendorNames:
    """Every name derived from one SensorVendor: its id is the object's name."""

    name: str
    namespace: str

    @property
    def vendor(self) -> str:
        return self.name

    @property
    def credentials_secret(self) -> str:
        return f"{self.name}-mqtt"


def vendor_names(name: str, namespace: str) -> VendorNames:
    return VendorNames(name, namespace)


def labels(site: SiteNames | VendorNames, component: str) -> dict[str, str]:
    """The standard `app.kubernetes.io/*` labels plus ours, for one component of a site or vendor."""
    common = {
        "app.kubernetes.io/name": f"ioc-{component}",
        "app.kubernetes.io/instance": site.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }
    if isinstance(site, SiteNames):
        return {**common, SITE_LABEL: site.name, UNIT_LABEL: site.unit}
    return {**common, VENDOR_LABEL: site.name}


def owner_reference(kind: str, name: str, uid: str) -> dict[str, object]:
    """Makes the custom resource the controller of a child (garbage-collected with it in a real cluster)."""
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
