"""A ticket's two SLA clocks: the events that drive them and the due times they give.

First response: starts when the ticket is filed, stops at the first public reply
by an agent. Resolution: starts when filed, pauses while pending, resumes when
the ticket leaves pending, stops when resolved, resumes on reopen. Every one of
those is an `SlaEvent`; due times and the state are replayed from the events and
the policy's calendar, never edited by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ..extensions import db
from ..timeutil import utcnow
from .models import SlaEvent, Ticket
from .setup_models import SlaCalendar, SlaPolicy
from .sla_clock import Calendar, ClockEvent, ClockState, replay

CLOCKS = ("response", "resolution")
STATE_RANK = {"met": 0, "on_track": 1, "at_risk": 2, "breached": 3}
# Incidents answer by severity: P0 15 min, P1 1 h, P2 4 h, P3 the next business day
# (one business day, 8 h, counted on the business-hours calendar).
INCIDENT_RESPONSE_SECONDS = {"critical": 15 * 60, "high": 3600, "medium": 4 * 3600, "low": 8 * 3600}


def calendar_of(row: SlaCalendar) -> Calendar:
    if row.kind != "business":
        return Calendar(kind="24x7", timezone=row.timezone)
    return Calendar(
        kind="business",
        timezone=row.timezone,
        weekdays=frozenset(int(d) for d in row.weekdays.split(",") if d.strip()),
        start=row.day_start,
        end=row.day_end,
        holidays=frozenset(h.day for h in row.holidays),
    )


def policy_for(priority: str) -> SlaPolicy:
    policy = db.session.scalar(select(SlaPolicy).where(SlaPolicy.priority == priority))
    if policy is None:
        raise RuntimeError(f"No SLA policy for priority {priority!r}")
    return policy


def _targets(ticket: Ticket, policy: SlaPolicy) -> dict[str, int]:
    response = policy.response_minutes * 60
    if ticket.type == "incident":
        response = INCIDENT_RESPONSE_SECONDS[ticket.priority]
    return {"response": response, "resolution": policy.resolution_minutes * 60}


def _business_calendar() -> SlaCalendar | None:
    return db.session.scalar(
        select(SlaCalendar).where(SlaCalendar.kind == "business").order_by(SlaCalendar.id)
    )


def _calendars(ticket: Ticket) -> dict[str, Calendar]:
    """The calendar each clock counts in: the policy's, except a P3 incident's response,
    which counts business time ("the next business day")."""
    policy_calendar = calendar_of(policy_for(ticket.priority).calendar)
    response = policy_calendar
    if ticket.type == "incident" and ticket.priority == "low":
        business = _business_calendar()
        response = calendar_of(business) if business else policy_calendar
    return {"response": response, "resolution": policy_calendar}


def _event(ticket: Ticket, clock: str, kind: str, at: datetime, **extra: object) -> None:
    db.session.add(SlaEvent(ticket_id=ticket.id, clock=clock, kind=kind, at=at, **extra))


def events_of(ticket: Ticket) -> list[SlaEvent]:
    return list(
        db.session.scalars(
            select(SlaEvent).where(SlaEvent.ticket_id == ticket.id).order_by(SlaEvent.id)
        )
    )


def start(ticket: Ticket, at: datetime) -> None:
    targets = _targets(ticket, policy_for(ticket.priority))
    for clock in CLOCKS:
        _event(
            ticket,
            clock,
            "start",
            at,
            target_seconds=targets[clock],
            note=f"{ticket.priority} policy",
        )


def first_response(ticket: Ticket, at: datetime) -> None:
    _event(ticket, "response", "stop", at, note="first public reply")


def status_changed(ticket: Ticket, old: str, new: str, at: datetime) -> None:
    """Pause, resume or stop the resolution clock as the status moves."""
    if new == "pending" and old != "pending":
        _event(ticket, "resolution", "pause", at, note="waiting on the requester")
    elif old == "pending" and new not in ("resolved", "closed"):
        _event(ticket, "resolution", "resume", at, note=f"left pending ({new})")
    if new == "resolved" and old != "resolved":
        _event(ticket, "resolution", "stop", at, note="resolved")
        if ticket.first_response_at is None:
            _event(ticket, "response", "stop", at, note="resolved before any reply")
    elif old in ("resolved", "closed") and new not in ("resolved", "closed"):
        _event(ticket, "resolution", "resume", at, note="reopened")


def priority_changed(ticket: Ticket, at: datetime, note: str | None = None) -> None:
    """The new priority's (or policy's) targets apply from now on; time used stays used."""
    targets = _targets(ticket, policy_for(ticket.priority))
    for clock in CLOCKS:
        _event(
            ticket,
            clock,
            "target",
            at,
            target_seconds=targets[clock],
            note=note or f"priority changed to {ticket.priority}",
        )


@dataclass(frozen=True)
class Clocks:
    response: ClockState
    resolution: ClockState

    @property
    def state(self) -> str:
        """What the ticket's badge shows: the worse of its clocks that still count."""
        states = [self.resolution.state]
        if self.response.state != "met":
            states.append(self.response.state)
        return max(states, key=lambda s: STATE_RANK.get(s, 1))


def clocks(
    ticket: Ticket, events: list[SlaEvent] | None = None, now: datetime | None = None
) -> Clocks:
    calendars = _calendars(ticket)
    rows = events if events is not None else events_of(ticket)
    now = now or utcnow()
    by_clock = {
        clock: [
            ClockEvent(at=e.at, kind=e.kind, target_seconds=e.target_seconds)
            for e in rows
            if e.clock == clock
        ]
        for clock in CLOCKS
    }
    return Clocks(
        response=replay(calendars["response"], by_clock["response"], now),
        resolution=replay(calendars["resolution"], by_clock["resolution"], now),
    )


def stored_figures(result: Clocks) -> dict[str, Any]:
    """What a ticket row keeps of its clocks, so lists, exports and reports read columns
    instead of replaying events: due times, states, business time once a clock stopped."""

    def seconds_if_stopped(state: ClockState) -> int | None:
        return state.used_seconds if state.stopped_at is not None else None

    return {
        "response_due_at": result.response.due_at or result.response.breached_at,
        "resolution_due_at": result.resolution.due_at or result.resolution.breached_at,
        "sla_state": result.state,
        "response_state": result.response.state,
        "resolution_state": result.resolution.state,
        "response_seconds": seconds_if_stopped(result.response),
        "resolution_seconds": seconds_if_stopped(result.resolution),
        "paused_seconds": result.resolution.paused_seconds,
    }


def recompute(ticket: Ticket, now: datetime | None = None) -> Clocks:
    """Refresh the due times, states and figures the ticket row keeps; returns the clocks."""
    db.session.flush()
    result = clocks(ticket, now=now)
    for name, value in stored_figures(result).items():
        setattr(ticket, name, value)
    return result


def recompute_all(batch: int = 500, progress: Callable[[int], None] | None = None) -> int:
    """`recompute` every ticket, committing a batch at a time (keyset over ids, so memory
    stays flat at any count). Not an action anyone takes: the stored figures are derived
    from events already audited, so nothing new is recorded."""
    last_id, done = 0, 0
    while True:
        tickets = db.session.scalars(
            select(Ticket).where(Ticket.id > last_id).order_by(Ticket.id).limit(batch)
        ).all()
        if not tickets:
            return done
        for ticket in tickets:
            recompute(ticket)
        last_id, done = tickets[-1].id, done + len(tickets)
        db.session.commit()
        db.session.expunge_all()
        if progress is not None:
            progress(done)
