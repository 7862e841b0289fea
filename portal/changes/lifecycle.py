"""Change request use cases after the decision: scheduling a window (with its conflict
and freeze checks), implementing, validating, the outcome, the emergency retrospective
and closing. Same habits as services.py: check, change, history, audit, commit."""

from __future__ import annotations

from datetime import datetime

from .. import jobs
from ..audits import record
from ..errors import Conflict, ServiceError
from ..extensions import db
from ..timeutil import utcnow
from ..users.models import User
from . import notify, tasks
from .conflicts import (
    Clash,
    FreezeConflict,
    WindowConflict,
    check_window,
    describe_freeze,
    find_clashes,
    find_freezes,
)
from .models import ChangeRequest, ChangeReview, ConflictAcknowledgement
from .risk import check_voter
from .services import keep_history, move, require_involved
from .workflow import check_allowed, check_transition


def schedule(
    change: ChangeRequest,
    actor: User,
    window: tuple[datetime, datetime] | None = None,
    acknowledge_conflicts: bool = False,
    freeze_reason: str | None = None,
) -> list[Clash]:
    """Schedule an approved change for `window` (naive UTC; the planned window when None),
    or move a scheduled change to a new one.

    A window in a freeze is refused (FreezeConflict) unless the change is an emergency
    and `freeze_reason` says why. A window overlapping another scheduled or running
    change on a shared service is refused (WindowConflict, carrying the clashes) until
    `acknowledge_conflicts`; the acknowledgement is kept. Returns the acknowledged clashes.
    """
    require_involved(change, actor)
    rescheduling = change.status == "scheduled"
    if not rescheduling:
        check_allowed(change.status, "scheduled")
    start, end = window or (change.window_start, change.window_end)
    if start is None or end is None:
        # The table names what is missing: "Add a planned window before scheduling."
        check_transition(change, "scheduled")
    assert start is not None and end is not None
    check_window(start, end)
    now = utcnow()
    if end <= now:
        raise ServiceError("That window has already ended.", field="window_end")
    if rescheduling and (start, end) == (change.window_start, change.window_end):
        return []
    freezes = find_freezes(start, end)
    reason = (freeze_reason or "").strip()
    if freezes and not change.is_emergency:
        raise FreezeConflict(freezes)
    if freezes and not reason:
        raise ServiceError(
            "Say why this emergency change cannot wait until the freeze ends: "
            + "; ".join(describe_freeze(f) for f in freezes),
            field="freeze_reason",
        )
    clashes = find_clashes(change, start, end)
    if clashes and not acknowledge_conflicts:
        raise WindowConflict(clashes)

    before = {"window_start": change.window_start, "window_end": change.window_end}
    after = {"window_start": start, "window_end": end}
    for field, old in before.items():
        if old != after[field]:
            keep_history(change, field, old, after[field], actor)
    change.window_start, change.window_end = start, end
    new_reason = reason if freezes else None
    if new_reason != change.freeze_reason:
        keep_history(change, "freeze_reason", change.freeze_reason, new_reason, actor)
        change.freeze_reason = new_reason
    if freezes:
        record(
            "change.freeze_overridden",
            actor,
            change,
            reason=reason,
            freezes=[describe_freeze(f) for f in freezes],
        )
    for clash in clashes:
        db.session.add(
            ConflictAcknowledgement(
                change_id=change.id,
                other_change_id=clash.change.id,
                window_start=start,
                window_end=end,
                other_window_start=clash.change.window_start,
                other_window_end=clash.change.window_end,
                services=", ".join(s.name for s in clash.services)[:500],
                acknowledged_by_id=actor.id,
            )
        )
    if clashes:
        record(
            "change.conflicts_acknowledged",
            actor,
            change,
            conflicts=[clash.describe() for clash in clashes],
        )
    if rescheduling:
        record("change.rescheduled", actor, change, before=before, after=after)
    else:
        move(change, "scheduled", actor, **after)
    change.scheduled_at = now
    notify.scheduled(change, rescheduled=rescheduling)
    tasks.plan_reminders(change)
    jobs.commit()
    return clashes


def start_implementing(change: ChangeRequest, actor: User) -> None:
    require_involved(change, actor)
    move(change, "implementing", actor)
    change.started_at = utcnow()
    jobs.commit()


def start_validating(change: ChangeRequest, actor: User) -> None:
    require_involved(change, actor)
    move(change, "validating", actor)
    jobs.commit()


def _finish(
    change: ChangeRequest, actor: User, status: str, validation_results: str, outcome: str
) -> None:
    require_involved(change, actor)
    values = {"validation_results": validation_results.strip(), "outcome": outcome.strip()}
    old = {field: getattr(change, field) for field in values}
    for field, value in values.items():
        setattr(change, field, value)
    try:
        move(change, status, actor, **values)
    except Conflict:
        for field, value in old.items():
            setattr(change, field, value)
        raise
    for field, value in values.items():
        if value != old[field]:
            keep_history(change, field, old[field], value, actor)
    change.finished_at = utcnow()
    jobs.commit()


def complete(
    change: ChangeRequest, actor: User, validation_results: str, outcome: str = ""
) -> None:
    """The change worked: validation results are required (the table says so)."""
    _finish(change, actor, "completed", validation_results, outcome)


def fail(change: ChangeRequest, actor: User, validation_results: str, outcome: str = "") -> None:
    """The change failed validation and was rolled back; `outcome` says how it ended."""
    _finish(change, actor, "failed", validation_results, outcome)


def save_review(
    change: ChangeRequest, reviewer: User, findings: str, emergency_justified: bool = True
) -> ChangeReview:
    """Write or rewrite an emergency change's retrospective, once it has been carried out.
    The reviewer is an approver who neither asked for the change nor carried it out."""
    if not change.is_emergency:
        raise Conflict("Only emergency changes have a retrospective review.")
    if change.status not in ("validating", "completed", "failed"):
        raise Conflict("The retrospective comes after the change has been carried out.")
    check_voter(
        reviewer.id,
        reviewer.role,
        reviewer.is_active,
        change.requester_id,
        change.implementer_id,
        (),
    )
    findings = findings.strip()
    if not findings:
        raise ServiceError("Write what the review found.", field="findings")
    review = change.review
    created = review is None
    if review is None:
        review = ChangeReview(change_id=change.id, reviewer_id=reviewer.id)
        change.review = review
    before = {"findings": review.findings, "emergency_justified": review.emergency_justified}
    review.findings, review.emergency_justified = findings, emergency_justified
    review.reviewer_id = reviewer.id
    db.session.flush()
    record(
        "change.review_saved",
        reviewer,
        change,
        created=created,
        before=None if created else before,
        after={"findings": findings, "emergency_justified": emergency_justified},
    )
    jobs.commit()
    return review


def close(change: ChangeRequest, actor: User, lessons_learned: str | None = None) -> None:
    """Close a completed or failed change. A failed or emergency change needs its lessons
    learned, an emergency change its retrospective review as well."""
    require_involved(change, actor)
    old = change.lessons_learned
    if lessons_learned is not None:
        change.lessons_learned = lessons_learned.strip()
    try:
        move(change, "closed", actor)
    except Conflict:
        change.lessons_learned = old
        raise
    if change.lessons_learned != old:
        keep_history(change, "lessons_learned", old, change.lessons_learned, actor)
    change.closed_at = utcnow()
    jobs.commit()
