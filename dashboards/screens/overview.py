"""Overview: the site's tier at a glance, its child units on a map, headline figures, and the drill-down."""

from __future__ import annotations

import streamlit as st

from dashboards import mapview, ui
from dashboards.context import current
from dashboards.sites import display_name

__all__: list[str] = []

ctx = current()
t = ctx.t
ui.header(ctx, "overview.title")


@ui.live(ctx)
def headline() -> None:
    with ui.guarded(ctx):
        figures = ctx.data.headline(ctx.unit)
        first, second, third, fourth, fifth, sixth = st.columns(6)
        first.metric(t("overview.open_incidents"), figures.open_incidents, border=True)
        second.metric(
            t("overview.overdue"),
            figures.overdue_incidents,
            delta=t("overview.urgent", n=figures.urgent_incidents),
            delta_color="off",
            delta_arrow="off",
            border=True,
        )
        third.metric(
            t("overview.reports_7d"),
            figures.reports_7d,
            delta=t("overview.unresolved", n=figures.reports_unresolved),
            delta_color="off",
            delta_arrow="off",
            border=True,
        )
        fourth.metric(
            t("overview.devices"),
            figures.devices,
            delta=t("overview.silent", n=figures.silent_devices),
            delta_color="inverse" if figures.silent_devices else "off",
            delta_arrow="off",
            border=True,
        )
        fifth.metric(
            t("overview.worst_aqi"),
            "—" if figures.worst_aqi is None else figures.worst_aqi,
            delta=ui.band_name(ctx, figures.worst_aqi),
            delta_color="off",
            delta_arrow="off",
            border=True,
        )
        sixth.metric(
            t("overview.score_766"),
            "—" if figures.score_766 is None else f"{figures.score_766:.1f} / 100",
            # Every 766 score states its coverage (docs/decision-766.md).
            delta=None
            if figures.score_period is None
            else t(
                "overview.score_coverage",
                period=figures.score_period.strftime("%m/%Y"),
                points=f"{figures.score_766_coverage or 0:g}",
            ),
            delta_color="off",
            delta_arrow="off",
            border=True,
        )


headline()

colour_by = st.segmented_control(
    t("overview.colour_by"),
    options=["incidents", "aqi"],
    format_func=lambda option: t(f"overview.colour_{option}"),
    default="incidents",
    key="overview-colour",
    required=True,
)


def incident_colour(row: dict[str, object]) -> str:
    count = row["incidents"]
    assert isinstance(count, int)
    return "#2E7D32" if count == 0 else "#F57C00" if count < 3 else "#C62828"


@ui.live(ctx)
def places() -> None:
    with ui.guarded(ctx):
        rows = ctx.data.children_figures(ctx.unit)

        def tip(row: dict[str, object]) -> str:
            aqi = "—" if row["aqi"] is None else row["aqi"]
            return f"{row['name']}: {t('col.open_incidents')} {row['incidents']} · {t('col.aqi')} {aqi}"

        if colour_by == "aqi":
            mapview.show(
                ctx, mapview.units(ctx, rows, colour=lambda r: ui.band_hex(r["aqi"]), size=lambda r: 450.0, tooltip=tip)
            )
        else:
            size = lambda r: min(250.0 + 60.0 * float(r["incidents"]), 900.0)  # noqa: E731
            mapview.show(ctx, mapview.units(ctx, rows, colour=incident_colour, size=size, tooltip=tip))
        st.subheader(t("overview.places"))
        ui.table(
            ctx,
            rows,
            [
                ("name", "col.place"),
                ("incidents", "col.open_incidents"),
                ("overdue", "col.overdue"),
                ("severity", "col.worst_severity"),
                ("aqi", "col.aqi"),
            ],
            formats={
                "severity": lambda v: t(f"severity.{v}") if v else "—",
                "aqi": lambda v: ui.band_label(ctx, v),
            },
        )


places()

children = [c for c in ctx.site.children(ctx.unit) if ctx.may_see(c.code)]
if children:
    st.caption(t("overview.drill_hint"))
    columns = st.columns(min(len(children), 4))
    for i, child in enumerate(children):
        columns[i % len(columns)].button(
            display_name(child),
            key=f"open-{child.code}",
            on_click=ctx.go_to,
            args=(child.code,),
            icon=":material/zoom_in:",
            width="stretch",
        )
