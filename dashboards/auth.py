"""Who may see and do what: an official's OIDC claims mapped to the units they may see and their role there.

Pure: the app feeds it `st.user`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from dashboards.sites import Site
from ioc.authz import Grant, Role, format_grants, parse_grants
from ioc.people import Person, roster_from_claims

# The province's identity provider releases one claim (default `ioc_grants`, `DashboardSettings.grants_claim`)
# listing grants as `role@unit`: `viewer@74` lets a person look at everything in Bình Dương, `operator@724`
# lets them act on incidents in Dĩ An and below. A grant at or above the site's unit covers the whole site;
# a grant inside it covers that part only (a ward official signing in to the district's dashboard sees
# their ward). Where grants overlap, the higher role wins for the units both cover. Roles are `viewer`
# (reads; personal data masked) and `operator` (also acts on incidents and may reveal personal data,
# audited). A sign-in lasts until the ID token's `exp` or `session_max_age_s` after it was issued,
# whichever comes first; after that the app signs the person out.

# Role, Grant and parse_grants live in ioc.authz, where the stream workers read the same grants.
__all__ = ["Access", "Grant", "Role", "access_for", "local_access", "parse_grants", "session_expires_at"]


@dataclasses.dataclass(frozen=True)
class Access:
    """What one signed-in person may see and do on this site: the role per granted unit of the site."""

    subject: str
    name: str
    email: str
    grants: Mapping[str, Role]
    site: Site
    local: bool = False
    roster: tuple[Person, ...] = ()
    """The person's own roster entries from their identity provider's roster claim (offered for assignment)."""

    @property
    def actor(self) -> str:
        """How audit records and incident commands name the person: e-mail, else the OIDC subject."""
        return self.email or self.subject

    @property
    def allowed(self) -> bool:
        """Whether the person may see anything of this site."""
        return bool(self.grants)

    @property
    def home(self) -> str:
        """Where the person starts: the site's unit if fully granted (or not at all), else their top granted unit."""
        if self.site.unit in self.grants or not self.grants:
            return self.site.unit
        return min(self.grants, key=lambda code: (len(self.site.tree.ancestors(code)), code))

    def role_at(self, unit: str) -> Role | None:
        """The highest role of the grants covering `unit`, or None when none does."""
        if not self.site.contains(unit):
            return None
        roles = [role for code, role in self.grants.items() if self.site.tree.is_within(unit, code)]
        return max(roles, key=lambda r: r.rank) if roles else None

    def can_see(self, unit: str) -> bool:
        return self.role_at(unit) is not None

    def can_act(self, unit: str) -> bool:
        """Whether the person may act on incidents (and reveal personal data) for `unit`."""
        return self.role_at(unit) is Role.OPERATOR

    @property
    def grant_strings(self) -> tuple[str, ...]:
        """The grants as `role@unit`, cut to the site, as an `IncidentCommand` carries them to the workers."""
        return format_grants(Grant(role, code) for code, role in self.grants.items())

    @property
    def operator_somewhere(self) -> bool:
        return Role.OPERATOR in self.grants.values()


def access_for(
    claims: Mapping[str, Any], site: Site, grants_claim: str = "ioc_grants", roster_claim: str = "ioc_roster"
) -> Access:
    """The access the claims of a signed-in person give on `site` (no grants there: `allowed` is False)."""
    effective: dict[str, Role] = {}
    for grant in parse_grants(claims.get(grants_claim)):
        if grant.unit not in site.tree:
            continue
        if site.tree.is_within(site.unit, grant.unit):
            where = site.unit
        elif site.contains(grant.unit):
            where = grant.unit
        else:
            continue
        current = effective.get(where)
        if current is None or grant.role.rank > current.rank:
            effective[where] = grant.role
    # A grant under another grant of the same or a higher role adds nothing; drop it so `home` is right.
    for code in list(effective):
        covering = [
            role
            for other, role in effective.items()
            if other != code and site.tree.is_within(code, other) and role.rank >= effective[code].rank
        ]
        if covering:
            del effective[code]
    return Access(
        subject=str(claims.get("sub") or ""),
        name=str(claims.get("name") or claims.get("preferred_username") or claims.get("email") or ""),
        email=str(claims.get("email") or ""),
        grants=effective,
        site=site,
        roster=tuple(p for p in roster_from_claims(dict(claims), roster_claim) if p.unit and site.contains(p.unit)),
    )


def local_access(site: Site, role: Role) -> Access:
    """The unauthenticated local user of `ioc dashboard` without an identity provider."""
    return Access(subject="local", name="local", email="", grants={site.unit: role}, site=site, local=True)


def _epoch(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def session_expires_at(claims: Mapping[str, Any], max_age_s: float) -> dt.datetime | None:
    """When a sign-in ends: the ID token's `exp` or `max_age_s` after `auth_time`/`iat`, the earlier one.

    None when the claims carry neither time: such a session is treated as already expired (fail closed).
    """
    candidates: list[float] = []
    exp = _epoch(claims.get("exp"))
    if exp is not None:
        candidates.append(exp)
    issued = _epoch(claims.get("auth_time")) or _epoch(claims.get("iat"))
    if issued is not None:
        candidates.append(issued + max_age_s)
    if not candidates:
        return None
    return dt.datetime.fromtimestamp(min(candidates), dt.UTC)
