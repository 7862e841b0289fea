"""The number beside Approvals in the navigation: what waits for the viewer's vote, on every
page, kept in the shared cache until a change or a vote is written."""

import re

import pytest

from portal.changes import approvals
from tests.changes.helpers import make_change
from tests.factories import make_user

HX = {"HX-Request": "true"}


def _badge(html: str) -> int | None:
    """The number in the navigation, None when no number is shown."""
    found = re.search(r'id="nav-approvals-waiting">(\d+)<', html)
    return int(found.group(1)) if found else None


def _submitted(impact: int = 1, likelihood: int = 1, **fields):  # type: ignore[no-untyped-def]
    change = make_change(impact=impact, likelihood=likelihood, **fields)
    approvals.submit(change, change.requester)
    return change


def test_an_approver_sees_how_many_changes_wait_for_their_vote(ctx, client, as_role):
    approver = as_role("approver")
    _submitted()
    _submitted(title="Rotate the database password")
    make_change(title="Still a draft")
    make_change(approver, title="My own draft")
    page = client.get("/").text
    assert _badge(page) == 2
    assert "waiting for your vote" in page
    assert _badge(client.get("/changes/").text) == 2


def test_the_number_follows_submissions_and_votes(ctx, client, as_role):
    me = as_role("approver")
    first = _submitted(impact=2, likelihood=2)  # medium: two approvals
    assert _badge(client.get("/").text) == 1

    _submitted(title="Patch the VPN")
    assert _badge(client.get("/").text) == 2

    # Another approver's vote leaves the change waiting for mine.
    approvals.vote(first, make_user(role="approver"), "approve", "fine by me")
    assert _badge(client.get("/").text) == 2

    # My vote from the inbox completes the approvals: one change is left for me.
    voted = client.post(f"/changes/inbox/{first.id}/vote", data={"decision": "approve"})
    assert voted.status_code == 302
    assert _badge(client.get("/changes/inbox").text) == 1

    own = make_change(me, title="Mine")
    approvals.submit(own, me)
    assert _badge(client.get("/").text) == 1  # never asked to vote on one's own change


def test_a_vote_that_leaves_the_change_in_review_lowers_the_number(ctx, client, as_role):
    me = as_role("approver")
    change = _submitted(impact=3, likelihood=3)  # high: three approvals, one an admin's
    assert _badge(client.get("/").text) == 1
    approvals.vote(change, me, "approve", "ok")
    assert change.status == "in_review"
    assert _badge(client.get("/").text) is None


def test_nothing_waiting_shows_no_number(ctx, client, as_role):
    as_role("approver")
    page = client.get("/").text
    assert "Approvals" in page and _badge(page) is None


@pytest.mark.parametrize("role", ["agent", "requester", "auditor"])
def test_people_who_cannot_vote_see_no_number_and_ask_nothing(
    ctx, client, as_role, count_queries, role
):
    as_role(role)
    _submitted()
    client.get("/")  # the session's first-request work, out of the count
    with count_queries() as counter:
        page = client.get("/").text
    assert "Approvals" not in page and _badge(page) is None
    assert not [s for s in counter.statements if "change_requests" in s]


def test_the_number_is_asked_once_until_something_changes(ctx, client, as_role, count_queries):
    as_role("admin")
    _submitted()
    assert _badge(client.get("/").text) == 1
    with count_queries() as again:
        assert _badge(client.get("/").text) == 1
    assert not [s for s in again.statements if "change_requests" in s]
    _submitted(title="Resize the search cluster")
    with count_queries() as after_a_write:
        assert _badge(client.get("/").text) == 2
    assert len([s for s in after_a_write.statements if "change_requests" in s]) == 1


def test_the_number_is_asked_every_time_without_the_cache(ctx, client, as_role, settings):
    settings(SHARED_CACHE_SECONDS=0)
    me = as_role("approver")
    change = _submitted()
    assert _badge(client.get("/").text) == 1
    approvals.vote(change, me, "approve", "ok")
    assert _badge(client.get("/").text) is None
