"""The emails change requests send; each is an Outbox row delivered by a job after the
commit. The bodies are templates in templates/changes/email/; times are shown in each
recipient's own zone, so the window is worked out here for each of them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from flask import current_app, render_template
from werkzeug.routing import BuildError

from .. import mail
from ..timeutil import to_zone
from ..users.models import User
from ..web import external_url
from .models import ChangeRequest


def link(change: ChangeRequest) -> str:
    try:
        return external_url("changes.detail", change_id=change.id)
    except BuildError:
        # Until the changes pages are registered (commands and jobs run without them).
        base = current_app.config["SETTINGS"].BASE_URL.rstrip("/")
        return f"{base}/changes/{change.id}"


def _local(value: datetime | None, user: User) -> str:
    local = to_zone(value, user.timezone or current_app.config["SETTINGS"].TIMEZONE)
    return local.strftime("%Y-%m-%d %H:%M %Z") if local else "—"


def _window(change: ChangeRequest, user: User) -> str:
    if change.window_start is None:
        return "not set"
    return f"{_local(change.window_start, user)} to {_local(change.window_end, user)}"


def _send(to: User | None, subject: str, template: str, **context: object) -> None:
    """One email from templates/changes/email/, to an active person."""
    if to is None or not to.is_active:
        return
    body = render_template(f"changes/email/{template}", recipient=to, **context)
    mail.send(to.email, subject, body)


def _unique(people: Iterable[User | None]) -> list[User]:
    seen: dict[int, User] = {}
    for person in people:
        if person is not None:
            seen.setdefault(person.id, person)
    return list(seen.values())


def awaiting_approval(change: ChangeRequest, approvers: Iterable[User], needed: str) -> None:
    """To the approvers a change is waiting for."""
    for approver in _unique(approvers):
        _send(
            approver,
            f"[{change.number}] Waiting for your approval: {change.title}",
            "awaiting_approval.txt",
            change=change,
            needed=needed,
            window=_window(change, approver),
            link=link(change),
        )


def decided(change: ChangeRequest, decision: str, reason: str | None = None) -> None:
    """To the requester, on the decision: approved, pre-approved or rejected."""
    requester = change.requester
    if decision == "rejected":
        _send(
            requester,
            f"[{change.number}] Rejected: {change.title}",
            "rejected.txt",
            change=change,
            reason=reason,
            link=link(change),
        )
        return
    _send(
        requester,
        f"[{change.number}] Approved: {change.title}",
        "approved.txt",
        change=change,
        pre_approved=decision == "pre-approved",
        window=_window(change, requester),
        link=link(change),
    )


def owners(change: ChangeRequest) -> list[User]:
    return _unique(s.owner for s in change.services)


def scheduled(change: ChangeRequest, rescheduled: bool = False) -> None:
    """To the owners of the affected services."""
    verb = "rescheduled" if rescheduled else "scheduled"
    for owner in owners(change):
        _send(
            owner,
            f"[{change.number}] Change {verb} on your service: {change.title}",
            "scheduled.txt",
            change=change,
            verb=verb,
            window=_window(change, owner),
            link=link(change),
        )


def day_before(change: ChangeRequest) -> None:
    for owner in owners(change):
        _send(
            owner,
            f"[{change.number}] Tomorrow: {change.title}",
            "day_before.txt",
            change=change,
            window=_window(change, owner),
            link=link(change),
        )


def window_open(change: ChangeRequest) -> None:
    """To the implementer (the requester when no one is named yet)."""
    person = change.implementer or change.requester
    _send(
        person,
        f"[{change.number}] Your change window is open: {change.title}",
        "window_open.txt",
        change=change,
        window=_window(change, person),
        link=link(change),
    )
