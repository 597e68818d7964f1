"""Citizen reports (phản ánh hiện trường): counts, the latest with PAKN deadlines, their handling, escalations."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboards import actions, mapview, timeseries, ui
from dashboards.context import current
from dashboards.data import CommandError, commands

__all__: list[str] = []

ctx = current()
t = ctx.t
ui.header(ctx, "reports.title")
categories = ctx.site.model.report_categories


def category_label(code: str) -> str:
    category = categories.get(code)
    return t.pick(category.label_vi, category.label_en) if category else code


# Any date range (today by default); an invalid one is said so, and the page shows the last 30 days meanwhile.
window = timeseries.date_range(ctx, "reports-range")

with ui.guarded(ctx):
    counts = [
        {**row, "category": category_label(row["category"]), "state": t(f"report_state.{row['state'] or 'new'}")}
        for row in ctx.data.reports_by_state(ctx.unit, window=window)
    ]
    st.subheader(t("reports.by_category"))
    ui.chart(
        ctx, "bar", counts, x=("category", "col.category"), y=("reports", "col.reports"), color=("state", "col.state")
    )
    timeseries.exports(
        ctx,
        "reports-by-category",
        counts,
        [("category", "col.category"), ("state", "col.state"), ("reports", "col.reports")],
        window=window,
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


REPORT_COLUMNS = [
    ("submitted_at", "col.submitted"),
    ("category", "col.category"),
    ("place", "col.place"),
    ("pakn", "col.pakn"),
    ("reject_by", "col.reject_by"),
    ("due_at", "col.due"),
    ("overdue", "col.overdue_flag"),
    ("text", "col.text"),
    ("pakn_note", "col.pakn_note"),
    ("address", "col.address"),
    ("contact_name", "col.contact_name"),
    ("contact_phone", "col.contact_phone"),
    ("contact_email", "col.contact_email"),
    ("incident_id", "col.incident"),
    ("linked_incident_id", "col.linked_incident"),
]


@ui.live(ctx)
def latest() -> None:
    with ui.guarded(ctx):
        rows = ctx.data.reports(ctx.unit, window=window, categories=chosen or None, reveal_for=reveal)
        overdue = sum(1 for r in rows if r["overdue"])
        st.caption(t("reports.count", n=len(rows), overdue=overdue))
        mapview.show(ctx, mapview.reports(ctx, rows, category_label))
        ui.table(
            ctx,
            rows,
            REPORT_COLUMNS,
            formats={
                "category": category_label,
                "pakn": lambda v: t(f"pakn.{v}"),
                "overdue": lambda v: "⚠" if v else "",
            },
        )
        # Contacts, text and address are personal data: the file is masked like the table unless revealed (audited).
        timeseries.exports(ctx, "reports", rows, REPORT_COLUMNS, window=window, revealed=reveal is not None)


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

# --- handling one report (PAKN): the same command path as incidents (dashboards.actions) -----------------------
PENDING_KEY = "ioc.pending-reports"
pending: dict[str, actions.Pending] = st.session_state.setdefault(PENDING_KEY, {})


def report_title(row: dict[str, Any]) -> str:
    return f"{t('pakn.' + row['pakn'])} — {category_label(row['category'])}: {row['text'][:80]}"


st.subheader(t("reports.desk"))
with ui.guarded(ctx):
    # The last 30 days (the data layer's default), whatever the period chosen above.
    listed = {r["incident_id"]: r for r in ctx.data.reports(ctx.unit, categories=chosen or None) if r["incident_id"]}
    chosen_id = st.selectbox(
        t("reports.desk_choose"),
        options=list(listed),
        index=None,
        format_func=lambda i: report_title(listed[i]),
        key="report-desk-select",
        placeholder=t("reports.desk_placeholder"),
    )
    incident = ctx.data.incident(chosen_id, unit=ctx.unit) if chosen_id else None
    if chosen_id and incident is None:
        ui.empty(ctx, "incidents.gone")
    if chosen_id and incident is not None:
        report = listed[chosen_id]
        waiting = pending.get(chosen_id)
        if waiting is not None:
            refusal = ctx.data.command_refusal(waiting.command_id)
            if refusal is not None:
                st.error(
                    t(
                        "reports.desk_refused_by_worker",
                        action=t(f"action.{waiting.action.value}"),
                        reason=t(f"refusal.{refusal['reason']}"),
                    ),
                    icon=":material/block:",
                )
                del pending[chosen_id]
            elif waiting.settled_by(incident):
                del pending[chosen_id]
                ctx.data.forget("citizen_reports")
            else:
                st.info(
                    t("reports.desk_waiting", action=t(f"action.{waiting.action.value}")),
                    icon=":material/hourglass_top:",
                )
        st.markdown(
            t(
                "reports.desk_summary",
                pakn=t(f"pakn.{report['pakn']}"),
                reject_by=ui.when(report["reject_by"]),
                request_info_by=ui.when(report["request_info_by"]),
                answer_by=ui.when(report["due_at"]),
            )
        )
        if report["linked_incident_id"]:
            st.caption(t("reports.desk_linked", incident=report["linked_incident_id"]))
        ui.table(
            ctx,
            ctx.data.incident_history(chosen_id, unit=ctx.unit),
            [("updated_at", "col.time"), ("action", "col.action"), ("actor", "col.actor"), ("note", "col.note")],
        )
        if not actions.may_act(ctx.access, incident):
            st.caption(t("incidents.viewer"))
        elif chosen_id not in pending:
            offered = actions.report_actions(incident)
            note = st.text_area(t("reports.desk_note"), key="report-desk-note", max_chars=4000)
            for column, action in zip(st.columns(max(len(offered), 1)), offered, strict=False):
                if column.button(t(f"action.{action.value}"), key=f"report-act-{action.value}", width="stretch"):
                    assert ctx.access is not None
                    try:
                        sent = actions.send_action(
                            commands.sender_for(ctx.settings.kafka), ctx.audit, ctx.access, incident, action, note=note
                        )
                    except actions.ActionRefused as refused:
                        st.warning(
                            t("reports.desk_refused", reason=t(f"refusal.{refused.reason.value}"), detail=str(refused)),
                            icon=":material/block:",
                        )
                    except CommandError as failed:
                        st.error(t("incidents.send_failed", reason=str(failed)), icon=":material/error:")
                    else:
                        pending[chosen_id] = sent
                        st.success(t("reports.desk_sent", action=t(f"action.{action.value}")), icon=":material/send:")
