"""Environment: air quality now and over the day, pollutant trends, flood gauges against alert levels."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboards import mapview, ui
from dashboards.context import current

__all__: list[str] = []

ctx = current()
t = ctx.t
ui.header(ctx, "environment.title")

hours = st.segmented_control(
    t("common.period"),
    options=[6, 24, 72],
    format_func=lambda h: t("common.last_hours", h=h),
    default=24,
    key="environment-hours",
    required=True,
)
assert isinstance(hours, int)
air, water = st.tabs([t("environment.air_tab"), t("environment.water_tab")])

with air:

    @ui.live(ctx)
    def air_now() -> None:
        with ui.guarded(ctx):
            st.subheader(t("environment.aqi_now"))
            stations = ctx.data.aqi_stations(ctx.unit)
            mapview.show(ctx, mapview.stations(ctx, stations))
            ui.table(
                ctx,
                stations,
                [
                    ("place", "col.place"),
                    ("device_key", "col.station"),
                    ("aqi", "col.aqi"),
                    ("dominant", "col.dominant"),
                    ("latest_hour", "col.hour"),
                ],
                formats={"aqi": lambda v: ui.band_label(ctx, v), "dominant": lambda v: ui.measure_label(ctx, v)},
            )

    air_now()

    with ui.guarded(ctx):
        st.subheader(t("environment.aqi_trend"))
        trend = ctx.data.aqi_trend(ctx.unit, hours=hours)
        ui.chart(ctx, "line", trend, x=("hour", "col.hour"), y=("aqi", "col.aqi"), color=("place", "col.place"))
        st.subheader(t("environment.pollutants"))
        pollutants = [
            {**row, "measure": ui.measure_label(ctx, row["measure"])}
            for row in ctx.data.pollutant_trend(ctx.unit, hours=hours)
        ]
        ui.chart(
            ctx,
            "line",
            pollutants,
            x=("window_start", "col.time"),
            y=("mean", "col.concentration"),
            color=("measure", "col.pollutant"),
        )

with water:

    @ui.live(ctx)
    def gauges() -> None:
        with ui.guarded(ctx):
            st.subheader(t("environment.gauges"))
            levels = ctx.data.water_levels(ctx.unit)
            ui.table(
                ctx,
                levels,
                [
                    ("status", "col.status"),
                    ("place", "col.place"),
                    ("device_key", "col.gauge"),
                    ("level", "col.level_m"),
                    ("alert_level", "col.alert_level_m"),
                    ("peak", "col.peak_m"),
                    ("last_at", "col.last_report"),
                ],
                formats={"status": lambda v: t(f"gauge.{v}")},
            )
            trend = ctx.data.water_trend(ctx.unit, hours=min(hours, 24))
            if trend and levels:
                alert = levels[0]["alert_level"]
                lines = (
                    alt.Chart({"values": [{**r, "at": ui.local_time(r["at"]).isoformat()} for r in trend]})
                    .mark_line()
                    .encode(
                        x=alt.X("at:T", title=t("col.time")),
                        y=alt.Y("level:Q", title=t("col.level_m")),
                        color=alt.Color(
                            "series:N", title=t("col.place") if ctx.site.children(ctx.unit) else t("col.gauge")
                        ),
                    )
                )
                rule = (
                    alt.Chart({"values": [{"alert": alert}]})
                    .mark_rule(color="#C62828", strokeDash=[6, 4])
                    .encode(y="alert:Q")
                )
                st.altair_chart(lines + rule)
                st.caption(t("environment.alert_line", level=alert))

    gauges()
