"""The app's frame around every page: language switch, sign-in gate, session expiry, sidebar and navigation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Final

import streamlit as st

from dashboards import auth
from dashboards.audit import AuditLog
from dashboards.context import Context, current
from dashboards.i18n import LANGUAGES, Language, Translator, language
from dashboards.sites import PAGE_MODULES, Site, display_name
from ioc import workdays
from ioc.settings import DashboardSettings

# Signed-in officials get the pages of their site's tier (the reference model's modules); a member of the
# public gets only the public page, and only where the site enables it; anyone else gets the sign-in page.
# Without an identity provider configured (`ioc dashboard` on a laptop) a local user with
# `DashboardSettings.local_role` stands in, and the sidebar says so.

__all__ = ["LANGUAGE_KEY", "PAGES", "PROVIDER", "frame", "pages_for"]

PROVIDER: Final = "ioc"
"""The provider section name in the generated secrets (`[auth.ioc]`): the province's identity provider."""
LANGUAGE_KEY: Final = "ioc.lang"
_SIGNED_IN_KEY: Final = "ioc.signed-in"
# Not "pages/": next to the entry script that name also switches on Streamlit's older directory-based
# multipage mode, under which AppTest re-runs a page file without the entry script (and its sign-in gate).
_PAGES_DIR: Final = Path(__file__).parent / "screens"

PAGES: Final[tuple[tuple[str, str], ...]] = (
    ("overview", ":material/dashboard:"),
    ("environment", ":material/air:"),
    ("traffic", ":material/traffic:"),
    ("incidents", ":material/emergency:"),
    ("reports", ":material/campaign:"),
    ("services", ":material/account_balance:"),
    ("quality", ":material/sensors:"),
    ("public", ":material/public:"),
)
"""Every page file (dashboards/screens/<name>.py) in menu order, with its icon."""


def _language(settings: DashboardSettings) -> Language:
    default = language(settings.language)
    if LANGUAGE_KEY not in st.session_state:
        st.session_state[LANGUAGE_KEY] = default
    chosen = st.sidebar.segmented_control(
        "Ngôn ngữ / Language",
        options=list(LANGUAGES),
        format_func=lambda code: "Tiếng Việt" if code == "vi" else "English",
        key=LANGUAGE_KEY,
        required=True,
    )
    return language(chosen, default)


def _claims() -> dict[str, Any]:
    return dict(st.user.to_dict())


def _access(settings: DashboardSettings, site: Site, t: Translator, audit: AuditLog) -> auth.Access | None:
    """The signed-in person's access, None for the public; signs out an expired session (and stops)."""
    if settings.oidc_metadata_url is None:
        if settings.local_role is None:
            return None
        return auth.local_access(site, auth.Role(settings.local_role))
    claims = _claims()
    if not claims.get("is_logged_in"):
        st.session_state.pop(_SIGNED_IN_KEY, None)
        return None
    access = auth.access_for(claims, site, settings.grants_claim, settings.roster_claim)
    expires = auth.session_expires_at(claims, settings.session_max_age_s)
    if expires is None or dt.datetime.now(dt.UTC) >= expires:
        audit.record(access.actor, site.unit, "session-expired", expired_at=str(expires))
        st.session_state.pop(_SIGNED_IN_KEY, None)
        st.warning(t("auth.expired"), icon=":material/timer_off:")
        st.logout()
        st.stop()
    if not st.session_state.get(_SIGNED_IN_KEY):
        st.session_state[_SIGNED_IN_KEY] = True
        audit.record(
            access.actor,
            site.unit,
            "sign-in",
            subject=access.subject,
            grants={code: role.value for code, role in access.grants.items()},
        )
    return access


def _sign_out(actor: str, site: str, audit: AuditLog) -> None:
    audit.record(actor, site, "sign-out")
    st.session_state.pop(_SIGNED_IN_KEY, None)
    st.logout()


