"""Public page (citizens, read-only): air quality, flood warnings, camera locations and public-service scores."""

from __future__ import annotations

import streamlit as st

from dashboards import mapview, ui
from dashboards.context import current
from ioc import aqi, topics

# No sign-in, no personal data, no incident detail beyond what a warning needs: the data layer's masked
# reads and a few columns only.

__all__: list[str] = []

ctx = current()
t = ctx.t
ui.header(ctx, "public.title")
st.caption(t("public.intro"))

air, flood, cameras, services = st.tabs([t("public.air"), t("public.flood"), t("public.cameras"), t("public.services")])

with air:

    @ui.live(ctx)
    def air_quality() -> None:
        with ui.guarded(ctx):
            stations = ctx.data.aqi_stations(ctx.unit)
            mapview.show(ctx, mapview.stations(ctx, stations))
            ui.table(
                ctx,
                stations,
                [("place", "col.place"), ("aqi", "col.aqi"), ("latest_hour", "col.hour")],
                formats={"aqi": lambda v: ui.band_label(ctx, v)},
            )
            st.caption(
                " · ".join(
                    f"{ui.BAND_MARKS[b.level]} {b.low}–{b.high} {t.pick(b.label_vi, b.label_en)}" for b in aqi.BANDS
                )
            )

    air_quality()

with flood:

    @ui.live(ctx)
    def warnings() -> None:
        with ui.guarded(ctx):
            gauges = [g for g in ctx.data.water_levels(ctx.unit) if g["status"] != "normal"]
            if not gauges:
                st.success(t("public.no_flood"), icon=":material/check_circle:")
            ui.table(
                ctx,
                gauges,
                [("status", "col.status"), ("place", "col.place"), ("level", "col.level_m"), ("last_at", "col.time")],
                formats={"status": lambda v: t(f"gauge.{v}")},
            )
            alerts = ctx.data.incident_queue(ctx.unit, modules=("environment",), severities=("high", "critical"))
            ui.table(
                ctx,
                [r for r in alerts if str(r["rule"]).startswith("flood")],
                [("title", "col.title"), ("place", "col.place"), ("opened_at", "col.opened")],
            )

    warnings()

with cameras, ui.guarded(ctx):
    points = ctx.data.device_locations(ctx.unit, topics.CAMERA_KIND)
    st.caption(t("public.camera_count", n=len(points)))
    mapview.show(ctx, mapview.cameras(ctx, points))

with services, ui.guarded(ctx):
    periods = ctx.data.score_periods(ctx.unit)
    if periods:
        st.caption(t("public.scores_for", period=periods[0].strftime("%m/%Y")))
        ranking = ctx.data.score_ranking(ctx.unit, periods[0])
        # Units without enough data are listed unranked, their score "no data" when nothing was measured.
        ui.table(
            ctx,
            ranking,
            [("rank", "col.rank"), ("place", "col.place"), ("score", "col.score"), ("coverage", "col.coverage")],
            formats={
                "rank": lambda v: t("services.unranked") if v is None else v,
                "score": lambda v: t("services.no_data") if v is None else v,
            },
        )
    else:
        ui.empty(ctx, "services.no_scores")
