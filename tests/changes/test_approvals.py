"""Drafting, submitting and deciding change requests through the services: the votes,
the rows, the emails and the audit events they leave."""

import pytest
from sqlalchemy import select

from portal.audits.models import AuditEvent
from portal.changes import approvals, services
from portal.changes.models import ChangeHistory, ChangeVote
from portal.changes.setup_models import StandardTemplate
from portal.errors import Conflict, Forbidden, ServiceError
from portal.extensions import db
from portal.tickets.services import create_ticket
from tests.changes.helpers import mail_to, make_change, make_service
from tests.factories import make_user


def _actions(change):
    return [
        e.action
        for e in db.session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.target_type == "changerequest", AuditEvent.target_id == str(change.id)
            )
            .order_by(AuditEvent.id)
        )
    ]


def _history(change, field):
    return [
        (h.old_value, h.new_value)
        for h in db.session.scalars(
            select(ChangeHistory)
            .where(ChangeHistory.change_id == change.id, ChangeHistory.field == field)
            .order_by(ChangeHistory.id)
        )
    ]


def test_a_change_is_drafted_with_its_risk_and_number(ctx):
    incident = create_ticket(make_user(), "Checkout down", "502s", type_="incident")
    change = make_change(impact=2, likelihood=3, tickets=[incident])
    assert (change.status, change.risk, change.approval_round) == ("draft", "high", 1)
    assert change.number == f"CR-{change.id:06d}"
    assert [t.number for t in change.tickets] == [incident.number]
    assert _actions(change) == ["change.created"]


def test_only_staff_who_may_raise_changes_do(ctx):
    with pytest.raises(Forbidden):
        make_change(requester=make_user(role="auditor"))


def test_editing_a_draft_keeps_each_field_in_the_history(ctx):
    change = make_change()
    changed = services.update_change(
        change, change.requester, rollback_plan="Switch DNS back", impact=3, likelihood=2
    )
    assert set(changed) == {"rollback_plan", "impact", "likelihood", "risk"}
    assert _history(change, "risk") == [("low", "high")]
    assert _history(change, "rollback_plan")[0][1] == "Switch DNS back"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "change.updated"))
    assert event.data["after"]["rollback_plan"] == "Switch DNS back"
    with pytest.raises(Forbidden):
        services.update_change(change, make_user(role="approver"), title="Mine now")


def test_submitting_without_a_rollback_plan_is_a_409_naming_it(ctx):
    change = make_change(rollback_plan="")
    with pytest.raises(Conflict) as refused:
        approvals.submit(change, change.requester)
    assert refused.value.status == 409
    assert refused.value.message == "Add a rollback plan before submitting."
    assert change.status == "draft"


def test_submitting_asks_the_approvers_and_nobody_else(ctx):
    approver = make_user(role="approver")
    admin = make_user(role="admin")
    agent = make_user(role="agent")
    implementer = make_user(role="approver")
    change = make_change(impact=2, likelihood=2, implementer=implementer)
    approvals.submit(change, change.requester)
    assert change.status == "in_review"
    assert _history(change, "status") == [("draft", "submitted"), ("submitted", "in_review")]
    [ask] = mail_to(approver)
    assert change.number in ask.subject and "2 approvals" in ask.body
    assert len(mail_to(admin)) == 1
    assert mail_to(agent) == [] and mail_to(implementer) == []
    assert mail_to(change.requester) == []
    assert _actions(change)[-2:] == ["change.submitted", "change.review_started"]


def test_low_risk_needs_one_approval_and_the_requester_hears(ctx):
    change = make_change()
    approvals.submit(change, change.requester)
    vote = approvals.vote(change, make_user(role="approver"), "approve", " Fine by me ")
    assert (change.status, vote.comment, vote.round) == ("approved", "Fine by me", 1)
    assert vote.created_at is not None
    [decision] = mail_to(change.requester)
    assert decision.subject.startswith(f"[{change.number}] Approved")
    assert _actions(change)[-2:] == ["change.vote_cast", "change.approved"]


def test_medium_risk_needs_two_approvals(ctx):
    change = make_change(impact=2, likelihood=2)
    approvals.submit(change, change.requester)
    approvals.vote(change, make_user(role="approver"), "approve")
    assert change.status == "in_review"
    assert mail_to(change.requester) == []
    approvals.vote(change, make_user(role="approver"), "approve")
    assert change.status == "approved"


def test_high_risk_needs_three_approvals_one_from_an_admin(ctx):
    admin = make_user(role="admin")
    change = make_change(impact=3, likelihood=3)
    approvals.submit(change, change.requester)
    assert len(mail_to(admin)) == 1
    for _ in range(3):
        approvals.vote(change, make_user(role="approver"), "approve")
    assert change.status == "in_review"  # three approvals, but no admin among them
    # Once only the admin's vote is missing, the admins are asked for it.
    assert [m.subject for m in mail_to(admin)][-1].startswith(f"[{change.number}] Waiting")
    assert len(mail_to(admin)) == 2
    approvals.vote(change, admin, "approve")
    assert change.status == "approved"


