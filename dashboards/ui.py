"""Widgets the pages share: heading, breadcrumb and drill-down, tables, charts, times, AQI bands, live parts."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import secrets
import zoneinfo
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar, cast

import streamlit as st

from dashboards.auth import Access
from dashboards.context import Context
from dashboards.data import NotAllowed, Rows
from dashboards.sites import UnitOutsideSite, display_name
from ioc import aqi
from ioc.clients.clickhouse import WarehouseError
from ioc.events import MEASURES

# Pages describe a screen by calling these and `SiteData`; the formatting rules live here once (local
# time in Asia/Ho_Chi_Minh, SLA countdowns, AQI band colours from `ioc.aqi`, localised column headers).
# Live sections are Streamlit fragments re-run every `refresh_s` seconds without re-running the page.

__all__ = [
    "BAND_MARKS",
    "LOCAL_TZ",
    "band_hex",
    "band_label",
    "band_name",
    "chart",
    "empty",
    "error_reference",
    "guarded",
    "header",
    "live",
    "local_time",
    "measure_label",
    "reveal_toggle",
    "sla_left",
    "table",
    "unexpected",
    "when",
]

LOCAL_TZ: Final = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")
BAND_MARKS: Final = {1: "🟢", 2: "🟡", 3: "🟠", 4: "🔴", 5: "🟣", 6: "🟤"}
"""A coloured mark per VN_AQI band (Table 1's colours: green, yellow, orange, red, purple, maroon)."""

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger(__name__)


# --- formatting --------------------------------------------------------------------------------------------


def when(value: object) -> str:
    """A time as operators read it: local time, `HH:MM dd/mm/yyyy`; a date as `dd/mm/yyyy`."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y")
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    return "" if value is None else str(value)


def sla_left(ctx: Context, due: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """ "còn 12 phút" / "quá hạn 1 giờ 5 phút": the SLA countdown of an incident or report."""
    if due is None:
        return "—"
    moment = now or ctx.now()  # the data's present (a demo's simulated clock), as the workers count SLAs
    seconds = int((due - moment).total_seconds())
    minutes = abs(seconds) // 60
    hours, minutes = divmod(minutes, 60)
    span = ctx.t("time.hours_minutes", h=hours, m=minutes) if hours else ctx.t("time.minutes", m=minutes)
    return ctx.t("time.left", span=span) if seconds >= 0 else ctx.t("time.overdue", span=span)


def band_label(ctx: Context, index: int | None) -> str:
    """ "🟠 Kém (120)": the AQI with its band's mark and label."""
    if index is None:
        return "—"
    band = aqi.band(int(index))
    return f"{BAND_MARKS[band.level]} {ctx.t.pick(band.label_vi, band.label_en)} ({index})"


def band_name(ctx: Context, index: int | None) -> str | None:
    """The band's label alone ("Kém"), or None without an index."""
    if index is None:
        return None
    band = aqi.band(int(index))
    return ctx.t.pick(band.label_vi, band.label_en)


def band_hex(index: int | None) -> str:
    return "#9E9E9E" if index is None else aqi.band(int(index)).hex


def measure_label(ctx: Context, name: str) -> str:
    measure = MEASURES.get(name)
    return ctx.t.pick(measure.label_vi, measure.label_en) if measure else name


# --- page furniture ----------------------------------------------------------------------------------------


def header(ctx: Context, title_key: str) -> None:
    """The page title, the breadcrumb from the site's unit down, and the drill-down into child units."""
    st.title(ctx.t(title_key))
    crumbs = [u for u in ctx.site.crumbs(ctx.unit) if ctx.may_see(u.code)]
    columns = st.columns(max(len(crumbs), 1) + 2, vertical_alignment="center")
    for column, unit in zip(columns, crumbs, strict=False):
        column.button(
            display_name(unit),
            key=f"crumb-{unit.code}",
            type="primary" if unit.code == ctx.unit else "tertiary",
            on_click=ctx.go_to,
            args=(unit.code,),
            icon=":material/chevron_right:" if unit.code != crumbs[0].code else ":material/home:",
        )
    children = [c for c in ctx.site.children(ctx.unit) if ctx.may_see(c.code)]
    if children:
        names = {c.code: display_name(c) for c in children}
        with columns[-1]:
            st.selectbox(
                ctx.t("common.drill_down"),
                options=list(names),
                index=None,
                format_func=names.__getitem__,
                key=f"drill-{ctx.unit}",
                placeholder=ctx.t("common.drill_down_placeholder"),
                label_visibility="collapsed",
                on_change=_drill,
                args=(ctx, f"drill-{ctx.unit}"),
            )


def _drill(ctx: Context, key: str) -> None:
    code = st.session_state.get(key)
    if isinstance(code, str):
        ctx.go_to(code)


def live(ctx: Context) -> Callable[[F], F]:
    """A decorator making a section re-run on its own every `refresh_s` seconds (a fragment)."""
    every = ctx.settings.refresh_s or None

    def wrap(function: F) -> F:
        # A fragment shows its own exceptions in place (Streamlit's error box); this one shows a friendly
        # message with a reference instead, and the details go to the server's log.
        @functools.wraps(function)
        def safe(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except Exception:  # noqa: BLE001 - a bug in a section must not show its internals to a visitor
                unexpected(ctx)
                return None

        return cast("F", st.fragment(run_every=every)(safe))

    return wrap


def error_reference() -> str:
    """A short random id that ties what a visitor sees to the server's log line, without showing the log."""
    return secrets.token_hex(4)


def unexpected(ctx: Context) -> str:
    """Log the exception being handled under a new reference and show the visitor a friendly message with it."""
    reference = error_reference()
    log.exception("dashboard section failed [%s]", reference)
    st.error(ctx.t("error.unexpected", ref=reference), icon=":material/error:")
    return reference


@contextlib.contextmanager
def guarded(ctx: Context) -> Iterator[None]:
    """Show a data problem as a message in place of the section instead of an exception page."""
    try:
        yield
    except WarehouseError as exc:
        # The server's message names hosts, databases and SQL: it goes to the log, the visitor gets a reference.
        ref = error_reference()
        log.warning("warehouse error [%s]: %s", ref, exc)
        st.error(ctx.t("error.warehouse"), icon=":material/database:")
        st.caption(ctx.t("error.reference", ref=ref))
    except (UnitOutsideSite, NotAllowed) as exc:
        st.warning(ctx.t("error.not_allowed"), icon=":material/lock:")
        st.caption(str(exc))


def empty(ctx: Context, key: str = "common.no_data") -> None:
    st.info(ctx.t(key), icon=":material/info:")


def table(
    ctx: Context,
    rows: Rows,
    columns: Sequence[tuple[str, str]],
    *,
    formats: Mapping[str, Callable[[Any], Any]] | None = None,
    height: int | None = None,
    key: str | None = None,
) -> None:
    """`rows` as a table of the given (field, header key) columns, values passed through `formats`."""
    if not rows:
        empty(ctx)
        return
    shaping = formats or {}
    shown = [
        {
            ctx.t(header_key): shaping[field](row.get(field)) if field in shaping else _plain(row.get(field))
            for field, header_key in columns
        }
        for row in rows
    ]
    st.dataframe(shown, hide_index=True, height=height or "auto", key=key)


def _plain(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return when(value)
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return value


def local_time(value: dt.datetime) -> dt.datetime:
    """A UTC time as a naive local (Asia/Ho_Chi_Minh) one, which charts then draw as the operator reads it."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(LOCAL_TZ).replace(tzinfo=None)


def _chartable(value: object) -> object:
    return local_time(value) if isinstance(value, dt.datetime) else value


def chart(
    ctx: Context,
    kind: str,
    rows: Rows,
    *,
    x: tuple[str, str],
    y: tuple[str, str],
    color: tuple[str, str] | None = None,
    horizontal: bool = False,
) -> None:
    """A line or bar chart of `rows`; axes and legend are (field, header key) pairs shown in the language."""
    if not rows:
        empty(ctx)
        return
    fields = [x, y, *([color] if color else [])]
    data = [{ctx.t(key): _chartable(row[field]) for field, key in fields} for row in rows]
    colour = ctx.t(color[1]) if color else None
    if kind == "line":
        st.line_chart(data, x=ctx.t(x[1]), y=ctx.t(y[1]), color=colour)
    else:
        st.bar_chart(data, x=ctx.t(x[1]), y=ctx.t(y[1]), color=colour, horizontal=horizontal)


def reveal_toggle(ctx: Context, key: str) -> Access | None:
    """For operators of the unit: a switch that reveals personal data in the next table (audited).

    Returns the person's `Access` when switched on (the data layer audits the reveal), else None.
    """
    if not ctx.can_act:
        st.caption(ctx.t("privacy.masked"))
        return None
    on = st.toggle(ctx.t("privacy.reveal"), key=key, help=ctx.t("privacy.reveal_help"))
    return ctx.access if on else None
