"""Public-service dossiers (hồ sơ thủ tục hành chính) as the one-stop system reports them: pure and seeded.

`dossier_events` gives one dossier's whole life as `ServiceRecord` snapshots with increasing
`status_version`: received (online or at the one-stop desk) → in progress → (supplement requested →
in progress) → processed or returned, and sometimes a later snapshot carrying the citizen's
satisfaction. A ward's `DossierProfile` decides how often it is late, offline, paper-bound or out of
sync with the national portal, which is what the Decision 766 scorecard ranks (SCENARIOS.md story 4).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Mapping
from typing import Any, Final, Literal

import msgspec

from ioc.events import DossierChannel, DossierStatus, ServiceRecord
from sensors.simulators.fleet import DossierProfile
from sensors.simulators.generators import LOCAL_TZ

__all__ = [
    "PROCEDURES",
    "PROFILES",
    "Procedure",
    "ProfileRates",
    "add_working_days",
    "dossier_events",
    "working_time",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Procedure:
    """A commune-level administrative procedure (TTHC)."""

    code: str
    name_vi: str
    working_days: int  # the statutory time limit, which sets due_at
    fee: bool  # whether it charges a fee (so online payment applies)
    fully_online: bool  # whether the portal offers it end to end (toàn trình)
    weight: float  # how common it is at a ward's desk


# Codes follow the national procedure catalogue's format; they are illustrative, not looked up.
PROCEDURES: Final[tuple[Procedure, ...]] = (
    Procedure("1.001193", "Đăng ký khai sinh", 1, fee=False, fully_online=True, weight=25),
    Procedure("2.000908", "Chứng thực bản sao từ bản chính", 1, fee=True, fully_online=False, weight=30),
    Procedure("2.000884", "Chứng thực chữ ký", 1, fee=True, fully_online=False, weight=10),
    Procedure("1.004227", "Cấp giấy xác nhận tình trạng hôn nhân", 3, fee=False, fully_online=True, weight=12),
    Procedure("1.000894", "Đăng ký kết hôn", 3, fee=False, fully_online=False, weight=6),
    Procedure("1.001022", "Đăng ký khai tử", 1, fee=False, fully_online=True, weight=4),
    Procedure("1.004873", "Cấp bản sao trích lục hộ tịch", 1, fee=True, fully_online=True, weight=8),
    Procedure("1.005461", "Xác nhận hồ sơ hưởng trợ cấp xã hội", 7, fee=False, fully_online=False, weight=5),
)


@dataclasses.dataclass(frozen=True, slots=True)
class ProfileRates:
    """How a ward handles dossiers: shares between 0 and 1."""

    online: float  # submitted online rather than at the desk
    digitised: float  # desk dossiers scanned into the system
    paid_online: float  # fees paid online among online dossiers (desk payers mostly pay cash)
    late: float  # finished after due_at
    supplement: float  # the ward asks the citizen for more documents
    synced: float  # status synced to Cổng DVCQG
    result_digital: float  # result issued electronically
    rated: float  # the citizen leaves a satisfaction rating


PROFILES: Final[Mapping[DossierProfile, ProfileRates]] = {
    "typical": ProfileRates(0.78, 0.88, 0.8, 0.04, 0.08, 0.98, 0.85, 0.6),
    "late": ProfileRates(0.7, 0.75, 0.7, 0.38, 0.2, 0.93, 0.7, 0.6),
    "offline": ProfileRates(0.22, 0.4, 0.35, 0.08, 0.1, 0.8, 0.35, 0.5),
}

Satisfaction = Literal["satisfied", "neutral", "unsatisfied"]

_OPEN: Final = dt.time(7, 30)
_CLOSE: Final = dt.time(17, 0)


def working_time(at: dt.datetime) -> dt.datetime:
    """`at` if the office is open then, else the next opening (07:30, Monday to Friday, local time)."""
    local = at.astimezone(LOCAL_TZ)
    if local.weekday() < 5 and _OPEN <= local.time() <= _CLOSE:
        return local
    day = local.date() if local.time() < _OPEN else local.date() + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, _OPEN, tzinfo=LOCAL_TZ)


def add_working_days(at: dt.datetime, days: int) -> dt.datetime:
    """The promised return date: `days` working days after `at`, at 17:00 (weekends skipped; holidays not)."""
    day = at.astimezone(LOCAL_TZ).date()
    left = days
    while left > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return dt.datetime.combine(day, _CLOSE, tzinfo=LOCAL_TZ)


def _rating(rng: random.Random, late: bool) -> Satisfaction:
    r = rng.random()
    if late:
        return "unsatisfied" if r < 0.5 else "neutral" if r < 0.8 else "satisfied"
    return "satisfied" if r < 0.88 else "neutral" if r < 0.97 else "unsatisfied"


def _hours(rng: random.Random, low: float, high: float) -> dt.timedelta:
    return dt.timedelta(hours=rng.uniform(low, high))


def dossier_events(
    rng: random.Random, *, dossier_id: str, unit: str, profile: DossierProfile, received_at: dt.datetime
) -> list[ServiceRecord]:
    """One dossier's snapshots in order, from its receipt to its result (and rating)."""
    rates = PROFILES[profile]
    procedure = rng.choices(PROCEDURES, weights=[p.weight for p in PROCEDURES])[0]
    channel = DossierChannel.ONLINE if rng.random() < rates.online else DossierChannel.ONE_STOP_DESK
    online = channel is DossierChannel.ONLINE
    if not online:
        received_at = working_time(received_at)  # the desk takes dossiers in office hours only
    received_at = received_at.astimezone(LOCAL_TZ).replace(microsecond=0)
    paid_online = procedure.fee and rng.random() < (rates.paid_online if online else 0.1)
    first = ServiceRecord(
        dossier_id=dossier_id,
        status_version=1,
        unit=unit,
        procedure_code=procedure.code,
        status=DossierStatus.RECEIVED,
        channel=channel,
        received_at=received_at,
        due_at=add_working_days(received_at, procedure.working_days),
        occurred_at=received_at,
        fully_online=online and procedure.fully_online and rng.random() < 0.85,
        requires_payment=procedure.fee,
        paid_online=paid_online,
        digitised=online,  # an online dossier is digital from the start; a desk one once scanned
        synced_to_national_portal=rng.random() < rates.synced,
    )
    records = [first]

    def emit(status: DossierStatus, at: dt.datetime, **changes: Any) -> None:
        # Each snapshot is the previous one with the change applied: unchanged fields stay consistent.
        previous = records[-1]
        records.append(
            msgspec.structs.replace(
                previous, status_version=previous.status_version + 1, status=status, occurred_at=at, **changes
            )
        )

    at = working_time(received_at + _hours(rng, 0.3, 3.0))
    emit(DossierStatus.IN_PROGRESS, at, digitised=online or rng.random() < rates.digitised)
    supplements, waited = 0, 0.0
    while rng.random() < (rates.supplement if supplements == 0 else 0.15):
        supplements += 1
        asked = working_time(at + _hours(rng, 1.0, 20.0))
        emit(DossierStatus.SUPPLEMENT_REQUESTED, asked, supplement_count=supplements)
        at = working_time(asked + dt.timedelta(days=rng.uniform(0.5, 3.0)))
        waited += (at - asked).total_seconds() / 86400.0
        emit(DossierStatus.IN_PROGRESS, at, supplement_days=round(waited, 3))
        if supplements >= 2:
            break
    deadline = first.due_at + dt.timedelta(days=waited)  # the wait for the citizen does not count
    if rng.random() < rates.late:
        finished = working_time(deadline + dt.timedelta(days=rng.uniform(0.3, 4.0)))
    else:
        room = max(0.0, (deadline - at).total_seconds())
        finished = min(working_time(at + dt.timedelta(seconds=rng.uniform(0.1, 0.9) * room)), deadline)
    finished = max(finished, at + dt.timedelta(minutes=10)).replace(microsecond=0)
    if rng.random() < 0.03:
        # Refused and handed back to the citizen without a result (trả lại hồ sơ).
        emit(DossierStatus.RETURNED, finished, finished_at=finished, result_digital=False)
    else:
        emit(
            DossierStatus.PROCESSED, finished, finished_at=finished, result_digital=rng.random() < rates.result_digital
        )
    if rng.random() < rates.rated:
        overdue = finished > deadline or supplements > 1
        rated_at = (finished + _hours(rng, 0.5, 30.0)).replace(microsecond=0)
        emit(records[-1].status, rated_at, satisfaction=_rating(rng, overdue))
    return records
