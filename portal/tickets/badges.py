"""The status, priority and SLA badges, as template globals. Lists draw three per row,
so they are plain functions: a Jinja macro call costs several times more."""

from __future__ import annotations

from markupsafe import Markup, escape

from .models import Ticket

STATUS_COLOURS = {
    "new": "primary",
    "assigned": "info",
    "in_progress": "info",
    "pending": "warning",
    "resolved": "success",
    "closed": "secondary",
}
PRIORITY_COLOURS = {"critical": "danger", "high": "warning", "medium": "light", "low": "light"}
SLA_COLOURS = {
    "on_track": "success",
    "at_risk": "warning",
    "breached": "danger",
    "met": "secondary",
}


def status_badge(ticket: Ticket) -> Markup:
    colour = STATUS_COLOURS.get(ticket.status, "light")
    return Markup(f'<span class="badge text-bg-{colour}">{escape(ticket.status_label)}</span>')  # noqa: S704


def priority_badge(ticket: Ticket) -> Markup:
    colour = PRIORITY_COLOURS.get(ticket.priority, "light")
    label = escape(ticket.priority_label)
    return Markup(f'<span class="badge text-bg-{colour} border">{label}</span>')  # noqa: S704


def sla_badge(state: str) -> Markup:
    colour = SLA_COLOURS.get(state, "light")
    label = escape(state.replace("_", " "))
    return Markup(f'<span class="badge sla-{escape(state)} text-bg-{colour}">{label}</span>')  # noqa: S704


BADGES = {"status_badge": status_badge, "priority_badge": priority_badge, "sla_badge": sla_badge}
