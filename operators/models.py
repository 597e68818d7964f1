"""Typed models of the operator's custom resources (IOCSite, SensorVendor): the source of their CRD schemas.

`operators.crds` generates the CustomResourceDefinitions from these classes (and from
`ioc.reference.ReferenceModel` for the ReferenceModel kind); handlers parse every object they receive
through them, so a field means the same thing to the API server, the operator and the tests. Field
names are camelCase on the wire, as Kubernetes spells them; a threshold override keeps the reference
model's own rule field names (`above`, `for_minutes`) because it names those fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, TypeVar

import pydantic
from pydantic.alias_generators import to_camel

from ioc.events import Module
from ioc.fields import DeviceIdField, UnitCodeField
from ioc.people import NotificationsSpec, Person
from ioc.topics import MQTT_KINDS

__all__ = [
    "API_VERSION",
    "GROUP",
    "RESERVED_VENDOR_IDS",
    "RESERVED_VENDOR_PREFIXES",
    "VERSION",
    "Condition",
    "DashboardSpec",
    "Edition",
    "IOCSiteSpec",
    "IOCSiteStatus",
    "ParentRef",
    "ResourceError",
    "RetentionSpec",
    "RuleOverride",
    "SecretRef",
    "SensorVendorSpec",
    "SensorVendorStatus",
    "SignInSpec",
    "WorkersSpec",
    "parse",
    "reserved_vendor_id",
]

GROUP: Final = "ioc.platform"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

RESERVED_VENDOR_IDS: Final[tuple[str, ...]] = (
    "admin",
    "anonymous",
    "bridge",
    "default",
    "ioc",
    "mosquitto",
    "operator",
    "platform",
    "root",
    "system",
    "vendor",
)
"""Vendor ids that name, or would look like, a platform account; the API server refuses them."""
RESERVED_VENDOR_PREFIXES: Final[tuple[str, ...]] = ("ioc-", "admin-", "system-", "platform-", "kube-", "vendor-")
"""Prefixes of the platform's own names (`ioc-bridge`, `ioc-site-*` roles): no vendor id starts with them.

Broker usernames are namespaced anyway (`vendor.<id>`, ioc.clients.dynsec), so a name missing here still
cannot collide; the list keeps ids that would confuse a person reading the broker's clients out too.
"""


def reserved_vendor_id(name: str) -> str | None:
    """Why `name` may not be a vendor id, or None when it may."""
    if name in RESERVED_VENDOR_IDS:
        return f"{name} is reserved for a platform account"
    prefix = next((p for p in RESERVED_VENDOR_PREFIXES if name.startswith(p)), None)
    if prefix is not None:
        return f"{name} starts with {prefix}, a prefix reserved for platform accounts"
    return None


Edition = Literal["2024", "2025"]
TierName = Annotated[str, pydantic.Field(pattern=r"^[a-z][a-z0-9-]{1,30}$", max_length=31)]
ObjectName = Annotated[str, pydantic.Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", min_length=1, max_length=63)]
RuleId = Annotated[str, pydantic.Field(pattern=r"^[a-z][a-z0-9-]{1,62}$")]


def _known_kind(kind: str) -> str:
    if kind not in MQTT_KINDS:
        raise ValueError(f"{kind!r} is not a device kind; known: {', '.join(sorted(MQTT_KINDS))}")
    return kind


# The kinds come from the topic registry, so the schema's enum is filled in from it too.
MqttKind = Annotated[
    str, pydantic.AfterValidator(_known_kind), pydantic.Field(json_schema_extra={"enum": sorted(MQTT_KINDS)})
]


class _Wire(pydantic.BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields refused (the API server prunes them)."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


class ParentRef(_Wire):
    """The IOCSite this site reports to; its tier is repeated so the API server can check it."""

    name: ObjectName = pydantic.Field(description="Name of the parent IOCSite.")
    namespace: ObjectName | None = pydantic.Field(None, description="Its namespace; this site's when unset.")
    tier: TierName = pydantic.Field(description="The parent site's tier (checked against the reference model).")


SecretName = Annotated[str, pydantic.Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", min_length=1, max_length=253)]


class SecretRef(_Wire):
    """A Secret in the site's namespace."""

    name: SecretName = pydantic.Field(description="Name of the Secret.")


class SignInSpec(_Wire):
    """Sign-in through the province's identity provider (OIDC): visitors see and act on what their grants allow."""

    secret_ref: SecretRef = pydantic.Field(
        description="Secret with the dashboards' OIDC client: keys client_id, client_secret, server_metadata_url "
        "(the provider's /.well-known/openid-configuration) and cookie_secret (signs the sign-in cookie; the same "
        "for every replica)."
    )
    redirect_uri: str | None = pydantic.Field(
        None,
        pattern=r"^https?://[^\s]+/oauth2callback$",
        max_length=2000,
        description="Where the provider sends the browser back: the dashboard's public URL + /oauth2callback "
        "(registered with the provider); unset: http://localhost:8501/oauth2callback (port-forwarding only).",
    )
    scope: str | None = pydantic.Field(
        None,
        max_length=500,
        description="Scopes asked for (default 'openid email profile'); the grants claim must be released for them.",
    )


