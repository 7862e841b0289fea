"""Periodic ticket work: SLA states and warnings, auto-close, auto-resolve.

Warnings are also scheduled for the exact moment a clock reaches 75 % or its
target (RQ's scheduler, see `schedule_checks`); the sweep is the safety net for
a lost schedule. Both go through `check_ticket`, which sends each warning once
per clock and threshold whoever gets there first (a unique row per warning).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import jobs
from ..errors import ServiceError
from ..extensions import db
from ..timeutil import utcnow
from . import notify, sla
from .models import OPEN_STATUSES, SlaNotification, Ticket, TicketReply

BATCH = 500


@dataclass
class SweepResult:
    checked: int = 0
    warnings_sent: int = 0
    closed: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.checked} open tickets checked, {self.warnings_sent} SLA warnings sent, "
            f"{len(self.closed)} closed, {len(self.resolved)} resolved after no reply"
        )


def _recipient(ticket: Ticket):  # type: ignore[no-untyped-def]
    if ticket.assignee is not None and ticket.assignee.is_active:
        return ticket.assignee
    return ticket.team.lead if ticket.team is not None else None


def _claim_warning(ticket: Ticket, clock: str, threshold: str) -> bool:
    """Record the warning; False when it was already sent (now or by a concurrent run)."""
    try:
        with db.session.begin_nested():
            db.session.add(SlaNotification(ticket_id=ticket.id, clock=clock, threshold=threshold))
    except IntegrityError:
        return False
    return True


def check_ticket(ticket: Ticket, now: datetime | None = None) -> int:
    """Refresh one ticket's SLA state and send the warnings it has reached. Commits."""
    now = now or utcnow()
    clocks = sla.recompute(ticket, now)
    sent = 0
    recipient = _recipient(ticket)
    for clock, state in (("response", clocks.response), ("resolution", clocks.resolution)):
        if state.status not in ("running", "paused"):
            continue
        threshold = {"at_risk": "at_risk", "breached": "breached"}.get(state.state)
        if threshold is None or recipient is None:
            continue
        if _claim_warning(ticket, clock, threshold):
            notify.sla_warning(ticket, recipient, clock, threshold, state)
            sent += 1
    jobs.commit()
    return sent


@jobs.job
def check_ticket_job(ticket_id: int) -> int:
    """Scheduled at a clock's 75 % and 100 % moments; harmless if the ticket changed since."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or ticket.status not in OPEN_STATUSES:
        return 0
    return check_ticket(ticket)


def schedule_checks(ticket: Ticket, clocks: sla.Clocks) -> None:
    """After the commit, have RQ's scheduler check the ticket when a clock turns at risk
    or breaches (a second past the moment, so the clock has really crossed it)."""
    now = utcnow()
    moments = set()
    for state in (clocks.response, clocks.resolution):
        if state.status != "running":
            continue
        for moment in (state.at_risk_at, state.due_at):
            if moment is not None and moment > now:
                moments.add(moment + timedelta(seconds=1))
    for moment in sorted(moments):
        jobs.after_commit(check_ticket_job, ticket.id, at=moment)


def _last_requester_reply(ticket: Ticket) -> datetime | None:
    return db.session.scalar(
        select(TicketReply.created_at)
        .where(TicketReply.ticket_id == ticket.id, TicketReply.author_id == ticket.requester_id)
        .order_by(TicketReply.created_at.desc())
        .limit(1)
    )


def _auto_close(now: datetime, result: SweepResult) -> None:
    from .services import change_status

    days = current_app.config["SETTINGS"].TICKET_AUTO_CLOSE_DAYS
    stale = db.session.scalars(
        select(Ticket).where(
            Ticket.status == "resolved", Ticket.status_changed_at <= now - timedelta(days=days)
        )
    ).all()
    for ticket in stale:
        try:
            change_status(ticket, "closed", None, f"resolved for {days} days")
        except ServiceError:
            # e.g. a P0/P1 still without its review: it stays resolved until it has one.
            jobs.rollback()
        else:
            result.closed.append(ticket.number)


def _auto_resolve(now: datetime, result: SweepResult) -> None:
    from .services import change_status

    days = current_app.config["SETTINGS"].TICKET_PENDING_RESOLVE_DAYS
    cutoff = now - timedelta(days=days)
    waiting = db.session.scalars(
        select(Ticket).where(Ticket.status == "pending", Ticket.status_changed_at <= cutoff)
    ).all()
    for ticket in waiting:
        last_reply = _last_requester_reply(ticket)
        if last_reply is not None and last_reply > cutoff:
            continue
        notify.status_notice(
            ticket,
            f"{ticket.number} was resolved: no reply for {days} days. "
            "Reply to the ticket to reopen it.",
        )
        change_status(ticket, "resolved", None, f"no reply for {days} days")
        result.resolved.append(ticket.number)


def run_sweep(now: datetime | None = None) -> SweepResult:
    """The periodic pass: SLA states and warnings for open tickets, then the time rules."""
    now = now or utcnow()
    result = SweepResult()
    last_id = 0
    while True:
        batch = db.session.scalars(
            select(Ticket)
            .where(Ticket.status.in_(OPEN_STATUSES), Ticket.id > last_id)
            .order_by(Ticket.id)
            .limit(BATCH)
        ).all()
        if not batch:
            break
        for ticket in batch:
            result.warnings_sent += check_ticket(ticket, now)
            result.checked += 1
        last_id = batch[-1].id
    _auto_resolve(now, result)
    _auto_close(now, result)
    return result


@jobs.job
def sweep_job() -> str:
    return run_sweep().summary()
