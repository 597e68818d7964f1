"""Widgets of the pages that show time series: the date range, CSV/Parquet export, and readable charts.

Next to `ui` (tables, maps, labels): a page asks `date_range` for its window (today by default, any range the
person picks, checked by `dashboards.data.history.day_window`), draws its series with `aqi_chart` (VN_AQI over
Decision 1459's band colours, from `ioc.aqi.BANDS`) or `measure_charts` (one chart, one axis per measure and
its unit, so CO's thousands of µg/m³ never flatten PM2.5), and offers what it shows for download with
`exports` (masked by role and audited by the data layer). Every title and legend comes from the page's language.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

import altair as alt
import streamlit as st

from dashboards import ui
from dashboards.context import Context
from dashboards.data import Rows
from dashboards.data.history import EXPORT_FORMATS, LOCAL_TZ, BadRange, ExportFormat, Window, day_window
from ioc import aqi
from ioc.events import MEASURES

__all__ = ["aqi_chart", "date_range", "exports", "measure_charts"]

_CHART_HEIGHT: Final = 260
_TIME_FORMAT: Final = "%d/%m %Hh"
"""Time labels as both languages write them here (day/month, 24-hour), not Vega's English "Mon 07 08 AM"."""
_SMALL_HEIGHT: Final = 190


def date_range(ctx: Context, key: str) -> Window | None:
    """From/to date inputs (today by default, on the data's clock); None, with the reason shown, when invalid."""
    t = ctx.t
    today = ctx.now().astimezone(LOCAL_TZ).date()
    first_column, last_column, _ = st.columns([1, 1, 3])
    first = first_column.date_input(t("history.from"), value=today, key=f"{key}-from", format="DD/MM/YYYY")
    last = last_column.date_input(t("history.to"), value=today, key=f"{key}-to", format="DD/MM/YYYY")
    if not isinstance(first, dt.date) or not isinstance(last, dt.date):
        st.warning(t("history.incomplete"), icon=":material/date_range:")
        return None
    try:
        return day_window(first, last, today=today)
    except BadRange as exc:
        st.warning(t(f"history.{exc.reason}", days=exc.days), icon=":material/date_range:")
        return None


def exports(
    ctx: Context,
    name: str,
    rows: Rows,
    columns: Sequence[tuple[str, str]],
    *,
    window: Window | None = None,
    revealed: bool = False,
) -> None:
    """CSV and Parquet downloads of `rows` as the page shows them (the same columns, headers in its language).

    Personal data stays masked unless the person revealed it as an operator of the unit; each download is a
    line in the audit log (`SiteData.record_export`).
    """
    if not rows:
        return
    headed = [(field, ctx.t(header_key)) for field, header_key in columns]
    stamp = ctx.now().astimezone(LOCAL_TZ).strftime("%Y%m%d-%H%M")
    formats: tuple[ExportFormat, ...] = ("csv", "parquet")
    row = st.container(horizontal=True)
    for fmt in formats:
        row.download_button(
            ctx.t(f"history.export_{fmt}"),
            data=ctx.data.export_file(ctx.unit, rows, headed, fmt, access=ctx.access, revealed=revealed),
            file_name=f"{name}-{ctx.unit}-{stamp}.{fmt}",
            mime=EXPORT_FORMATS[fmt],
            key=f"export-{name}-{fmt}",
            on_click=ctx.data.record_export,
            args=(ctx.unit, name, fmt),
            kwargs={"access": ctx.access, "rows": len(rows), "revealed": revealed, "window": window},
            icon=":material/download:",
            help=ctx.t("history.export_help"),
        )


