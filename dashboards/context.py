"""What every page of one run needs: the site, the person, the language, the unit being looked at, the data."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable
from typing import Final

import streamlit as st

from dashboards.audit import AuditLog
from dashboards.auth import Access
from dashboards.data import SiteData, warehouse_for
from dashboards.i18n import Translator
from dashboards.sites import Site
from ioc.clock import clock_from
from ioc.settings import DashboardSettings

# The entry script (`dashboards.app`) builds a `Context` at the top of every run and keeps it in the
# session; pages fetch it with `current()`. The unit being looked at lives in the session too, so a
# drill-down on the overview carries over to every other page, and it is re-checked against the site and
# the person's grants on every run (a stale or forged value falls back to their home unit).

__all__ = ["UNIT_KEY", "Context", "current", "install", "installed"]

UNIT_KEY: Final = "ioc.unit"
_CONTEXT_KEY: Final = "ioc.context"


@dataclasses.dataclass
class Context:
    """One run's view: `access` is None for a member of the public (public page, sign-in page only)."""

    settings: DashboardSettings
    site: Site
    t: Translator
    access: Access | None
    audit: AuditLog

    @property
    def home(self) -> str:
        return self.access.home if self.access is not None else self.site.unit

    def may_see(self, code: str) -> bool:
        if not self.site.contains(code):
            return False
        return self.access is None or self.access.can_see(code)

    @property
    def unit(self) -> str:
        """The unit being looked at (the site's unit or one below it that the person may see)."""
        code = st.session_state.get(UNIT_KEY)
        if not isinstance(code, str) or not self.may_see(code):
            code = self.home
            st.session_state[UNIT_KEY] = code
        return code

    def go_to(self, code: str) -> None:
        """Look at `code` from now on (ignored unless the person may see it)."""
        if self.may_see(code):
            st.session_state[UNIT_KEY] = code

    @property
    def can_act(self) -> bool:
        """Whether the person may act on incidents of the unit being looked at."""
        return self.access is not None and self.access.can_act(self.unit)

    @functools.cached_property
    def clock(self) -> Callable[[], float]:
        """The site's "now" in Unix seconds (ioc.clock): real time, or a demo's simulated clock, for every page."""
        s = self.settings
        return clock_from(s.clock_start, s.clock_speed, s.clock_anchor, s.clock_fast_s)

    def now(self) -> dt.datetime:
        """The present the pages show (UTC), without touching the warehouse."""
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    @functools.cached_property
    def data(self) -> SiteData:
        return SiteData(
            warehouse_for(self.settings),
            self.site,
            live_ttl_s=self.settings.query_ttl_s,
            slow_ttl_s=self.settings.slow_query_ttl_s,
            audit=self.audit,
            snapshots_dir=self.settings.snapshots_dir,
            clock=self.clock,
        )


def install(context: Context) -> None:
    """Make `context` this run's context."""
    st.session_state[_CONTEXT_KEY] = context


def current() -> Context:
    """This run's context (set by the entry script before any page runs)."""
    context = st.session_state.get(_CONTEXT_KEY)
    if not isinstance(context, Context):
        raise RuntimeError("no dashboard context: run the app through dashboards/app.py")
    return context


def installed() -> Context | None:
    """This run's context if the entry script got as far as installing one (error pages use it)."""
    context = st.session_state.get(_CONTEXT_KEY)
    return context if isinstance(context, Context) else None
