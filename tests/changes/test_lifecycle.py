"""After the decision: implementing, validating, the outcome, the emergency retrospective,
closing; and the admin setup (services, freezes, templates) with its audit trail."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.audits.models import AuditEvent
from portal.changes import admin_services, lifecycle, services
from portal.changes.access import can_see, visible
from portal.changes.models import ChangeRequest
from portal.errors import Conflict, Forbidden, ServiceError
from portal.extensions import db
from portal.tickets.services import create_ticket
from portal.timeutil import utcnow
from tests.changes.helpers import (
    HOUR,
    approved_change,
    later,
    mail_to,
    make_change,
    make_service,
    scheduled_change,
)
from tests.factories import make_user


def _running(type_="normal", **fields):
    """A change whose window is open and whose implementer has started validating it."""
    implementer = make_user(role="agent")
    start = utcnow() - timedelta(minutes=5)
    change = scheduled_change(start, start + HOUR, type_=type_, implementer=implementer, **fields)
    lifecycle.start_implementing(change, implementer)
    lifecycle.start_validating(change, implementer)
    return change, implementer


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


def test_a_normal_change_from_draft_to_closed(ctx):
    change, implementer = _running()
    with pytest.raises(Conflict, match="Add validation results before completing."):
        lifecycle.complete(change, implementer, "  ")
    assert change.validation_results == ""
    lifecycle.complete(change, implementer, "All health checks green", "Done in 20 minutes")
    assert (change.status, change.outcome) == ("completed", "Done in 20 minutes")
    lifecycle.close(change, change.requester)
    assert change.status == "closed" and change.closed_at is not None
    assert _actions(change) == [
        "change.created",
        "change.submitted",
        "change.review_started",
        "change.vote_cast",
        "change.approved",
        "change.scheduled",
        "change.implementation_started",
        "change.validation_started",
        "change.completed",
        "change.closed",
    ]


def test_a_failed_change_closes_with_its_lessons_learned(ctx):
    change, implementer = _running()
    lifecycle.fail(change, implementer, "Error rate doubled", "Rolled back at 02:10")
    assert change.status == "failed"
    with pytest.raises(Conflict, match="Add lessons learned before closing a failed change."):
        lifecycle.close(change, implementer)
    lifecycle.close(change, implementer, "Load-test the new pool size first")
    assert (change.status, change.lessons_learned) == (
        "closed",
        "Load-test the new pool size first",
    )


def test_an_emergency_change_closes_after_its_retrospective(ctx):
    change, implementer = _running("emergency")
    lifecycle.complete(change, implementer, "Payments flow again")
    with pytest.raises(Conflict, match="lessons learned and a retrospective review"):
        lifecycle.close(change, implementer, "")
    # Neither the requester nor the implementer reviews their own emergency.
    for person in (change.requester, implementer):
        with pytest.raises(Forbidden):
            lifecycle.save_review(change, person, "It was fine")
    reviewer = make_user(role="approver")
    with pytest.raises(ServiceError):
        lifecycle.save_review(change, reviewer, "   ")
    review = lifecycle.save_review(change, reviewer, "Justified: card payments failed.")
    assert review.is_complete and review.reviewer_id == reviewer.id
    lifecycle.close(change, implementer, "Alert on certificate expiry")
    assert change.status == "closed"
    assert "change.review_saved" in _actions(change)


def test_only_emergencies_have_a_retrospective(ctx):
    change, _ = _running()
    with pytest.raises(Conflict, match="Only emergency changes"):
        lifecycle.save_review(change, make_user(role="approver"), "n/a")


def test_only_the_people_involved_move_a_change_on(ctx):
    start = utcnow() - timedelta(minutes=5)
    change = scheduled_change(start, start + HOUR)
    with pytest.raises(Forbidden):
        lifecycle.start_implementing(change, make_user(role="agent"))
    with pytest.raises(Conflict, match="Name an implementer before starting the implementation."):
        lifecycle.start_implementing(change, change.requester)


def test_rescheduling_moves_the_window_and_tells_the_owners_again(ctx):
    owner = make_user(role="agent")
    start = later()
    change = scheduled_change(start, start + HOUR, services_=[make_service("Web", owner)])
    assert lifecycle.schedule(change, change.requester, (start, start + HOUR)) == []
    lifecycle.schedule(change, change.requester, (start + HOUR, start + 2 * HOUR))
    assert (change.status, change.window_start) == ("scheduled", start + HOUR)
    assert [m.subject.split("] ")[1].split(" on ")[0] for m in mail_to(owner)] == [
        "Change scheduled",
        "Change rescheduled",
    ]
    assert _actions(change)[-1] == "change.rescheduled"


def test_linked_tickets_and_incidents(ctx):
    change = make_change()
    incident = create_ticket(make_user(), "Checkout down", "", type_="incident")
    services.link_ticket(change, incident, change.requester)
    with pytest.raises(Conflict, match="linked already"):
        services.link_ticket(change, incident, change.requester)
    assert change.tickets == [incident]
    services.unlink_ticket(change, incident, change.requester)
    assert change.tickets == []
    assert _actions(change)[-2:] == ["change.ticket_linked", "change.ticket_unlinked"]


def test_who_sees_which_change(ctx):
    change = make_change()
    stranger = make_user(role="requester")
    assert can_see(change.requester, change) and not can_see(stranger, change)
    assert can_see(make_user(role="auditor"), change)
    query = select(ChangeRequest.id)
    assert db.session.scalars(visible(query, stranger)).all() == []
    assert db.session.scalars(visible(query, change.requester)).all() == [change.id]


# -- admin setup -------------------------------------------------------------------------------


def test_services_are_managed_by_admins_and_audited(ctx):
    admin = make_user(role="admin")
    owner = make_user(role="agent")
    with pytest.raises(Forbidden):
        admin_services.create_service("Search", owner, make_user(role="approver"))
    service = admin_services.create_service("Search", owner, admin)
    with pytest.raises(Conflict, match="exists already"):
        admin_services.create_service(" search ", owner, admin)
    admin_services.update_service(service, admin, is_active=False)
    with pytest.raises(ServiceError, match="retired"):
        make_change(services_=[service])
    actions = [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions[-2:] == ["change_service.created", "change_service.updated"]


def test_freezes_are_managed_by_admins_and_audited(ctx):
    admin = make_user(role="admin")
    start = later()
    with pytest.raises(ServiceError, match="Say why"):
        admin_services.create_freeze(start, start + HOUR, " ", admin)
    with pytest.raises(ServiceError, match="end after"):
        admin_services.create_freeze(start, start, "Sale", admin)
    freeze = admin_services.create_freeze(start, start + 24 * HOUR, "Sale", admin)
    change = approved_change()
    with pytest.raises(Conflict, match="Sale"):
        lifecycle.schedule(change, change.requester, (start, start + HOUR))
    admin_services.delete_freeze(freeze, admin)
    lifecycle.schedule(change, change.requester, (start, start + HOUR))
    actions = [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert {"freeze.created", "freeze.deleted"} <= set(actions)


def test_templates_are_managed_by_admins_and_audited(ctx):
    admin = make_user(role="admin")
    web = make_service("Web")
    fields = {
        "name": "Restart web",
        "description": "",
        "implementation_plan": "systemctl restart web",
        "rollback_plan": "Nothing to roll back",
        "services": [web],
    }
    with pytest.raises(ServiceError, match="service"):
        admin_services.save_template(None, admin, **{**fields, "services": []})
    template = admin_services.save_template(None, admin, **fields)
    admin_services.save_template(template, admin, **{**fields, "is_active": False})
    with pytest.raises(Conflict, match="retired"):
        services.create_change(make_user(), "Restart", template=template)
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "standard_template.updated")
    )
    assert event.data == {"before": {"is_active": True}, "after": {"is_active": False}}
