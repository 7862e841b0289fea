"""A change's way through the pages: submitted, voted on from the inbox, scheduled
around conflicts and freezes, carried out and closed; rejected and resubmitted."""

from __future__ import annotations

from datetime import datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.audits.models import AuditEvent
from portal.changes import approvals, lifecycle
from portal.changes.models import ChangeRequest, ConflictAcknowledgement
from portal.extensions import db
from tests.changes.helpers import (
    HOUR,
    approved_change,
    later,
    mail_to,
    make_change,
    make_freeze,
    make_service,
    scheduled_change,
)
from tests.factories import make_user, sign_in_client

HX = {"HX-Request": "true"}


def local(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M")


def client_for(app: Flask, role: str, **fields) -> tuple[FlaskClient, object]:
    user = make_user(role=role, **fields)
    client = app.test_client()
    sign_in_client(client, user)
    return client, user


def fresh(change: ChangeRequest) -> ChangeRequest:
    db.session.expire_all()
    return db.session.get(ChangeRequest, change.id)


def actions(change: ChangeRequest) -> list[str]:
    return list(
        db.session.scalars(
            select(AuditEvent.action)
            .where(
                AuditEvent.target_type == "changerequest", AuditEvent.target_id == str(change.id)
            )
            .order_by(AuditEvent.id)
        )
    )


def test_a_medium_risk_change_from_filing_to_closing(app, ctx):
    shop = make_service("Web shop")
    requester_client, requester = client_for(app, "requester", name="Rita Requester")
    implementer_client, implementer = client_for(app, "agent", name="Ivan Implementer")
    first_client, first = client_for(app, "approver", name="Ada Approver")
    second_client, second = client_for(app, "admin", name="Bo Admin")

    response = requester_client.post(
        "/changes/new",
        data={
            "type": "normal",
            "title": "Move the shop database",
            "justification": "The old host is retired.",
            "impact": "2",
            "likelihood": "2",
            "implementation_plan": "Replicate, then switch.",
            "rollback_plan": "Switch back.",
            "services": str(shop.id),
            "implementer": str(implementer.id),
        },
    )
    assert response.status_code == 302, response.text
    change = db.session.scalars(select(ChangeRequest).order_by(ChangeRequest.id.desc())).first()
    assert change.risk == "medium"
    assert requester_client.post(f"/changes/{change.id}/submit").status_code == 302
    assert fresh(change).status == "in_review"
    assert any(change.number in m.subject for m in mail_to(first))

    # The first approver votes from the inbox: the row is replaced in place.
    inbox = first_client.get("/changes/inbox").text
    assert f'id="inbox-row-{change.id}"' in inbox and "Move the shop database" in inbox
    row = first_client.post(
        f"/changes/inbox/{change.id}/vote",
        data={"decision": "approve", "comment": "Replication looks sound"},
        headers=HX,
    )
    assert row.status_code == 200
    assert row.text.lstrip().startswith(f'<tr id="inbox-row-{change.id}"')
    assert "You approved it" in row.text and "in review" in row.text
    assert f'id="inbox-row-{change.id}"' not in first_client.get("/changes/inbox").text

    # A rejection without a reason is refused in place; the second approver then approves.
    refused = second_client.post(
        f"/changes/inbox/{change.id}/vote", data={"decision": "reject", "comment": ""}, headers=HX
    )
    assert refused.status_code == 422
    assert 'id="comment-error"' in refused.text and "Say why you reject it" in refused.text
    assert refused.text.lstrip().startswith(f'<tr id="inbox-row-{change.id}"')
    approved = second_client.post(
        f"/changes/inbox/{change.id}/vote",
        data={"decision": "approve", "comment": "Go"},
        headers=HX,
    )
    assert approved.status_code == 200 and "approved" in approved.text
    assert fresh(change).status == "approved"
    page = requester_client.get(f"/changes/{change.id}").text
    assert "Replication looks sound" in page and "Ada Approver" in page and "Bo Admin" in page

    # Another change holds an overlapping window on the shop.
    start = later(days=3, hour=1)
    other = scheduled_change(start, start + 2 * HOUR, [shop], title="Shop index rebuild")
    window = {"window_start": local(start + HOUR), "window_end": local(start + 3 * HOUR)}
    clash = requester_client.post(f"/changes/{change.id}/schedule", data=window, headers=HX)
    assert clash.status_code == 409
    assert 'id="clashes"' in clash.text and other.number in clash.text
    assert 'name="acknowledge_conflicts"' in clash.text and "<html" not in clash.text
    assert fresh(change).status == "approved"
    plain = requester_client.post(f"/changes/{change.id}/schedule", data=window)
    assert plain.status_code == 409 and "I acknowledge these conflicts" in plain.text

    done = requester_client.post(
        f"/changes/{change.id}/schedule", data={**window, "acknowledge_conflicts": "y"}
    )
    assert done.status_code == 302
    change = fresh(change)
    assert change.status == "scheduled" and change.window_start == start + HOUR
    [ack] = db.session.scalars(
        select(ConflictAcknowledgement).where(ConflictAcknowledgement.change_id == change.id)
    ).all()
    assert (ack.other_change_id, ack.acknowledged_by_id) == (other.id, requester.id)
    page = requester_client.get(f"/changes/{change.id}").text
    assert 'id="acknowledgements"' in page and other.number in page

    # The implementer carries it out; completing needs validation results.
    assert implementer_client.post(f"/changes/{change.id}/implement").status_code == 302
    assert implementer_client.post(f"/changes/{change.id}/validate").status_code == 302
    missing = implementer_client.post(
        f"/changes/{change.id}/complete", data={"validation_results": "", "outcome": ""}
    )
    assert missing.status_code == 422
    assert 'id="validation_results-error"' in missing.text
    assert "Write what validation showed." in missing.text
    completed = implementer_client.post(
        f"/changes/{change.id}/complete",
        data={"validation_results": "Orders flow", "outcome": "Moved in 20 minutes"},
    )
    assert completed.status_code == 302 and fresh(change).status == "completed"
    closed = requester_client.post(
        f"/changes/{change.id}/close", data={"lessons_learned": "Replicate a day earlier"}
    )
    assert closed.status_code == 302
    change = fresh(change)
    assert change.status == "closed" and change.lessons_learned == "Replicate a day earlier"
    page = requester_client.get(f"/changes/{change.id}").text
    assert "Replicate a day earlier" in page and "None: the change is closed." in page
    assert actions(change) == [
        "change.created",
        "change.submitted",
        "change.review_started",
        "change.vote_cast",
        "change.vote_cast",
        "change.approved",
        "change.conflicts_acknowledged",
        "change.scheduled",
        "change.implementation_started",
        "change.validation_started",
        "change.completed",
        "change.closed",
    ]


def test_a_rejection_reaches_the_requester_and_a_resubmission_starts_a_new_round(app, ctx):
    requester_client, requester = client_for(app, "requester")
    approver_client, approver = client_for(app, "approver", name="Ada Approver")
    change = make_change(requester)
    approvals.submit(change, requester)

    response = approver_client.post(
        f"/changes/{change.id}/vote", data={"decision": "reject", "comment": "No rollback test"}
    )
    assert response.status_code == 302
    assert fresh(change).status == "rejected"
    assert any("No rollback test" in m.body for m in mail_to(requester))
    page = requester_client.get(f"/changes/{change.id}").text
    assert 'id="rejection-reason"' in page and "No rollback test" in page
    assert f'action="/changes/{change.id}/resubmit"' in page

    edited = requester_client.get(f"/changes/{change.id}/edit")
    assert edited.status_code == 200 and "No rollback test" in edited.text
    assert requester_client.post(f"/changes/{change.id}/resubmit").status_code == 302
    change = fresh(change)
    assert (change.status, change.approval_round, change.current_votes) == ("in_review", 2, [])
    page = requester_client.get(f"/changes/{change.id}").text
    assert "Round 1 (earlier" in page and "No rollback test" in page
    assert 'id="rejection-reason"' not in page
    assert "change.votes_cleared" in actions(change)
    inbox = approver_client.get("/changes/inbox").text
    assert f'id="inbox-row-{change.id}"' in inbox


def test_whoever_requested_a_change_cannot_vote_on_it(app, ctx):
    me_client, me = client_for(app, "approver")
    change = make_change(me)
    approvals.submit(change, me)
    response = me_client.post(f"/changes/{change.id}/vote", data={"decision": "approve"})
    assert response.status_code == 403
    assert "You requested this change" in response.text
    inline = me_client.post(
        f"/changes/inbox/{change.id}/vote", data={"decision": "approve"}, headers=HX
    )
    assert inline.status_code == 403 and inline.headers["HX-Retarget"] == "#alerts"
    assert fresh(change).current_votes == []
    assert f'id="inbox-row-{change.id}"' not in me_client.get("/changes/inbox").text


def test_a_step_not_allowed_is_409_naming_what_is_missing(app, ctx):
    me_client, me = client_for(app, "requester")
    change = make_change(me, rollback_plan="")
    response = me_client.post(f"/changes/{change.id}/submit")
    assert response.status_code == 409
    assert "Add a rollback plan before submitting." in response.text
    page = me_client.get(f"/changes/{change.id}").text
    assert "Add a rollback plan" in page  # the next steps say it before anyone tries
    early = me_client.post(f"/changes/{change.id}/implement", headers=HX)
    assert early.status_code == 409 and early.headers["HX-Retarget"] == "#alerts"


@pytest.mark.parametrize("htmx", [False, True])
def test_a_freeze_refuses_a_normal_change_and_admits_an_emergency_with_a_reason(app, ctx, htmx):
    headers = HX if htmx else {}
    start = later(days=4, hour=1)
    freeze = make_freeze(start - 24 * HOUR, start + 24 * HOUR, "Black Friday")
    window = {"window_start": local(start), "window_end": local(start + HOUR)}

    normal = approved_change()
    normal_client = app.test_client()
    sign_in_client(normal_client, normal.requester)
    refused = normal_client.post(f"/changes/{normal.id}/schedule", data=window, headers=headers)
    assert refused.status_code == 409
    assert "change freeze" in refused.text and 'id="freezes"' in refused.text
    assert "Black Friday" in refused.text and 'id="window_start-error"' in refused.text
    assert fresh(normal).status == "approved"

    emergency = approved_change(type_="emergency", title="Patch the payment bug")
    emergency_client = app.test_client()
    sign_in_client(emergency_client, emergency.requester)
    url = f"/changes/{emergency.id}/schedule"
    no_reason = emergency_client.post(url, data=window, headers=headers)
    assert no_reason.status_code == 422 and 'id="freeze_reason-error"' in no_reason.text
    done = emergency_client.post(
        url, data={**window, "freeze_reason": "Card payments fail"}, headers=headers
    )
    assert done.status_code in (200, 302)
    emergency = fresh(emergency)
    assert emergency.status == "scheduled" and emergency.freeze_reason == "Card payments fail"
    assert "change.freeze_overridden" in actions(emergency)
    assert freeze.reason == "Black Friday"


def test_an_emergency_change_closes_after_its_retrospective(app, ctx):
    change = approved_change(type_="emergency", implementer=make_user(role="agent"))
    start = later(days=1)
    lifecycle.schedule(change, change.requester, (start, start + HOUR))
    lifecycle.start_implementing(change, change.requester)
    lifecycle.start_validating(change, change.requester)
    lifecycle.complete(change, change.requester, "Works")
    owner = app.test_client()
    sign_in_client(owner, change.requester)
    early = owner.post(f"/changes/{change.id}/close", data={"lessons_learned": ""})
    assert early.status_code == 409
    assert "Add lessons learned and a retrospective review" in early.text

    reviewer_client, reviewer = client_for(app, "approver", name="Rhea Reviewer")
    assert 'id="review-form"' in reviewer_client.get(f"/changes/{change.id}").text
    empty = reviewer_client.post(f"/changes/{change.id}/review", data={"findings": ""})
    assert empty.status_code == 422 and 'id="findings-error"' in empty.text
    saved = reviewer_client.post(
        f"/changes/{change.id}/review",
        data={"findings": "Justified: payments were down", "emergency_justified": "y"},
    )
    assert saved.status_code == 302
    closed = owner.post(f"/changes/{change.id}/close", data={"lessons_learned": "Add a canary"})
    assert closed.status_code == 302 and fresh(change).status == "closed"
    page = owner.get(f"/changes/{change.id}").text
    assert 'id="retrospective"' in page and "Rhea Reviewer" in page


def test_tickets_are_linked_and_unlinked_from_the_change_page(app, ctx):
    from portal.tickets import services as ticket_services

    me_client, me = client_for(app, "agent")
    change = make_change(me)
    ticket = ticket_services.create_ticket(make_user(), "Shop slow", "x")
    bad = me_client.post(f"/changes/{change.id}/tickets", data={"ticket": "T-999999"})
    assert bad.status_code == 422 and 'id="ticket-error"' in bad.text
    assert (
        me_client.post(f"/changes/{change.id}/tickets", data={"ticket": ticket.number}).status_code
        == 302
    )
    again = me_client.post(f"/changes/{change.id}/tickets", data={"ticket": ticket.number})
    assert again.status_code == 409 and "linked already" in again.text
    page = me_client.get(f"/changes/{change.id}").text
    assert f'href="/tickets/{ticket.id}"' in page
    unlink = me_client.post(f"/changes/{change.id}/tickets/{ticket.id}/unlink")
    assert unlink.status_code == 302 and fresh(change).tickets == []
