"""Citizen reports (phản ánh hiện trường): counts by category and state, the latest with SLA, and escalations."""

from __future__ import annotations

import streamlit as st

from dashboards import mapview, ui
from dashboards.context import current

__all__: list[str] = []

ctx = current()
t = ctx.t
ui.header(ctx, "reports.title")
categories = ctx.site.model.report_categories


def category_label(code: str) -> str:
    category = categories.get(code)
    return t.pick(category.label_vi, category.label_en) if category else code


days = st.segmented_control(
    t("common.period"),
    options=[1, 7, 30],
    format_func=lambda d: t("common.last_days", d=d),
    default=7,
    key="reports-days",
    required=True,
)
assert isinstance(days, int)

with ui.guarded(ctx):
    counts = [
        {**row, "category": category_label(row["category"]), "state": t(f"report_state.{row['state'] or 'new'}")}
        for row in ctx.data.reports_by_state(ctx.unit, days=days)
    ]
    st.subheader(t("reports.by_category"))
    ui.chart(
        ctx, "bar", counts, x=("category", "col.category"), y=("reports", "col.reports"), color=("state", "col.state")
    )

st.subheader(t("reports.latest"))
chosen = st.multiselect(
    t("reports.filter_category"),
    options=sorted(categories),
    format_func=category_label,
    key="reports-categories",
    placeholder=t("reports.all_categories"),
)
reveal = ui.reveal_toggle(ctx, "reports-reveal")


@ui.live(ctx)
def latest() -> None:
    with ui.guarded(ctx):
        rows = ctx.data.reports(ctx.unit, days=days, categories=chosen or None, reveal_for=reveal)
        overdue = sum(1 for r in rows if r["overdue"])
        st.caption(t("reports.count", n=len(rows), overdue=overdue))
        mapview.show(ctx, mapview.reports(ctx, rows, category_label))
        ui.table(
            ctx,
            rows,
            [
                ("submitted_at", "col.submitted"),
                ("category", "col.category"),
                ("place", "col.place"),
                ("state", "col.state"),
                ("due_at", "col.due"),
                ("overdue", "col.overdue_flag"),
                ("text", "col.text"),
                ("address", "col.address"),
                ("contact_name", "col.contact_name"),
                ("contact_phone", "col.contact_phone"),
                ("contact_email", "col.contact_email"),
                ("incident_id", "col.incident"),
            ],
            formats={
                "category": category_label,
                "state": lambda v: t(f"report_state.{v or 'new'}"),
                "overdue": lambda v: "⚠" if v else "",
            },
        )


latest()

with ui.guarded(ctx):
    st.subheader(t("reports.escalations"))
    ui.table(
        ctx,
        ctx.data.escalations(ctx.unit),
        [
            ("updated_at", "col.time"),
            ("title", "col.title"),
            ("place", "col.place"),
            ("responsible", "col.responsible"),
            ("escalation_level", "col.escalation"),
            ("state", "col.state"),
            ("linked_reports", "col.linked_reports"),
        ],
        formats={"state": lambda v: t(f"state.{v}")},
    )
