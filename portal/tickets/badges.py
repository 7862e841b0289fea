"""The status, priority and SLA badges, as template globals. Lists draw three per row,
so they are plain functions: a Jinja macro call costs several times more. A badge's
markup depends only on a few short values, so each one is built once per process and
then looked up."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from markupsafe import Markup, escape

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
# Statuses, priorities and SLA states are short fixed lists; the bound only guards
# against a value that is not one of them.
_KEPT = 256


def status_badge(ticket: Any) -> Markup:
    """For a Ticket or a list row (anything with `status` and `status_label`)."""
    return _status_markup(ticket.status, ticket.status_label)


def priority_badge(ticket: Any) -> Markup:
    """For a Ticket or a list row (anything with `priority` and `priority_label`)."""
    return _priority_markup(ticket.priority, ticket.priority_label)


@lru_cache(maxsize=_KEPT)
def sla_badge(state: str) -> Markup:
    colour = SLA_COLOURS.get(state, "light")
    label = escape(state.replace("_", " "))
    return Markup(f'<span class="badge sla-{escape(state)} text-bg-{colour}">{label}</span>')  # noqa: S704


@lru_cache(maxsize=_KEPT)
def _status_markup(status: str, label: str) -> Markup:
    colour = STATUS_COLOURS.get(status, "light")
    return Markup(f'<span class="badge text-bg-{colour}">{escape(label)}</span>')  # noqa: S704


@lru_cache(maxsize=_KEPT)
def _priority_markup(priority: str, label: str) -> Markup:
    colour = PRIORITY_COLOURS.get(priority, "light")
    return Markup(f'<span class="badge text-bg-{colour} border">{escape(label)}</span>')  # noqa: S704


BADGES = {"status_badge": status_badge, "priority_badge": priority_badge, "sla_badge": sla_badge}
