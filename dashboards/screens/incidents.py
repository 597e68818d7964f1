"""Incidents: the queue with SLA countdown and filters, one incident's story, and the operator's actions."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboards import actions, evidence, mapview, people, ui
from dashboards.context import current
from dashboards.data import CommandError, commands
from dashboards.sites import display_name
from ioc.events import ACTIVE_STATES, IncidentAction, IncidentState, Module, Severity

__all__: list[str] = []

PENDING_KEY = "ioc.pending"
REFUSED_KEY = "ioc.refused"

ctx = current()
t = ctx.t
# Whom incidents are assigned to: the site's roster (its configuration file) and the signed-in person's own entries.
roster = people.load_roster(ctx.settings.site_config)
own_roster = ctx.access.roster if ctx.access is not None else ()
evidence_store = evidence.store_for(ctx.settings)
ui.header(ctx, "incidents.title")
pending: dict[str, actions.Pending] = st.session_state.setdefault(PENDING_KEY, {})
refused_by_worker: dict[str, str] = st.session_state.setdefault(REFUSED_KEY, {})

states_col, modules_col, severities_col = st.columns(3)
states = states_col.multiselect(
    t("incidents.filter_state"),
    options=[s.value for s in IncidentState],
    default=[s.value for s in ACTIVE_STATES],
    format_func=lambda v: t(f"state.{v}"),
    key="incidents-states",
)
modules = modules_col.multiselect(
    t("incidents.filter_module"),
    options=[m.value for m in Module],
    default=[m.value for m in Module],
    format_func=lambda v: ctx.t.pick(
        ctx.site.model.modules[Module(v)].label_vi, ctx.site.model.modules[Module(v)].label_en
    ),
    key="incidents-modules",
)
severities = severities_col.multiselect(
    t("incidents.filter_severity"),
    options=[s.value for s in Severity],
    default=[s.value for s in Severity],
    format_func=lambda v: t(f"severity.{v}"),
    key="incidents-severities",
)


def queue_rows(fresh: bool = False) -> list[dict[str, Any]]:
    return ctx.data.incident_queue(ctx.unit, states=states, modules=modules, severities=severities, fresh=fresh)


@ui.live(ctx)
def queue() -> None:
    with ui.guarded(ctx):
        # While a command is out, read incidents fresh (not from the cache) until its effect shows.
        waited = bool(pending)
        for incident_id, waiting in list(pending.items()):
            latest = ctx.data.incident(incident_id)
            refusal = ctx.data.command_refusal(waiting.command_id)
            if refusal is not None:
                # The workers judged the command again where it is carried out, and refused it.
                refused_by_worker[incident_id] = t(
                    "incidents.refused_by_worker",
                    action=t(f"action.{waiting.action.value}"),
                    id=incident_id,
                    reason=t(f"refusal.{refusal['reason']}"),
                )
                del pending[incident_id]
            elif waiting.settled_by(latest):
                assert latest is not None
                st.toast(t("incidents.settled", title=latest["title"], state=t(f"state.{latest['state']}")))
                del pending[incident_id]
                ctx.data.forget("incidents")
            else:
                st.info(
                    t("incidents.waiting", action=t(f"action.{waiting.action.value}"), id=incident_id),
                    icon=":material/hourglass_top:",
                )
        for message in refused_by_worker.values():
            st.error(message, icon=":material/block:")
        rows = queue_rows(fresh=waited)
        st.caption(t("incidents.count", n=len(rows)))
        ui.table(
            ctx,
            rows,
            [
                ("sla_due_at", "col.sla"),
                ("severity", "col.severity"),
                ("state", "col.state"),
                ("title", "col.title"),
                ("place", "col.place"),
                ("responsible", "col.responsible"),
                ("escalation_level", "col.escalation"),
                ("opened_at", "col.opened"),
                ("version", "col.version"),
            ],
            formats={
                "sla_due_at": lambda v: ui.sla_left(ctx, v),
                "severity": lambda v: t(f"severity.{v}"),
                "state": lambda v: t(f"state.{v}"),
                "escalation_level": lambda v: t("incidents.escalated", n=v) if v else "",
            },
            key="incident-queue",
        )
        mapview.show(ctx, mapview.incidents(ctx, rows))


queue()

st.subheader(t("incidents.detail"))
with ui.guarded(ctx):
    listed = {row["incident_id"]: row for row in queue_rows()}
    chosen = st.selectbox(
        t("incidents.choose"),
        options=list(listed),
        index=None,
        format_func=lambda i: f"{listed[i]['title']} — {listed[i]['place']}",
        key="incident-select",
        placeholder=t("incidents.choose_placeholder"),
    )
    incident = ctx.data.incident(chosen, unit=ctx.unit) if chosen else None
    if chosen and incident is None:
        ui.empty(ctx, "incidents.gone")
    if incident is not None:
        info, story = st.columns([2, 3])
        with info:
            st.markdown(f"**{incident['title']}**")
            st.write(
                t(
                    "incidents.summary",
                    state=t(f"state.{incident['state']}"),
                    severity=t(f"severity.{incident['severity']}"),
                    place=ctx.site.row_unit_name(incident["unit"]),
                    responsible=ctx.site.row_unit_name(incident["responsible_unit"] or incident["unit"]),
                    sla=ui.sla_left(ctx, incident["sla_due_at"]),
                    opened=ui.when(incident["opened_at"]),
                )
            )
            if incident["note"]:
                st.caption(t("incidents.note", note=incident["note"]))
            if ctx.can_act:  # a camera's snapshot shows plates and people: operators of the unit only (audited)
                snapshot = ctx.data.incident_snapshot(incident, unit=ctx.unit, reveal_for=ctx.access)
                if snapshot is not None:
                    taken = ui.when(snapshot.observed_at)
                    st.image(snapshot.image, caption=t("map.snapshot", camera=snapshot.camera, time=taken))
            if incident.get("assignee"):
                who = people.assignee_label(incident["assignee"], (*own_roster, *roster))
                st.caption(t("incidents.assignee", who=who))
            if incident.get("evidence") and actions.may_act(ctx.access, incident) and evidence_store is not None:
                # Photos from the field may show people: the incident's operators only, each view audited.
                assert ctx.access is not None
                st.caption(t("incidents.evidence"))
                for key in incident["evidence"]:
                    data = evidence_store.get(key)
                    if data is None:
                        st.caption(t("incidents.evidence_missing", file=key))
                        continue
                    ctx.audit.record(ctx.access.actor, ctx.site.unit, "view-evidence", targets=[key])
                    if key.rsplit(".", 1)[-1] in evidence.IMAGE_TYPES:
                        st.image(data, caption=key[:12])
                    else:
                        st.download_button(key[:12], data, file_name=key, key=f"evidence-{key}")
        with story:
            ui.table(
                ctx,
                ctx.data.incident_history(incident["incident_id"], unit=ctx.unit),
                [
                    ("version", "col.version"),
                    ("updated_at", "col.time"),
                    ("action", "col.action"),
                    ("actor", "col.actor"),
                    ("state", "col.state"),
                    ("note", "col.note"),
                    ("assignee", "col.assignee"),
                ],
                formats={"state": lambda v: t(f"state.{v}")},
            )
            # Citizens' reports about this incident (streams.linking); resolving it answers them.
            linked = ctx.data.incident_reports(incident["incident_id"], unit=ctx.unit)
            if linked:
                st.caption(t("reports.linked_reports", n=len(linked)))
                ui.table(
                    ctx,
                    linked,
                    [("submitted_at", "col.submitted"), ("place", "col.place"), ("text", "col.text")],
                    key="incident-linked-reports",
                )
            # Who was told (e-mail, webhooks), with what outcome: streams/agents/notifications.py.
            deliveries = ctx.data.incident_deliveries(incident["incident_id"], unit=ctx.unit)
            st.caption(t("incidents.deliveries") if deliveries else t("incidents.no_deliveries"))
            if deliveries:
                ui.table(
                    ctx,
                    deliveries,
                    [
                        ("updated_at", "col.time"),
                        ("event", "col.event"),
                        ("recipient", "col.recipient"),
                        ("channel", "col.notify_channel"),
                        ("status", "col.delivery_status"),
                        ("attempts", "col.attempts"),
                        ("detail", "col.detail"),
                    ],
                    key="incident-deliveries",
                )

        if not actions.may_act(ctx.access, incident):
            st.caption(t("incidents.viewer"))
        elif incident["incident_id"] in pending:
            st.caption(t("incidents.already_pending"))
        else:
            allowed = actions.allowed_actions(incident["state"])
            target: str | None = None
            note = ""
            if IncidentAction.DISPATCH in allowed:
                # Only units this person operates: a ward operator on the district's dashboard sees its ward.
                assert ctx.access is not None
                visible = actions.dispatch_targets(ctx.access, incident)
                target = st.selectbox(
                    t("incidents.dispatch_to"),
                    options=visible,
                    format_func=lambda code: display_name(ctx.site.tree.get(code)),
                    key="incident-target",
                )
            assignee: str | None = None
            if IncidentAction.ASSIGN in allowed:
                places = [incident["unit"], incident["responsible_unit"] or incident["unit"]]
                options = people.assignment_options(roster, own_roster, ctx.site.tree, places)
                assignee = st.selectbox(
                    t("incidents.assign_to"),
                    options=list(options),
                    index=None,
                    format_func=options.__getitem__,
                    key="incident-assignee",
                )
            note = st.text_area(t("incidents.note_input"), key="incident-note", max_chars=4000)
            uploads: list[Any] = []
            if IncidentAction.RESOLVE in allowed and evidence_store is not None:
                chosen_files = st.file_uploader(
                    t("incidents.evidence_input"),
                    type=["jpg", "jpeg", "png", "pdf"],
                    accept_multiple_files=True,
                    key="incident-evidence",
                )
                uploads = list(chosen_files or [])
            buttons = st.columns(len(allowed))
            for column, action in zip(buttons, allowed, strict=True):
                if column.button(
                    t(f"action.{action.value}"),
                    key=f"act-{action.value}",
                    type="primary" if action is allowed[0] else "secondary",
                    width="stretch",
                ):
                    assert ctx.access is not None
                    try:
                        attached: list[str] = []
                        if action is IncidentAction.RESOLVE and evidence_store is not None:
                            attached = [evidence_store.put(upload.getvalue()) for upload in uploads]
                        waiting = actions.send_action(
                            commands.sender_for(ctx.settings.kafka),
                            ctx.audit,
                            ctx.access,
                            incident,
                            action,
                            target_unit=target,
                            note=note,
                            assignee=assignee,
                            evidence=attached,
                        )
                    except evidence.EvidenceError as unusable:
                        st.warning(str(unusable), icon=":material/block:")
                    except actions.ActionRefused as refused:
                        st.warning(
                            t("incidents.refused", reason=t(f"refusal.{refused.reason.value}")),
                            icon=":material/block:",
                        )
                    except CommandError as failed:
                        st.error(t("incidents.send_failed", reason=str(failed)), icon=":material/error:")
                    else:
                        pending[waiting.incident_id] = waiting
                        refused_by_worker.pop(waiting.incident_id, None)
                        ctx.data.forget("incidents")
                        st.success(
                            t("incidents.sent", action=t(f"action.{action.value}"), partition=waiting.partition),
                            icon=":material/send:",
                        )
