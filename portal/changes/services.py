"""Change request use cases: drafting, editing, the implementer and linked tickets, and
the helpers every use case shares. Each checks its rule, changes the change, writes the
field history and the audit event together, then commits (emails and reminders go out
after the commit). Submission and votes are in approvals.py, scheduling and the later
steps in lifecycle.py, the admin setup in admin_services.py."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from .. import jobs
from ..audits import diff, record
from ..errors import Conflict, Forbidden, ServiceError
from ..extensions import db
from ..security import Permission, role_has
from ..tickets.models import Ticket
from ..timeutil import iso_utc, utcnow
from ..users.models import User
from . import risk
from .access import is_admin, is_involved
from .conflicts import check_window
from .models import EDITABLE, TYPES, ChangeHistory, ChangeRequest
from .setup_models import Service, StandardTemplate
from .workflow import check_transition

# The audit action of each status a change moves to.
STATUS_ACTIONS = {
    "submitted": "change.submitted",
    "in_review": "change.review_started",
    "approved": "change.approved",
    "rejected": "change.rejected",
    "scheduled": "change.scheduled",
    "implementing": "change.implementation_started",
    "validating": "change.validation_started",
    "completed": "change.completed",
    "failed": "change.failed",
    "closed": "change.closed",
}
# Fields a standard change takes from its pre-approved template and keeps.
FROM_TEMPLATE = ("implementation_plan", "rollback_plan", "impact", "likelihood", "services")
TEXT_FIELDS = (
    "title",
    "description",
    "justification",
    "success_criteria",
    "implementation_plan",
    "rollback_plan",
)


def _label(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, User | Service | StandardTemplate):
        return value.name
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, list | tuple):
        return ", ".join(str(_label(v)) for v in value)
    return str(value)


def keep_history(
    change: ChangeRequest,
    field: str,
    old: object,
    new: object,
    actor: User | None,
    reason: str | None = None,
) -> dict[str, str | None]:
    """Keep one field change in the change's history; returns it for the audit event."""
    before, after = _label(old), _label(new)
    db.session.add(
        ChangeHistory(
            change_id=change.id,
            actor_id=getattr(actor, "id", None),
            field=field,
            old_value=before,
            new_value=after,
            reason=reason[:1000] if reason else None,
        )
    )
    return {"before": before, "after": after}


def _change(
    change: ChangeRequest,
    field: str,
    old: object,
    new: object,
    actor: User | None,
    reason: str | None = None,
) -> None:
    """One field change: the history row and its own audit event."""
    values = keep_history(change, field, old, new, actor, reason)
    data: dict[str, object] = {
        "before": {field: values["before"]},
        "after": {field: values["after"]},
    }
    if reason:
        data["reason"] = reason
    record(f"change.{field}_changed", actor, change, **data)


def move(
    change: ChangeRequest,
    status: str,
    actor: User | None,
    reason: str | None = None,
    **data: object,
) -> None:
    """Check the step against the table, then take it: history row and audit event.
    Does not commit; the use case that calls it does."""
    old = change.status
    check_transition(change, status)
    now = utcnow()
    change.status, change.status_changed_at = status, now
    keep_history(change, "status", old, status, actor, reason)
    if reason:
        data["reason"] = reason
    record(
        STATUS_ACTIONS[status],
        actor,
        change,
        before={"status": old},
        after={"status": status},
        **data,
    )


def _require_creator(user: User) -> None:
    if not user.is_active or not role_has(user.role, Permission.CHANGES_CREATE):
        raise Forbidden("You may not raise change requests.")


def require_owner(change: ChangeRequest, actor: User) -> None:
    """The requester (or an admin) drafts, edits and submits a change."""
    if actor.id != change.requester_id and not is_admin(actor):
        raise Forbidden("Only the requester or an admin changes this request.")


def require_involved(change: ChangeRequest, actor: User) -> None:
    if not is_involved(actor, change):
        raise Forbidden("Only the requester, the implementer or an admin does this.")