def _sidebar(ctx: Context) -> None:
    t = ctx.t
    with st.sidebar:
        st.markdown(f"### {t('app.name')}")
        st.caption(t("app.site", name=display_name(ctx.site.root), code=ctx.site.unit))
        if ctx.access is None:
            if ctx.settings.oidc_metadata_url is not None:
                st.button(t("auth.sign_in"), icon=":material/login:", on_click=st.login, args=(PROVIDER,))
            return
        role = ctx.access.role_at(ctx.unit)
        who = t("auth.local_user") if ctx.access.local else ctx.access.name or ctx.access.actor
        st.caption(t("auth.signed_in_as", name=who, role=t(f"role.{role.value}") if role else "—"))
        if ctx.access.local:
            st.caption(t("auth.local_notice"))
        else:
            st.button(
                t("auth.sign_out"),
                icon=":material/logout:",
                on_click=_sign_out,
                args=(ctx.access.actor, ctx.site.unit, ctx.audit),
            )


def _today() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _calendar_banner(ctx: Context) -> None:
    """A warning above every official's page once the working-day calendar is about to run out (or has).

    Past its last year, SLA deadlines in working days count weekends only; the operator's Calendar condition
    says the same to platform engineers.
    """
    coverage = workdays.default_calendar().coverage(_today())
    if coverage.state == "ending-soon":
        text = ctx.t(
            "app.calendar_ending", year=coverage.last_year, days=coverage.days_left, next=coverage.last_year + 1
        )
    elif coverage.state == "not-covered":
        text = ctx.t("app.calendar_missing", year=coverage.year, first=coverage.first_year, last=coverage.last_year)
    else:
        return
    st.warning(text, icon=":material/event_busy:")


def _sign_in_page() -> None:
    ctx = current()
    st.title(ctx.t("auth.title"))
    if ctx.settings.oidc_metadata_url is None:
        st.info(ctx.t("auth.not_configured"), icon=":material/lock:")
        return
    st.write(ctx.t("auth.explain", site=display_name(ctx.site.root)))
    st.button(ctx.t("auth.sign_in"), type="primary", icon=":material/login:", on_click=st.login, args=(PROVIDER,))


def _denied_page() -> None:
    ctx = current()
    st.title(ctx.t("auth.denied_title"))
    st.warning(ctx.t("auth.denied", site=display_name(ctx.site.root)), icon=":material/block:")


def _page(ctx: Context, name: str, icon: str, *, default: bool = False) -> Any:
    return st.Page(_PAGES_DIR / f"{name}.py", title=ctx.t(f"nav.{name}"), icon=icon, url_path=name, default=default)


def pages_for(ctx: Context) -> list[Any]:
    """The pages this person may open on this site, in menu order."""
    if ctx.access is None:
        if ctx.site.public:
            return [_page(ctx, "public", ":material/public:", default=True)]
        return [st.Page(_sign_in_page, title=ctx.t("nav.sign_in"), icon=":material/login:", url_path="signin")]
    if not ctx.access.allowed:
        return [st.Page(_denied_page, title=ctx.t("nav.denied"), icon=":material/block:", url_path="denied")]
    chosen = []
    for name, icon in PAGES:
        module = PAGE_MODULES.get(name)
        if module is not None and not ctx.site.serves(module):
            continue
        if name == "public" and not ctx.site.public:
            continue
        chosen.append(_page(ctx, name, icon, default=name == "overview"))
    return chosen


def frame(settings: DashboardSettings, audit: AuditLog) -> tuple[Context, list[Any]]:
    """Everything around the page for one run: returns the run's context and the pages to navigate."""
    site = Site.from_settings(settings)
    st.set_page_config(page_title="IOC", page_icon=":material/monitoring:", layout="wide")
    t = Translator(_language(settings))
    access = _access(settings, site, t, audit)
    ctx = Context(settings=settings, site=site, t=t, access=access, audit=audit)
    _sidebar(ctx)
    if access is not None and access.allowed:
        _calendar_banner(ctx)
    return ctx, pages_for(ctx)