def test_the_requester_and_the_implementer_can_never_vote(ctx):
    requester = make_user(role="admin")
    implementer = make_user(role="approver")
    change = make_change(requester=requester, implementer=implementer)
    approvals.submit(change, requester)
    for person in (requester, implementer, make_user(role="agent")):
        with pytest.raises(Forbidden) as refused:
            approvals.vote(change, person, "approve")
        assert refused.value.status == 403
    assert db.session.scalars(select(ChangeVote)).all() == []


def test_a_voter_cannot_then_become_the_implementer(ctx):
    change = make_change(impact=2, likelihood=2)
    approvals.submit(change, change.requester)
    approver = make_user(role="approver")
    approvals.vote(change, approver, "approve")
    with pytest.raises(Conflict, match="voted on this change"):
        services.assign_implementer(change, approver, change.requester)


def test_a_second_vote_in_the_same_round_is_refused(ctx):
    change = make_change(impact=2, likelihood=2)
    approvals.submit(change, change.requester)
    approver = make_user(role="approver")
    approvals.vote(change, approver, "approve")
    with pytest.raises(Conflict, match="already voted"):
        approvals.vote(change, approver, "reject", "Changed my mind")
    assert len(change.votes) == 1


def test_one_rejection_rejects_and_tells_the_requester_why(ctx):
    change = make_change(impact=2, likelihood=2)
    approvals.submit(change, change.requester)
    approvals.vote(change, make_user(role="admin"), "approve")
    with pytest.raises(ServiceError, match="Say why"):
        approvals.vote(change, make_user(role="approver"), "reject", "  ")
    approvals.vote(change, make_user(role="approver"), "reject", "No rollback test")
    assert (change.status, change.rejection_reason) == ("rejected", "No rollback test")
    [rejected] = mail_to(change.requester)
    assert "Rejected" in rejected.subject and "No rollback test" in rejected.body
    with pytest.raises(Conflict, match="not waiting for votes"):
        approvals.vote(change, make_user(role="approver"), "approve")
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "change.rejected"))
    assert event.data["reason"] == "No rollback test"


def test_resubmission_clears_the_votes_but_keeps_them_on_record(ctx):
    change = make_change(impact=2, likelihood=2)
    approvals.submit(change, change.requester)
    first = make_user(role="approver")
    approvals.vote(change, first, "approve", "ok")
    approvals.vote(change, make_user(role="approver"), "reject", "Window too long")
    services.update_change(change, change.requester, implementation_plan="Shorter plan")
    approvals.resubmit(change, change.requester)
    assert (change.status, change.approval_round, change.rejection_reason) == ("in_review", 2, None)
    assert _history(change, "rejection_reason") == [
        (None, "Window too long"),
        ("Window too long", None),
    ]
    assert change.current_votes == []
    kept = db.session.scalars(select(ChangeVote).where(ChangeVote.change_id == change.id)).all()
    assert sorted((v.round, v.decision) for v in kept) == [(1, "approve"), (1, "reject")]
    # The earlier approver votes afresh, and one vote is no longer enough.
    approvals.vote(change, first, "approve", "still ok")
    assert change.status == "in_review"
    assert "change.votes_cleared" in _actions(change)
    with pytest.raises(Conflict, match="Only a rejected change"):
        approvals.resubmit(change, change.requester)


def test_an_emergency_needs_one_approval_whatever_its_risk(ctx):
    change = make_change(type_="emergency", impact=3, likelihood=3)
    approvals.submit(change, change.requester)
    approvals.vote(change, make_user(role="approver"), "approve")
    assert change.status == "approved"


def test_a_change_from_a_standard_template_is_pre_approved(ctx):
    admin = make_user(role="admin")
    template = StandardTemplate(
        name="Rotate log volume",
        implementation_plan="Rotate and compress",
        rollback_plan="Nothing to roll back",
        created_by_id=admin.id,
    )
    template.services = [make_service("Logging")]
    db.session.add(template)
    db.session.commit()
    change = services.create_change(make_user(), "Rotate logs on web-1", template=template)
    assert (change.type, change.implementation_plan) == ("standard", "Rotate and compress")
    with pytest.raises(Conflict, match="keeps its template"):
        services.update_change(change, change.requester, rollback_plan="Something else")
    approvals.submit(change, change.requester)
    assert change.status == "approved" and change.votes == []
    assert _history(change, "status")[-1] == ("submitted", "approved")
    approved = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "change.approved"))
    assert approved.data["pre_approved"] is True and approved.actor_label == "system"
    [decision] = mail_to(change.requester)
    assert "pre-approved" in decision.body


def test_a_standard_change_needs_a_template(ctx):
    with pytest.raises(ServiceError, match="template"):
        make_change(type_="standard")


def test_leaving_the_template_makes_it_a_normal_change_that_needs_votes(ctx):
    template = StandardTemplate(
        name="Restart cache",
        implementation_plan="Restart",
        rollback_plan="None",
        created_by_id=make_user(role="admin").id,
    )
    template.services = [make_service("Cache")]
    db.session.add(template)
    db.session.commit()
    change = services.create_change(make_user(), "Restart cache", template=template)
    services.update_change(
        change, change.requester, type_="normal", rollback_plan="Warm the cache", justification="x"
    )
    assert (change.type, change.template_id, change.is_pre_approved) == ("normal", None, False)
    approvals.submit(change, change.requester)
    assert change.status == "in_review"