def _check_level(value: int, field: str) -> int:
    if value not in risk.LEVELS:
        raise ServiceError("Rate it from 1 (low) to 3 (high).", field=field)
    return value


def _check_services(services: Iterable[Service], current: Sequence[Service] = ()) -> list[Service]:
    kept = {s.id for s in current}
    chosen = list({s.id: s for s in services}.values())
    for service in chosen:
        if not service.is_active and service.id not in kept:
            raise ServiceError(f"{service.name} is retired; choose another.", field="services")
    return sorted(chosen, key=lambda s: s.name)


def _check_implementer(change: ChangeRequest | None, user: User | None) -> None:
    if user is None:
        return
    if not user.is_active or not role_has(user.role, Permission.CHANGES_CREATE):
        raise ServiceError(
            "The implementer must be an active member of staff.", field="implementer"
        )
    if change is not None and any(v.approver_id == user.id for v in change.current_votes):
        raise Conflict(
            f"{user.name} voted on this change, so cannot implement it.", field="implementer"
        )


def create_change(
    requester: User,
    title: str,
    type_: str = "normal",
    *,
    description: str = "",
    justification: str = "",
    success_criteria: str = "",
    impact: int = 1,
    likelihood: int = 1,
    implementation_plan: str = "",
    rollback_plan: str = "",
    services: Iterable[Service] = (),
    implementer: User | None = None,
    window: tuple[datetime, datetime] | None = None,
    tickets: Iterable[Ticket] = (),
    template: StandardTemplate | None = None,
) -> ChangeRequest:
    """Draft a change. From a standard template, the template's plans, risk and services
    are taken as approved and the change is a standard one. `window` is naive UTC."""
    _require_creator(requester)
    if template is not None:
        if not template.is_active:
            raise Conflict(f"The template “{template.name}” is retired.", field="template")
        type_ = "standard"
        description = description or template.description
        implementation_plan, rollback_plan = template.implementation_plan, template.rollback_plan
        impact, likelihood, services = template.impact, template.likelihood, template.services
    elif type_ == "standard":
        raise ServiceError("A standard change starts from a pre-approved template.", field="type")
    if type_ not in TYPES:
        raise ServiceError("Choose standard, normal or emergency.", field="type")
    title = " ".join(title.split())
    if not title:
        raise ServiceError("Give the change a title.", field="title")
    if window is not None:
        check_window(*window)
    _check_implementer(None, implementer)
    change = ChangeRequest(
        type=type_,
        title=title[:200],
        description=description.strip(),
        justification=justification.strip(),
        success_criteria=success_criteria.strip(),
        impact=_check_level(impact, "impact"),
        likelihood=_check_level(likelihood, "likelihood"),
        risk=risk.risk_of(impact, likelihood),
        implementation_plan=implementation_plan.strip(),
        rollback_plan=rollback_plan.strip(),
        requester_id=requester.id,
        implementer_id=implementer.id if implementer else None,
        template_id=template.id if template else None,
        window_start=window[0] if window else None,
        window_end=window[1] if window else None,
        status="draft",
    )
    change.services = _check_services(services, template.services if template else ())
    change.tickets = list({t.id: t for t in tickets}.values())
    db.session.add(change)
    db.session.flush()
    record(
        "change.created",
        requester,
        change,
        after={
            "type": change.type,
            "title": change.title,
            "risk": change.risk,
            "services": _label(change.services),
            "template": _label(template),
            "tickets": [t.number for t in change.tickets],
        },
    )
    jobs.commit()
    return change


