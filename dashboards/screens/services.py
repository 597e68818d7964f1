"""Public services: the Decision 766 scorecard (re-based on the points measured), fair ranking, losses, and the
upward reports the units below sent (as the site's portal connector received them)."""

from __future__ import annotations

import functools

import streamlit as st

from dashboards import ui
from dashboards.context import current
from dashboards.data import inbox, score766
from ioc import decision766

__all__: list[str] = []

ctx = current()
t = ctx.t
ui.header(ctx, "services.title")
scheme = decision766.default_scheme()
indicators = {i.code: i for i in scheme.indicators()}


def coverage_text(measured: score766.UnitScore) -> str:
    """ "82.4 / 100 trên 54 điểm đo được", or "Chưa có dữ liệu" when nothing was measured."""
    if measured.score is None:
        return t("services.no_data")
    return t("services.coverage", score=f"{measured.score:.1f}", points=f"{measured.coverage:g}")


@functools.cache
def indicator_label(code: str) -> str:
    found = indicators.get(code)
    return f"{code} {t.pick(found.label_vi, found.label_en)}" if found else code


def children_reports() -> None:
    """The latest upward report of each unit below, per period: what they told this IOC, signed."""
    url, token = ctx.settings.reports_inbox_url, ctx.settings.reports_inbox_token
    if url is None or token is None:
        return
    st.subheader(t("services.children_reports"))
    st.caption(t("services.children_reports_why"))
    try:
        received = inbox.cached_latest(inbox.inbox_for(url, token.get_secret_value()), url, ctx.settings.query_ttl_s)
    except inbox.InboxError as exc:
        st.warning(t("services.inbox_error", error=str(exc)[:300]), icon=":material/cloud_off:")
        return
    rows = inbox.reports_for(received, ctx.unit, ctx.site.edition)
    if not rows:
        ui.empty(ctx, "services.no_children_reports")
        return
    for row in rows:  # the child's points are already re-based on what it measured
        if row["coverage"] is None:  # a report made before coverage was stated
            row["score"] = f"{row['points']:.1f} / 100"
        elif row["coverage"] == 0:
            row["score"] = t("services.no_data")
        else:
            row["score"] = t("services.coverage", score=f"{row['points']:.1f}", points=f"{row['coverage']:g}")
    ui.table(
        ctx,
        rows,
        [
            ("place", "col.place"),
            ("period", "col.report_period"),
            ("score", "col.score"),
            ("dossiers", "col.dossiers"),
            ("incidents_opened", "col.incidents_opened"),
            ("overdue", "col.overdue"),
            ("escalated", "col.escalation"),
            ("citizen_reports", "col.reports"),
            ("generated_at", "col.report_made"),
            ("received_at", "col.report_received"),
        ],
    )


with ui.guarded(ctx):
    periods = ctx.data.score_periods(ctx.unit)
    if not periods:
        ui.empty(ctx, "services.no_scores")
        children_reports()
        st.stop()
    period = st.selectbox(
        t("services.period"), options=periods, format_func=lambda d: d.strftime("%m/%Y"), key="services-period"
    )
    assert period is not None

    card = ctx.data.scorecard(ctx.unit, period)
    st.subheader(t("services.scorecard", period=period.strftime("%m/%Y")))
    if card:
        measured = score766.scorecard_score(card)
        st.metric(t("services.total"), coverage_text(measured))
        st.caption(t("services.policy", policy=card[0]["policy"] or t("services.policy_legacy")))
        columns = st.columns(len(scheme.groups))
        for column, group in zip(columns, scheme.groups, strict=True):
            rows = [r for r in card if r["group_code"] == group.code and r["measured"]]
            points = sum(r["points"] for r in rows)
            of = sum(r["max_points"] for r in rows)
            with column:
                label = t.pick(group.label_vi, group.label_en)
                if of:
                    st.metric(label, f"{points:.2f} / {of:g}", help=t("services.group_of", max=group.max_points))
                    st.progress(min(float(points) / float(of), 1.0))
                else:
                    st.metric(label, t("services.no_data"), help=t("services.group_of", max=group.max_points))
        for row in card:
            # Not measured: "no data", never points; measured with nothing counted: the method's own rule.
            if not row["measured"]:
                row["data"] = t("services.no_data")
            else:
                row["data"] = t("services.method_rule") if row["no_data"] else ""
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
                ("data", "col.no_data"),
            ],
            formats={
                "code": indicator_label,
                "rate": lambda v: f"{v:.0%}",
                "points": lambda v: f"{v:.2f}",
            },
        )
    else:
        ui.empty(ctx, "services.no_card")

    ranking = ctx.data.score_ranking(ctx.unit, period)
    ranked = [r for r in ranking if r["rank"] is not None]
    apart = [r for r in ranking if r["rank"] is None]
    group_columns = [(f"group_{g.code}", "col.group_" + g.code) for g in scheme.groups]
    if ranked:
        st.subheader(t("services.ranking"))
        ui.chart(ctx, "bar", ranked, x=("place", "col.place"), y=("score", "col.score"), horizontal=True)
        ui.table(
            ctx,
            ranked,
            [
                ("rank", "col.rank"),
                ("place", "col.place"),
                ("score", "col.score"),
                ("coverage", "col.coverage"),
                *group_columns,
            ],
        )
    if apart:
        st.subheader(t("services.insufficient"))
        st.caption(t("services.insufficient_why"))
        ui.table(
            ctx,
            apart,
            [("place", "col.place"), ("score", "col.score"), ("coverage", "col.coverage")],
            formats={"score": lambda v: t("services.no_data") if v is None else v},
        )

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
    children_reports()
