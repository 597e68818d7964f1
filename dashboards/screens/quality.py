"""Data quality: device freshness per vendor, the silent devices, and why input was refused, per vendor."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dashboards import ui
from dashboards.context import current
from ioc import topics
from ioc.events import DeadLetterReason

__all__: list[str] = []

ctx = current()
t = ctx.t
ui.header(ctx, "quality.title")


def reason(value: str) -> str:
    """A dead letter's reason as operators read it; a code this release does not know shows as it is."""
    return t(f"reason.{DeadLetterReason(value).value}") if value in _REASONS else value


_REASONS = frozenset(DeadLetterReason)


def age(value: dt.datetime | None) -> str:
    if value is None:
        return "—"
    minutes = int((dt.datetime.now(dt.UTC) - value).total_seconds() // 60)
    return t("time.ago", span=t("time.minutes", m=minutes))


@ui.live(ctx)
def freshness() -> None:
    with ui.guarded(ctx):
        st.subheader(t("quality.freshness"))
        st.caption(
            t(
                "quality.silence_rule",
                device=int(ctx.site.silence_minutes("air")),
                camera=int(ctx.site.silence_minutes(topics.CAMERA_KIND)),
            )
        )
        ui.table(
            ctx,
            ctx.data.devices_by_vendor(ctx.unit),
            [
                ("vendor", "col.vendor"),
                ("kind", "col.kind"),
                ("devices", "col.devices"),
                ("silent", "col.silent"),
                ("newest", "col.newest"),
                ("oldest", "col.oldest"),
            ],
            formats={"kind": lambda v: t(f"kind.{v}"), "newest": age, "oldest": age},
        )
        st.subheader(t("quality.silent"))
        ui.table(
            ctx,
            ctx.data.silent_devices(ctx.unit),
            [
                ("device_key", "col.device"),
                ("kind", "col.kind"),
                ("place", "col.place"),
                ("last_seen", "col.last_seen"),
            ],
            formats={"kind": lambda v: t(f"kind.{v}")},
        )


freshness()

with ui.guarded(ctx):
    st.subheader(t("quality.rejections"))
    reasons = [{**row, "reason": reason(row["reason"])} for row in ctx.data.rejections(ctx.unit)]
    if reasons:
        ui.chart(
            ctx,
            "bar",
            reasons,
            x=("vendor", "col.vendor"),
            y=("letters", "col.letters"),
            color=("reason", "col.reason"),
        )
    ui.table(
        ctx,
        reasons,
        [("vendor", "col.vendor"), ("reason", "col.reason"), ("letters", "col.letters"), ("last_at", "col.last_event")],
    )
    st.subheader(t("quality.recent"))
    ui.table(
        ctx,
        ctx.data.rejections_recent(ctx.unit),
        [
            ("received_at", "col.time"),
            ("vendor", "col.vendor"),
            ("device", "col.device"),
            ("reason", "col.reason"),
            ("detail", "col.detail"),
            ("source", "col.source"),
        ],
        formats={"reason": reason},
    )
