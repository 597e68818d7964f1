"""Traffic and cameras: violations by type and place, the hotspots on a map, and the latest camera events."""

from __future__ import annotations

import streamlit as st

from dashboards import mapview, timeseries, ui
from dashboards.context import current
from ioc import topics

__all__: list[str] = []

ctx = current()
t = ctx.t
ui.header(ctx, "traffic.title")

window = timeseries.date_range(ctx, "traffic-range")

if window is not None:
    with ui.guarded(ctx):
        violations = [
            {**row, "type": t(f"camera.{row['event_type']}")} for row in ctx.data.violations(ctx.unit, window=window)
        ]
        by_type, by_place = st.columns(2)
        with by_type:
            st.subheader(t("traffic.by_type"))
            ui.chart(
                ctx,
                "bar",
                violations,
                x=("type", "col.type"),
                y=("events", "col.violations"),
                color=("place", "col.place"),
            )
            timeseries.exports(
                ctx,
                "violations",
                violations,
                [("type", "col.type"), ("place", "col.place"), ("events", "col.violations")],
                window=window,
            )
        with by_place:
            st.subheader(t("traffic.by_place"))
            totals: dict[str, int] = {}
            for row in violations:
                totals[row["place"]] = totals.get(row["place"], 0) + row["events"]
            ui.table(
                ctx,
                [{"place": p, "events": n} for p, n in sorted(totals.items(), key=lambda kv: -kv[1])],
                [("place", "col.place"), ("events", "col.violations")],
            )

        st.subheader(t("traffic.hotspots"))
        spots = ctx.data.hotspots(ctx.unit, window=window)
        mapview.show(
            ctx,
            mapview.hotspots(ctx, spots),
            mapview.cameras(ctx, ctx.data.device_locations(ctx.unit, topics.CAMERA_KIND)),
        )
        ui.table(
            ctx,
            spots,
            [
                ("place", "col.place"),
                ("device_key", "col.camera"),
                ("violations", "col.violations"),
                ("types", "col.types"),
                ("last_at", "col.last_event"),
            ],
            formats={"types": lambda v: ", ".join(t(f"camera.{x}") for x in v)},
        )
        timeseries.exports(
            ctx,
            "hotspots",
            spots,
            [
                ("place", "col.place"),
                ("device_key", "col.camera"),
                ("violations", "col.violations"),
                ("types", "col.types"),
                ("last_at", "col.last_event"),
            ],
            window=window,
        )

st.subheader(t("traffic.recent"))
reveal = ui.reveal_toggle(ctx, "traffic-reveal")


RECENT_COLUMNS = [
    ("observed_at", "col.time"),
    ("event_type", "col.type"),
    ("place", "col.place"),
    ("device_key", "col.camera"),
    ("plate", "col.plate"),
    ("speed_kmh", "col.speed"),
    ("confidence", "col.confidence"),
]


@ui.live(ctx)
def recent() -> None:
    with ui.guarded(ctx):
        events = ctx.data.camera_events(ctx.unit, reveal_for=reveal)
        ui.table(
            ctx,
            events,
            RECENT_COLUMNS,
            formats={
                "event_type": lambda v: t(f"camera.{v}"),
                "confidence": lambda v: f"{v:.0%}",
                "speed_kmh": lambda v: "" if v is None else f"{v:.0f} km/h",
            },
        )
        # Plates are personal data: the file is masked like the table unless an operator revealed them (audited).
        timeseries.exports(ctx, "camera-events", events, RECENT_COLUMNS, revealed=reveal is not None)


recent()
