"""The monthly checks of the work, each with a data set where it finds something and one
where it finds nothing: separation of duties, breached tickets without a note, P0/P1
incidents closed without a review, emergency changes without a retrospective.

The rows these look for are the ones the portal's own rules refuse to make (a change
approved by its requester, an incident closed without its review), so they are written
here as a data fix or an import would leave them."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import update

from portal.changes import services as change_services
from portal.changes.models import ChangeRequest, ChangeReview, ChangeVote
from portal.extensions import db
from portal.tickets import services as ticket_services
from portal.tickets.extra_models import ActionItem, IncidentReview
from portal.tickets.models import Ticket, TicketReply
from portal.timeutil import utcnow
from tests.audits.check_helpers import run_check, subjects
from tests.factories import make_user


def _change(requester, implementer=None, type_="normal", status="approved"):  # type: ignore[no-untyped-def]
    change = change_services.create_change(
        requester,
        "Rotate the database password",
        type_,
        justification="Policy.",
        implementation_plan="Rotate it.",
        rollback_plan="Restore it.",
        implementer=implementer,
    )
    db.session.execute(
        update(ChangeRequest).where(ChangeRequest.id == change.id).values(status=status)
    )
    db.session.commit()
    return change


def _vote(change, approver, decision="approve"):  # type: ignore[no-untyped-def]
    db.session.add(
        ChangeVote(
            change_id=change.id,
            round=1,
            approver_id=approver.id,
            decision=decision,
            approver_role=approver.role,
        )
    )
    db.session.commit()


def test_separation_of_duties_finds_approvals_by_the_requester_or_implementer(ctx) -> None:  # type: ignore[no-untyped-def]
    requester, implementer, approver = (make_user(role="approver") for _ in range(3))
    self_approved = _change(requester, implementer)
    _vote(self_approved, requester)
    by_implementer = _change(make_user(role="agent"), implementer)
    _vote(by_implementer, implementer)
    proper = _change(make_user(role="agent"), implementer)
    _vote(proper, approver)
    _vote(_change(requester), requester, "reject")  # rejecting one's own change is no breach
    outcome = run_check("separation_of_duties", utcnow())
    assert subjects(outcome) == {f"change:{self_approved.id}", f"change:{by_implementer.id}"}
    titles = {d.subject_key: d.title for d in outcome.drafts}
    assert titles[f"change:{self_approved.id}"].endswith("approved by its requester")
    assert titles[f"change:{by_implementer.id}"].endswith("approved by its implementer")
    assert outcome.total == 3 and outcome.passed == 1


def test_separation_of_duties_finds_nothing_when_others_approve(ctx) -> None:  # type: ignore[no-untyped-def]
    requester, approver = make_user(role="agent"), make_user(role="approver")
    _vote(_change(requester), approver)
    outcome = run_check("separation_of_duties", utcnow())
    assert outcome.drafts == [] and outcome.total == 1 and outcome.passed == 1


def _ticket(requester, **values):  # type: ignore[no-untyped-def]
    ticket = ticket_services.create_ticket(requester, "Checkout fails", "Every time.")
    db.session.execute(update(Ticket).where(Ticket.id == ticket.id).values(**values))
    db.session.commit()
    return ticket


def test_breached_without_note_finds_breaches_nobody_explained(ctx) -> None:  # type: ignore[no-untyped-def]
    requester, agent = make_user(), make_user(role="agent")
    silent = _ticket(requester, sla_state="breached")
    explained = _ticket(requester, sla_state="breached")
    db.session.add(
        TicketReply(
            ticket_id=explained.id, author_id=agent.id, body="Vendor outage.", is_internal=True
        )
    )
    answered_publicly = _ticket(requester, sla_state="breached")
    db.session.add(TicketReply(ticket_id=answered_publicly.id, author_id=agent.id, body="Sorry!"))
    db.session.commit()
    _ticket(requester, sla_state="on_track")
    outcome = run_check("breached_without_note", utcnow())
    assert subjects(outcome) == {f"ticket:{silent.id}", f"ticket:{answered_publicly.id}"}
    assert outcome.total == 3 and outcome.passed == 1


def test_breached_without_note_finds_nothing_without_breaches(ctx) -> None:  # type: ignore[no-untyped-def]
    _ticket(make_user(), sla_state="at_risk")
    outcome = run_check("breached_without_note", utcnow())
    assert outcome.drafts == [] and outcome.total == 0


def _review(ticket, author, items: int = 1) -> None:  # type: ignore[no-untyped-def]
    review = IncidentReview(
        ticket_id=ticket.id, timeline="10:00 down", root_cause="Disk full", author_id=author.id
    )
    db.session.add(review)
    db.session.flush()
    for n in range(items):
        db.session.add(
            ActionItem(
                review_id=review.id,
                description=f"Alert {n}",
                owner_id=author.id,
                due_on=date.today(),
            )
        )
    db.session.commit()


def test_incidents_without_review_finds_major_incidents_closed_without_one(ctx) -> None:  # type: ignore[no-untyped-def]
    requester, agent = make_user(), make_user(role="agent")
    closed = {"type": "incident", "status": "closed", "closed_at": utcnow()}
    unreviewed = _ticket(requester, priority="critical", **closed)
    half_reviewed = _ticket(requester, priority="high", **closed)
    _review(half_reviewed, agent, items=0)  # no action item: not complete
    reviewed = _ticket(requester, priority="high", **closed)
    _review(reviewed, agent)
    _ticket(requester, priority="medium", **closed)  # P2 needs no review
    _ticket(requester, type="incident", priority="critical", status="in_progress")  # still open
    outcome = run_check("incidents_without_review", utcnow())
    assert subjects(outcome) == {f"ticket:{unreviewed.id}", f"ticket:{half_reviewed.id}"}
    titles = {d.subject_key: d.title for d in outcome.drafts}
    assert titles[f"ticket:{unreviewed.id}"].startswith("P0 incident")
    assert outcome.total == 3 and outcome.passed == 1


def test_incidents_without_review_finds_nothing_when_reviewed(ctx) -> None:  # type: ignore[no-untyped-def]
    requester, agent = make_user(), make_user(role="agent")
    ticket = _ticket(requester, type="incident", priority="critical", status="closed")
    _review(ticket, agent)
    outcome = run_check("incidents_without_review", utcnow())
    assert outcome.drafts == [] and outcome.total == 1


def test_emergency_without_retrospective_finds_carried_out_emergencies(ctx) -> None:  # type: ignore[no-untyped-def]
    requester = make_user(role="agent")
    missing = _change(requester, type_="emergency", status="completed")
    empty = _change(requester, type_="emergency", status="closed")
    db.session.add(ChangeReview(change_id=empty.id, findings="  ", reviewer_id=requester.id))
    done = _change(requester, type_="emergency", status="failed")
    db.session.add(
        ChangeReview(change_id=done.id, findings="Paged too late.", reviewer_id=requester.id)
    )
    db.session.commit()
    _change(requester, type_="emergency", status="implementing")  # not carried out yet
    _change(requester, status="completed")  # a normal change
    outcome = run_check("emergency_without_retrospective", utcnow())
    assert subjects(outcome) == {f"change:{missing.id}", f"change:{empty.id}"}
    assert outcome.drafts[0].rows[0]["requester"] == requester.email
    assert outcome.total == 3 and outcome.passed == 1


def test_emergency_without_retrospective_finds_nothing_when_each_has_one(ctx) -> None:  # type: ignore[no-untyped-def]
    requester = make_user(role="agent")
    change = _change(requester, type_="emergency", status="closed")
    db.session.add(ChangeReview(change_id=change.id, findings="Fine.", reviewer_id=requester.id))
    db.session.commit()
    outcome = run_check("emergency_without_retrospective", utcnow() + timedelta(days=40))
    assert outcome.drafts == [] and outcome.total == 1