def _band_layer(ctx: Context, top: float) -> alt.Chart:
    """Decision 1459's bands as coloured stripes behind a chart, up to the band holding `top`."""
    shown = [b for b in aqi.BANDS if b.low <= top]
    labels = [f"{b.low}–{b.high} {ctx.t.pick(b.label_vi, b.label_en)}" for b in shown]
    stripes = [{"low": b.low, "high": b.high, "band": label} for b, label in zip(shown, labels, strict=True)]
    layer: alt.Chart = (
        alt.Chart({"values": stripes})
        .mark_rect(opacity=0.28)
        .encode(
            y=alt.Y("low:Q"),
            y2="high:Q",
            color=alt.Color(
                "band:N",
                title=ctx.t("history.aqi_band"),
                scale=alt.Scale(domain=labels, range=[b.hex for b in shown]),
                sort=labels,
            ),
        )
    )
    return layer


def aqi_chart(ctx: Context, rows: Rows, *, x: str = "hour", series: str = "place") -> None:
    """VN_AQI per hour, one line per `series`, over the 1459 band colours (legend and axes in the language)."""
    if not rows:
        ui.empty(ctx)
        return
    values = [
        {"at": ui.local_time(r[x]).isoformat(), "aqi": r["aqi"], "series": str(r[series])}
        for r in rows
        if r.get("aqi") is not None
    ]
    top = max(float(v["aqi"]) for v in values) if values else 0.0
    lines = (
        alt.Chart({"values": values})
        .mark_line(point=True, strokeWidth=2)
        .encode(
            x=alt.X("at:T", title=ctx.t("col.hour"), axis=alt.Axis(format=_TIME_FORMAT)),
            y=alt.Y("aqi:Q", title=ctx.t("col.aqi"), scale=alt.Scale(domainMin=0)),
            color=alt.Color("series:N", title=ctx.t("col.place"), scale=alt.Scale(scheme="dark2")),
            tooltip=[
                alt.Tooltip("series:N", title=ctx.t("col.place")),
                alt.Tooltip("at:T", title=ctx.t("col.hour"), format="%H:%M %d/%m"),
                alt.Tooltip("aqi:Q", title=ctx.t("col.aqi")),
            ],
        )
    )
    layered = (
        alt.layer(_band_layer(ctx, top), lines).resolve_scale(color="independent").properties(height=_CHART_HEIGHT)
    )
    st.altair_chart(layered, use_container_width=True)


def measure_axis(ctx: Context, measure: str) -> str:
    """A measure's axis title with its unit of measure: "Bụi PM2.5 (µg/m³)"."""
    known = MEASURES.get(measure)
    return f"{ui.measure_label(ctx, measure)} ({known.unit})" if known else measure


def measure_charts(ctx: Context, rows: Rows, *, x: str, y: str, per_row: int = 3) -> None:
    """One small chart per measure in `rows` (`measure` codes), each on its own axis titled with its unit."""
    if not rows:
        ui.empty(ctx)
        return
    by_measure: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_measure.setdefault(str(row["measure"]), []).append(
            {"at": ui.local_time(row[x]).isoformat(), "value": row[y]}
        )
    ordered = [m for m in (*aqi.POLLUTANTS, *sorted(by_measure)) if m in by_measure]
    ordered = list(dict.fromkeys(ordered))
    for start in range(0, len(ordered), per_row):
        for column, measure in zip(st.columns(per_row), ordered[start : start + per_row], strict=False):
            title = measure_axis(ctx, measure)
            chart = (
                alt.Chart({"values": by_measure[measure]}, title=ui.measure_label(ctx, measure))
                .mark_line(strokeWidth=2)
                .encode(
                    x=alt.X("at:T", title=ctx.t("col.time"), axis=alt.Axis(format=_TIME_FORMAT)),
                    y=alt.Y("value:Q", title=title, scale=alt.Scale(zero=False)),
                    tooltip=[
                        alt.Tooltip("at:T", title=ctx.t("col.time"), format="%H:%M %d/%m"),
                        alt.Tooltip("value:Q", title=title, format=".1f"),
                    ],
                )
                .properties(height=_SMALL_HEIGHT)
            )
            column.altair_chart(chart, use_container_width=True)
