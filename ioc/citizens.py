"""Events from people and public services: citizens' field reports and the one-stop portal's dossier snapshots.

Part of the event contracts (`ioc.events` re-exports every name here); the citizen API produces reports,
the portal gateway (`sensors.gateways`) produces service records.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Literal

import msgspec

from ioc.fields import AwareTime, Contract, Identifier, Latitude, Longitude, UnitCode

__all__ = ["CitizenReport", "Contact", "DossierChannel", "DossierStatus", "ServiceRecord"]


class Contact(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A reporter's contact details: personal data, masked for viewers and on public pages."""

    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    phone: Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9 .-]{6,20}$")] | None = None
    email: Annotated[str, msgspec.Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None


class CitizenReport(Contract, tag="ioc.citizen-report.v1", frozen=True):
    """A citizen's field report (phản ánh hiện trường): what, where, in their words."""

    report_id: Identifier
    source: Literal["app", "open311", "hotline", "web", "social"]
    category: Annotated[
        str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{1,63}$", description="Category from the reference model.")
    ]
    unit: UnitCode
    submitted_at: AwareTime
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
    lat: Latitude | None = None
    lon: Longitude | None = None
    address: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    media_urls: Annotated[list[Annotated[str, msgspec.Meta(max_length=2048)]], msgspec.Meta(max_length=10)] = (
        msgspec.field(default_factory=list)
    )
    contact: Contact | None = None


class DossierStatus(enum.StrEnum):
    """Where a public-service dossier (hồ sơ thủ tục hành chính) stands."""

    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    SUPPLEMENT_REQUESTED = "supplement_requested"
    PROCESSED = "processed"
    RETURNED = "returned"
    WITHDRAWN = "withdrawn"


class DossierChannel(enum.StrEnum):
    """How the dossier was submitted."""

    ONLINE = "online"
    ONE_STOP_DESK = "one_stop_desk"
    POSTAL = "postal"


class ServiceRecord(Contract, tag="ioc.service-record.v1", frozen=True):
    """A public-service dossier's state after one status change, as the one-stop system reports it.

    Each record is a full snapshot, numbered by `status_version`, so replays and out-of-order delivery
    collapse to the highest version per dossier.
    """

    dossier_id: Identifier
    status_version: Annotated[int, msgspec.Meta(ge=0)]
    unit: UnitCode
    procedure_code: Annotated[str, msgspec.Meta(max_length=64, description="TTHC code of the procedure.")]
    status: DossierStatus
    channel: DossierChannel
    received_at: AwareTime
    due_at: Annotated[dt.datetime, msgspec.Meta(tz=True, description="Promised return date (ngày hẹn trả).")]
    occurred_at: AwareTime
    finished_at: AwareTime | None = None
    fully_online: bool = False
    requires_payment: bool = False
    paid_online: bool = False
    digitised: bool = False
    result_digital: bool = False
    supplement_count: Annotated[int, msgspec.Meta(ge=0)] = 0
    supplement_days: Annotated[
        float,
        msgspec.Meta(ge=0, description="Days spent waiting for the citizen; not counted against the deadline."),
    ] = 0.0
    synced_to_national_portal: bool = True
    satisfaction: Literal["satisfied", "neutral", "unsatisfied"] | None = None

    def __post_init__(self) -> None:
        if self.due_at < self.received_at:
            raise ValueError("`due_at` is before `received_at` - at `$.due_at`")
        if self.paid_online and not self.requires_payment:
            raise ValueError("`paid_online` is set on a dossier that `requires_payment` false - at `$.paid_online`")
        finished = self.status in (DossierStatus.PROCESSED, DossierStatus.RETURNED)
        if finished and self.finished_at is None:
            raise ValueError(f"a {self.status.value} dossier needs `finished_at` - at `$.finished_at`")