class DashboardSpec(_Wire):
    """The site's Streamlit dashboard."""

    replicas: Annotated[int, pydantic.Field(ge=0, le=20)] = pydantic.Field(1, description="Dashboard pods.")
    public: bool = pydantic.Field(
        False, description="Serve the citizen (public) tier: the dashboard accepts traffic from anywhere."
    )
    language: Literal["vi", "en"] = pydantic.Field("vi", description="Default language.")
    sign_in: SignInSpec | None = pydantic.Field(
        None,
        description="Sign-in through an identity provider (OIDC). Unset: the dashboard serves every visitor as an "
        "anonymous, read-only viewer (no one can act on incidents), and the status says so (condition SignIn).",
    )
    served_by: Literal["Own", "Parent"] | None = pydantic.Field(
        None,
        description="Own: the site runs its own dashboard, warehouse database and login. Parent: the nearest "
        "ancestor site with its own dashboard serves it, scoped per signed-in person to the units they are granted "
        "(no pods, database or login of its own; needs parentRef). Unset: its tier's default in the reference "
        "model (communes: Parent), Own for a root site.",
    )


class RetentionSpec(_Wire):
    """How long raw observations are kept; aggregates, incidents and dossiers are kept (Decision 766 history).

    The stream workers drop whole months of readings and camera events older than the longest `readingsDays`
    any site asks for: the tables are shared, so one site's retention cannot delete what another keeps
    (docs/platform-engineers.md, "Per-site settings").
    """

    readings_days: Annotated[int, pydantic.Field(ge=1, le=3650)] = pydantic.Field(
        30, description="Days of readings and camera events kept (dropped in whole months once older)."
    )


class WorkersSpec(_Wire):
    """Stream processing: the shared worker pool, or a dedicated one for an isolated site."""

    isolated: bool = pydantic.Field(
        False,
        description="Run the rules on the subtree's sensor readings in a dedicated worker Deployment (its own "
        "consumer group, state and rules); the shared pool skips those readings.",
    )
    replicas: Annotated[int, pydantic.Field(ge=1, le=16)] = pydantic.Field(
        1, description="Dedicated workers (isolated sites only)."
    )


class RuleOverride(pydantic.BaseModel):
    """New values for some fields of one reference-model rule; each must be a field of that rule's type. The
    stream workers apply them to the readings and camera events of the site's subtree (streams/siteconfig.py)."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")
    above: float | None = None
    clear_below: float | None = None
    for_minutes: float | None = None
    rise: float | None = None
    per_minutes: float | None = None
    min_aqi: int | None = None
    silent_minutes: float | None = None
    dedupe_minutes: float | None = None
    min_confidence: float | None = None
    min_events: int | None = None
    window_minutes: float | None = None
    radius_m: float | None = None

    def fields(self) -> dict[str, Any]:
        """The fields this override sets."""
        return self.model_dump(exclude_none=True)


class IOCSiteSpec(_Wire):
    """One IOC replica for an administrative unit (and its subtree)."""

    unit: UnitCodeField = pydantic.Field(description="GSO code of the unit this site serves (immutable).")
    edition: Edition = pydantic.Field(
        "2024", description="Units tree: 2024 (province, district, commune) or 2025 (two tiers); immutable."
    )
    tier: TierName = pydantic.Field(description="Tier of the reference model this site follows.")
    reference_model: ObjectName = pydantic.Field("default", description="Name of the ReferenceModel to follow.")
    parent_ref: ParentRef | None = pydantic.Field(None, description="The site this one reports to; none for a root.")
    modules: list[Module] = pydantic.Field(
        default_factory=list,
        max_length=len(Module),
        description="Domain modules to run; every module the tier allows when empty.",
    )
    dashboard: DashboardSpec = pydantic.Field(default_factory=DashboardSpec)
    retention: RetentionSpec = pydantic.Field(default_factory=RetentionSpec)
    thresholds: dict[RuleId, RuleOverride] = pydantic.Field(
        default_factory=dict,
        max_length=64,
        description="Per-rule overrides of the reference model's thresholds, by rule id; applied to the readings "
        "and camera events of the subtree (for each rule, the deepest site holding a unit that has it decides).",
    )
    workers: WorkersSpec = pydantic.Field(default_factory=WorkersSpec)
    roster: list[Person] = pydantic.Field(
        default_factory=list,
        max_length=200,
        description="The site's people (fallback to the identity provider's roster claims): name, e-mail, roles "
        "(on-duty, officer, lead), team and the unit of the subtree they serve; incidents are assigned to them and "
        "notifications go to them (docs/notifications.md).",
    )
    notifications: NotificationsSpec = pydantic.Field(
        default_factory=NotificationsSpec,
        description="Who is told what: rules (events, modules, severity → roster roles, people, channels), "
        "webhooks, quiet hours and digest (docs/notifications.md).",
    )


class Condition(_Wire):
    """A Kubernetes-style condition: one per provisioned part, plus Ready."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    last_transition_time: str
    observed_generation: int | None = None