def update_change(
    change: ChangeRequest,
    actor: User,
    *,
    title: str | None = None,
    type_: str | None = None,
    description: str | None = None,
    justification: str | None = None,
    success_criteria: str | None = None,
    impact: int | None = None,
    likelihood: int | None = None,
    implementation_plan: str | None = None,
    rollback_plan: str | None = None,
    services: Iterable[Service] | None = None,
    window: tuple[datetime, datetime] | None = None,
) -> list[str]:
    """Edit a draft or a rejected change; None leaves a field as it is. Each changed field
    is kept in the history; one `change.updated` event holds them all. Returns the names
    of the fields that changed."""
    require_owner(change, actor)
    if change.status not in EDITABLE:
        raise Conflict(f"A {change.status_label.lower()} change cannot be edited.")
    wanted: dict[str, object] = {}
    for field, value in zip(
        TEXT_FIELDS,
        (title, description, justification, success_criteria, implementation_plan, rollback_plan),
        strict=True,
    ):
        if value is not None:
            wanted[field] = " ".join(value.split()) if field == "title" else value.strip()
    if wanted.get("title") == "":
        raise ServiceError("Give the change a title.", field="title")
    if impact is not None:
        wanted["impact"] = _check_level(impact, "impact")
    if likelihood is not None:
        wanted["likelihood"] = _check_level(likelihood, "likelihood")
    if services is not None:
        wanted["services"] = _check_services(services, change.services)
    if window is not None:
        check_window(*window)
        wanted["window_start"], wanted["window_end"] = window
    if type_ is not None and type_ != change.type:
        if type_ not in TYPES or type_ == "standard":
            raise ServiceError("Choose normal or emergency.", field="type")
        wanted["type"] = type_
    changed = [f for f, v in wanted.items() if getattr(change, f) != v]
    if change.is_pre_approved and "type" not in changed:
        fixed = [f for f in changed if f in FROM_TEMPLATE]
        if fixed:
            raise Conflict(
                "A standard change keeps its template's plans, risk and services; make it "
                "a normal change to change them.",
                field=fixed[0],
            )
    if not changed:
        return []
    before = {f: _label(getattr(change, f)) for f in changed}
    for field in changed:
        keep_history(change, field, getattr(change, field), wanted[field], actor)
        setattr(change, field, wanted[field])
    if "type" in changed and change.template_id is not None:
        # Leaving the template's terms means it is no longer pre-approved.
        keep_history(change, "template", change.template, None, actor)
        before["template"] = _label(change.template)
        change.template_id = None
        changed.append("template")
    new_risk = risk.risk_of(change.impact, change.likelihood)
    if new_risk != change.risk:
        keep_history(change, "risk", change.risk, new_risk, actor)
        before["risk"] = change.risk
        change.risk = new_risk
        changed.append("risk")
    after = {f: _label(getattr(change, f)) for f in before}
    record("change.updated", actor, change, **diff(before, after))
    jobs.commit()
    return changed


def assign_implementer(change: ChangeRequest, implementer: User | None, actor: User) -> None:
    """Name (or clear) who carries the change out, at any point before it starts."""
    require_owner(change, actor)
    if change.status not in (
        "draft",
        "submitted",
        "in_review",
        "approved",
        "rejected",
        "scheduled",
    ):
        raise Conflict(f"A {change.status_label.lower()} change keeps its implementer.")
    if (implementer and implementer.id) == change.implementer_id:
        return
    _check_implementer(change, implementer)
    _change(change, "implementer", change.implementer, implementer, actor)
    change.implementer_id = implementer.id if implementer else None
    jobs.commit()


def link_ticket(change: ChangeRequest, ticket: Ticket, actor: User) -> None:
    """Link a ticket or an incident the change relates to."""
    require_involved(change, actor)
    if ticket in change.tickets:
        raise Conflict(f"{ticket.number} is linked already.", field="ticket")
    change.tickets.append(ticket)
    record("change.ticket_linked", actor, change, ticket=ticket.number, ticket_type=ticket.type)
    jobs.commit()


def unlink_ticket(change: ChangeRequest, ticket: Ticket, actor: User) -> None:
    require_involved(change, actor)
    if ticket not in change.tickets:
        raise Conflict(f"{ticket.number} is not linked to {change.number}.")
    change.tickets.remove(ticket)
    record("change.ticket_unlinked", actor, change, ticket=ticket.number)
    jobs.commit()
