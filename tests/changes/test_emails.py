"""What each change email says, as its recipient reads it in the Outbox: greeting, the
change's summary with the window in the recipient's own zone, what to do next, the link."""

from datetime import datetime

from portal.changes import approvals, lifecycle, tasks
from portal.timeutil import iso_utc
from tests.changes.helpers import (
    HOUR,
    approved_change,
    later,
    mail_to,
    make_change,
    make_service,
)
from tests.factories import make_user

LINK = "http://portal.test/changes/"


def _one(user):  # type: ignore[no-untyped-def]
    [message] = mail_to(user)
    return message


def test_approvers_are_asked_with_the_summary_and_the_link(ctx):
    approver = make_user(role="approver", name="Ada Approver", timezone="Europe/Berlin")
    requester = make_user(name="Rita Requester")
    services_ = [make_service("Payments"), make_service("Web shop")]
    change = make_change(requester, services_, impact=2, likelihood=2, title="Patch the gateway")
    change.window_start, change.window_end = datetime(2031, 1, 10, 7), datetime(2031, 1, 10, 8)
    approvals.submit(change, requester)
    body = _one(approver).body
    assert body.startswith("Hello Ada Approver,\n\n")
    assert "Rita Requester asks for approval of this change. It needs 2 approvals" in body
    assert f"{change.number}: Patch the gateway\n" in body
    assert "Type: normal. Risk: medium (impact 2 × likelihood 2).\n" in body
    assert "Services: Payments, Web shop\n" in body
    assert "Window: 2031-01-10 08:00 CET to 2031-01-10 09:00 CET" in body
    assert body.rstrip().endswith(f"Approve or reject it here: {LINK}{change.id}")


def test_a_change_without_a_window_yet_says_so(ctx):
    approver = make_user(role="approver")
    change = make_change(title="Tidy the crontab")
    approvals.submit(change, change.requester)
    assert "Window: not set" in _one(approver).body


def test_the_requester_hears_of_an_approval_and_what_comes_next(ctx):
    change = approved_change(title="Renew the wildcard certificate")
    body = _one(change.requester).body
    assert body.startswith(f"Hello {change.requester.name},\n\n")
    assert "Your change was approved. Schedule its window next." in body
    assert f"{change.number}: Renew the wildcard certificate\n" in body
    assert body.rstrip().endswith(f"{LINK}{change.id}")


def test_the_requester_hears_why_a_change_was_rejected(ctx):
    change = make_change(title="Move the DNS zone")
    approvals.submit(change, change.requester)
    approvals.vote(change, make_user(role="approver"), "reject", "No rollback test")
    body = _one(change.requester).body
    assert "Your change was rejected. Reason: No rollback test\n" in body
    assert "Revise it and submit it again; the votes start afresh." in body
    assert f"{change.number}: Move the DNS zone\n{LINK}{change.id}" in body


def test_owners_hear_of_a_rescheduled_window_and_the_day_before(ctx):
    owner = make_user(role="agent", name="Otto Owner")
    start = later(days=3)
    change = approved_change([make_service("Search", owner)], title="Reindex search")
    lifecycle.schedule(change, change.requester, (start, start + HOUR))
    lifecycle.schedule(change, change.requester, (start + HOUR, start + 2 * HOUR))
    scheduled, rescheduled = mail_to(owner)
    assert "A change to a service you own was scheduled." in scheduled.body
    assert "A change to a service you own was rescheduled." in rescheduled.body
    assert f"Rollback plan:\n{change.rollback_plan}" in rescheduled.body
    assert tasks.remind(change.id, "day_before", iso_utc(start + HOUR)) == "sent"
    tomorrow = mail_to(owner)[-1]
    assert tomorrow.body.startswith("Hello Otto Owner,\n\n")
    assert "A change to a service you own starts within a day." in tomorrow.body
    assert "Services: Search\n" in tomorrow.body
    assert tomorrow.body.rstrip().endswith(f"{LINK}{change.id}")


def test_the_implementer_hears_when_the_window_opens(ctx):
    implementer = make_user(role="agent", name="Ivan Implementer")
    start = later(days=3)
    change = approved_change(implementer=implementer, title="Fail over the database")
    lifecycle.schedule(change, change.requester, (start, start + HOUR))
    assert tasks.remind(change.id, "window_open", iso_utc(start)) == "sent"
    body = _one(implementer).body
    assert body.startswith("Hello Ivan Implementer,\n\n")
    assert "The window for this change has opened" in body
    assert f"Implementation plan:\n{change.implementation_plan}" in body
    assert f"{change.number}: Fail over the database\n" in body


def test_no_email_goes_to_a_deactivated_person(ctx):
    approver = make_user(role="approver")
    gone = make_user(role="approver", is_active=False)
    change = make_change()
    approvals.submit(change, change.requester)
    assert len(mail_to(approver)) == 1 and mail_to(gone) == []
