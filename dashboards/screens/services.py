"""Public services: the Decision 766 scorecard (5 groups, 100 points) per unit and period, ranking, losses."""

from __future__ import annotations

import functools

import streamlit as st

from dashboards import ui
from dashboards.context import current
from ioc import decision766

__all__: list[str] = []

ctx = current()
t = ctx.t
ui.header(ctx, "services.title")
scheme = decision766.default_scheme()
indicators = {i.code: i for i in scheme.indicators()}


@functools.cache
def indicator_label(code: str) -> str:
    found = indicators.get(code)
    return f"{code} {t.pick(found.label_vi, found.label_en)}" if found else code


with ui.guarded(ctx):
    periods = ctx.data.score_periods(ctx.unit)
    if not periods:
        ui.empty(ctx, "services.no_scores")
        st.stop()
    period = st.selectbox(
        t("services.period"), options=periods, format_func=lambda d: d.strftime("%m/%Y"), key="services-period"
    )
    assert period is not None

    card = ctx.data.scorecard(ctx.unit, period)
    st.subheader(t("services.scorecard", period=period.strftime("%m/%Y")))
    if card:
        total = sum(r["points"] for r in card)
        st.metric(t("services.total"), f"{total:.2f} / {int(scheme.max_points)}")
        columns = st.columns(len(scheme.groups))
        for column, group in zip(columns, scheme.groups, strict=True):
            points = sum(r["points"] for r in card if r["group_code"] == group.code)
            with column:
                st.metric(t.pick(group.label_vi, group.label_en), f"{points:.2f} / {group.max_points}")
                st.progress(min(float(points) / float(group.max_points), 1.0))
        ui.table(
            ctx,
            card,
            [
                ("code", "col.indicator"),
                ("points", "col.points"),
                ("max_points", "col.max_points"),
                ("rate", "col.rate"),
                ("numerator", "col.numerator"),
                ("denominator", "col.denominator"),
                ("lost", "col.lost_dossiers"),
                ("no_data", "col.no_data"),
            ],
            formats={
                "code": indicator_label,
                "rate": lambda v: f"{v:.0%}",
                "points": lambda v: f"{v:.2f}",
                "no_data": lambda v: "✓" if v else "",
            },
        )
    else:
        ui.empty(ctx, "services.no_card")

    ranking = ctx.data.score_ranking(ctx.unit, period)
    if ranking:
        st.subheader(t("services.ranking"))
        ui.chart(ctx, "bar", ranking, x=("place", "col.place"), y=("points", "col.points"), horizontal=True)
        group_columns = [(f"group_{g.code}", "col.group_" + g.code) for g in scheme.groups]
        ui.table(ctx, ranking, [("rank", "col.rank"), ("place", "col.place"), ("points", "col.points"), *group_columns])

    st.subheader(t("services.lost"))
    ui.table(
        ctx,
        ctx.data.lost_dossiers(ctx.unit, period),
        [
            ("dossier_id", "col.dossier"),
            ("indicators", "col.indicator"),
            ("procedure_code", "col.procedure"),
            ("status", "col.status"),
            ("channel", "col.channel"),
            ("received_at", "col.received"),
            ("due_at", "col.due"),
            ("finished_at", "col.finished"),
            ("paid_online", "col.paid_online"),
            ("digitised", "col.digitised"),
            ("satisfaction", "col.satisfaction"),
        ],
        formats={
            "status": lambda v: t(f"dossier.{v}"),
            "channel": lambda v: t(f"channel.{v}"),
            "paid_online": lambda v: "✓" if v else "✗",
            "digitised": lambda v: "✓" if v else "✗",
            "satisfaction": lambda v: t(f"satisfaction.{v}") if v else "",
        },
    )