class IOCSiteStatus(_Wire):
    """What the operator reports about a site (written by the operator only)."""

    phase: Literal["Pending", "Provisioning", "Ready", "Degraded", "Failed", "Deleting"] | None = None
    observed_generation: int | None = None
    conditions: list[Condition] = pydantic.Field(default_factory=list)
    unit_name: str | None = pydantic.Field(None, description="The unit's full Vietnamese name.")
    path: str | None = pydantic.Field(None, description="The unit's path in its tree (2024 edition).")
    database: str | None = pydantic.Field(
        None, description="ClickHouse database its figures are read from: its own, or the serving site's."
    )
    credentials_secret: str | None = pydantic.Field(
        None, description="Secret with the read-only ClickHouse login (none when served by a parent)."
    )
    dashboard_url: str | None = pydantic.Field(None, description="Its dashboard: its own, or the serving site's.")
    served_by: str | None = pydantic.Field(
        None, description="namespace/name of the site whose dashboard serves this one (unset: its own)."
    )
    config_hash: str | None = pydantic.Field(None, description="Hash of the effective configuration last published.")
    config_offset: int | None = pydantic.Field(
        None, description="Offset of that configuration on ioc.site-config.v1 (workers read past it to hold it)."
    )
    open_incidents: int | None = None
    data_freshness: str | None = pydantic.Field(None, description="Age of the newest data, e.g. 42s, 5m, 3h.")
    data_freshness_seconds: int | None = None
    score766: float | None = pydantic.Field(
        None, description="Decision 766 score of the unit, latest month, re-based on the points measured (of 100)."
    )
    score766_period: str | None = None
    score766_coverage: float | None = pydantic.Field(
        None, description="Points measured behind score766 (of 100); none measured: no score."
    )
    figures_at: str | None = pydantic.Field(None, description="When the figures were last read from ClickHouse.")


class SensorVendorSpec(_Wire):
    """A vendor allowed to publish device data; its id is the object's name (unique across namespaces)."""

    units: list[UnitCodeField] = pydantic.Field(
        min_length=1,
        max_length=200,
        description="2024 unit codes whose devices it may publish for (each with its subtree).",
    )
    kinds: list[MqttKind] = pydantic.Field(
        min_length=1, max_length=len(MQTT_KINDS), description="Device kinds it may publish."
    )
    display_name: str | None = pydantic.Field(None, max_length=200, description="The vendor's name, for people.")
    per_device_credentials: bool = pydantic.Field(
        False,
        description="Also issue each listed device its own MQTT login, allowed to publish only its own topic "
        "(ioc/v1/<unit>/<kind>/<vendor>/<device>); usernames and passwords go into the same Secret.",
    )
    devices: list[DeviceIdField] = pydantic.Field(
        default_factory=list,
        max_length=200,
        description="Device ids given their own login when perDeviceCredentials is true.",
    )

    @pydantic.model_validator(mode="after")
    def _devices_listed(self) -> SensorVendorSpec:
        if self.per_device_credentials and not self.devices:
            raise ValueError("perDeviceCredentials needs the devices to issue logins for")
        return self


class SensorVendorStatus(_Wire):
    """What the operator reports about a vendor."""

    phase: Literal["Pending", "Ready", "Degraded", "Failed"] | None = None
    observed_generation: int | None = None
    conditions: list[Condition] = pydantic.Field(default_factory=list)
    credentials_secret: str | None = None
    topics: list[str] = pydantic.Field(default_factory=list, description="MQTT topic patterns it may publish on.")


_M = TypeVar("_M", bound=pydantic.BaseModel)


class ResourceError(ValueError):
    """A custom resource the operator cannot use; the message names each bad field by its path."""

    def __init__(self, kind: str, errors: list[tuple[str, str]]) -> None:
        self.kind = kind
        self.errors = errors
        super().__init__("; ".join(f"{loc}: {msg}" for loc, msg in errors))


def parse(model: type[_M], data: Any, prefix: str = "spec") -> _M:
    """Validate `data` as `model`, or raise ResourceError naming the fields (`spec.parentRef.tier`)."""
    try:
        return model.model_validate(data or {})
    except pydantic.ValidationError as exc:
        errors = [
            (".".join([prefix, *(str(p) for p in err["loc"])]), str(err["msg"]).removeprefix("Value error, "))
            for err in exc.errors(include_url=False)
        ]
        raise ResourceError(model.__name__, errors) from None
