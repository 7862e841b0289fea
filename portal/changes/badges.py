"""A change's status, risk and type badges, as template globals. The list draws three per
row, so they are plain functions (a Jinja macro call costs several times more), and a
badge depends only on a short fixed value, so each is built once per process."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from markupsafe import Markup, escape

STATUS_COLOURS = {
    "draft": "secondary",
    "submitted": "info",
    "in_review": "info",
    "approved": "primary",
    "rejected": "danger",
    "scheduled": "primary",
    "implementing": "warning",
    "validating": "warning",
    "completed": "success",
    "failed": "danger",
    "closed": "dark",
}
RISK_COLOURS = {"low": "success", "medium": "warning", "high": "danger"}
# Statuses, risks and types are short fixed lists; the bound only guards against a value
# that is not one of them.
_KEPT = 64


def change_status_badge(change: Any) -> Markup:
    """For a ChangeRequest or a plain row (anything with `status` and `status_label`)."""
    return _status_markup(change.status, change.status_label)


def change_risk_badge(change: Any) -> Markup:
    return _risk_markup(change.risk)


def change_type_badge(change: Any) -> Markup:
    return _type_markup(change.type)


@lru_cache(maxsize=_KEPT)
def _status_markup(status: str, label: str) -> Markup:
    colour = STATUS_COLOURS.get(status, "light")
    return Markup(  # noqa: S704 (the values are escaped)
        f'<span class="badge text-bg-{colour}" data-status="{escape(status)}">'
        f"{escape(label)}</span>"
    )


@lru_cache(maxsize=_KEPT)
def _risk_markup(risk: str) -> Markup:
    colour = RISK_COLOURS.get(risk, "light")
    return Markup(  # noqa: S704 (the values are escaped)
        f'<span class="badge text-bg-{colour}" data-risk="{escape(risk)}">'
        f"{escape(risk)} risk</span>"
    )


@lru_cache(maxsize=_KEPT)
def _type_markup(type_: str) -> Markup:
    style = "text-bg-danger" if type_ == "emergency" else "text-bg-light border"
    return Markup(f'<span class="badge {style}">{escape(type_)}</span>')  # noqa: S704


GLOBALS = (change_status_badge, change_risk_badge, change_type_badge)
