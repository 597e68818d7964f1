"""Environment: air quality now and over the day, pollutant trends, flood gauges against alert levels."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboards import mapview, timeseries, ui
from dashboards.context import current

__all__: list[str] = []

ctx = current()
t = ctx.t
ui.header(ctx, "environment.title")

window = timeseries.date_range(ctx, "environment-range")
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

    if window is not None:
        with ui.guarded(ctx):
            st.subheader(t("environment.aqi_trend"))
            trend = ctx.data.aqi_trend(ctx.unit, window=window)
            timeseries.aqi_chart(ctx, trend)
            timeseries.exports(
                ctx,
                "aqi-hourly",
                trend,
                [("hour", "col.hour"), ("place", "col.place"), ("aqi", "col.aqi")],
                window=window,
            )
            st.subheader(t("environment.pollutants"))
            pollutants = ctx.data.pollutant_trend(ctx.unit, window=window)
            timeseries.measure_charts(ctx, pollutants, x="window_start", y="mean")
            timeseries.exports(
                ctx,
                "pollutants",
                pollutants,
                [
                    ("window_start", "col.time"),
                    ("measure", "col.pollutant"),
                    ("mean", "history.mean"),
                    ("peak", "history.peak"),
                ],
                window=window,
            )

with water:

    @ui.live(ctx)
    def gauges() -> None:
        with ui.guarded(ctx):
            st.subheader(t("environment.gauges"))
            ui.table(
                ctx,
                ctx.data.water_levels(ctx.unit),
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

    gauges()

    if window is not None:
        with ui.guarded(ctx):
            trend = ctx.data.water_trend(ctx.unit, window=window)
            series = t("col.place") if ctx.site.children(ctx.unit) else t("col.gauge")
            if trend:
                alert = ctx.site.threshold("flood-level").above
                lines = (
                    alt.Chart({"values": [{**r, "at": ui.local_time(r["at"]).isoformat()} for r in trend]})
                    .mark_line()
                    .encode(
                        x=alt.X("at:T", title=t("col.time"), axis=alt.Axis(format="%d/%m %Hh")),
                        y=alt.Y("level:Q", title=t("col.level_m")),
                        color=alt.Color("series:N", title=series),
                    )
                )
                rule = (
                    alt.Chart({"values": [{"alert": alert}]})
                    .mark_rule(color="#C62828", strokeDash=[6, 4])
                    .encode(y="alert:Q")
                )
                st.altair_chart(lines + rule, use_container_width=True)
                st.caption(t("environment.alert_line", level=alert))
                timeseries.exports(
                    ctx,
                    "water-levels",
                    trend,
                    [("at", "col.time"), ("series", "col.gauge"), ("level", "col.level_m")],
                    window=window,
                )
            else:
                ui.empty(ctx)
