"""Data quality: device freshness per vendor, the silent devices, and why input was refused, per vendor."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dashboards import timeseries, ui
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
    minutes = int((ctx.now() - value).total_seconds() // 60)
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

st.subheader(t("quality.rejections"))
window = timeseries.date_range(ctx, "quality-range")
REJECTION_COLUMNS = [
    ("vendor", "col.vendor"),
    ("reason", "col.reason"),
    ("letters", "col.letters"),
    ("last_at", "col.last_event"),
]
RECENT_COLUMNS = [
    ("received_at", "col.time"),
    ("vendor", "col.vendor"),
    ("device", "col.device"),
    ("reason", "col.reason"),
    ("detail", "col.detail"),
    ("source", "col.source"),
]

if window is not None:
    with ui.guarded(ctx):
        reasons = [{**row, "reason": reason(row["reason"])} for row in ctx.data.rejections(ctx.unit, window=window)]
        if reasons:
            ui.chart(
                ctx,
                "bar",
                reasons,
                x=("vendor", "col.vendor"),
                y=("letters", "col.letters"),
                color=("reason", "col.reason"),
            )
        ui.table(ctx, reasons, REJECTION_COLUMNS)
        timeseries.exports(ctx, "rejections", reasons, REJECTION_COLUMNS, window=window)
        st.subheader(t("quality.recent"))
        recent = [
            {**row, "reason": reason(row["reason"])} for row in ctx.data.rejections_recent(ctx.unit, window=window)
        ]
        ui.table(ctx, recent, RECENT_COLUMNS)
        timeseries.exports(ctx, "rejections-recent", recent, RECENT_COLUMNS, window=window)
