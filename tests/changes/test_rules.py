"""The rules on their own, no database: the transition table, the risk matrix and the
approval counts."""

from datetime import datetime

import pytest

from portal.changes import risk
from portal.changes.models import STATUSES, ChangeRequest, ChangeReview, ChangeVote
from portal.changes.setup_models import Service
from portal.changes.workflow import TRANSITIONS, allowed_moves, check_transition
from portal.errors import Conflict, Forbidden

REQUESTER, IMPLEMENTER, APPROVER, ADMIN, OTHER = 1, 2, 3, 4, 5


def _vote(approver_id: int, role: str = "approver", decision: str = "approve", rnd: int = 1):
    return ChangeVote(
        approver_id=approver_id, approver_role=role, decision=decision, round=rnd, comment=""
    )


def _change(status: str = "draft", type_: str = "normal", **fields) -> ChangeRequest:
    """A change that meets every requirement of the table unless `fields` say otherwise."""
    values = {
        "id": 45,
        "status": status,
        "type": type_,
        "title": "Upgrade PostgreSQL",
        "justification": "Security fixes",
        "implementation_plan": "pg_upgrade on the replica first",
        "rollback_plan": "Fail back to the old primary",
        "impact": 1,
        "likelihood": 1,
        "risk": "low",
        "requester_id": REQUESTER,
        "implementer_id": IMPLEMENTER,
        "approval_round": 1,
        "window_start": datetime(2026, 1, 10, 22),
        "window_end": datetime(2026, 1, 10, 23),
        "validation_results": "Replication healthy",
        "lessons_learned": "Test the rollback first",
    }
    services = fields.pop("services", [Service(id=1, name="Database")])
    votes = fields.pop("votes", [_vote(APPROVER)])
    values.update(fields)
    change = ChangeRequest(**values)
    change.services = services
    change.votes = votes
    return change


def _ready_for(frm: str, to: str) -> ChangeRequest:
    if (frm, to) == ("submitted", "approved"):
        return _change(frm, "standard", template_id=7, votes=[])
    if (frm, to) == ("in_review", "rejected"):
        return _change(frm, votes=[_vote(APPROVER, decision="reject")])
    if to == "closed":
        change = _change(frm, "emergency")
        change.review = ChangeReview(findings="Justified: the outage cost money.")
        return change
    return _change(frm)


def _refusal(change: ChangeRequest, target: str) -> str:
    with pytest.raises(Conflict) as refused:
        check_transition(change, target)
    assert refused.value.status == 409
    return refused.value.message


# -- the transition table ----------------------------------------------------------------------


@pytest.mark.parametrize(("frm", "to"), sorted(TRANSITIONS))
def test_every_move_in_the_table_is_allowed_once_its_requirements_are_met(frm, to):
    check_transition(_ready_for(frm, to), to)


def test_the_table_is_the_lifecycle_of_the_spec():
    assert {s: allowed_moves(s) for s in STATUSES} == {
        "draft": ["submitted"],
        "submitted": ["in_review", "approved"],
        "in_review": ["approved", "rejected"],
        "approved": ["scheduled"],
        "rejected": ["submitted"],
        "scheduled": ["implementing"],
        "implementing": ["validating"],
        "validating": ["completed", "failed"],
        "completed": ["closed"],
        "failed": ["closed"],
        "closed": [],
    }


@pytest.mark.parametrize("frm", STATUSES)
def test_every_move_not_in_the_table_is_refused_with_the_moves_allowed(frm):
    for to in STATUSES:
        if (frm, to) in TRANSITIONS:
            continue
        message = _refusal(_change(frm), to)
        assert message.startswith(
            f"A change cannot move from {frm.replace('_', ' ')} to {to.replace('_', ' ')}."
        )
        assert "Allowed from here:" in message


def test_a_refused_move_names_what_is_allowed():
    assert _refusal(_change("draft"), "approved") == (
        "A change cannot move from draft to approved. Allowed from here: submitted."
    )
    assert _refusal(_change("closed"), "draft").endswith("Allowed from here: none.")
    assert _refusal(_change(), "done") == "“done” is not a change status."


def test_submitting_needs_a_rollback_plan():
    assert _refusal(_change(rollback_plan="  "), "submitted") == (
        "Add a rollback plan before submitting."
    )


def test_everything_missing_is_named_at_once():
    change = _change(implementation_plan="", rollback_plan="", services=[], justification="")
    assert _refusal(change, "submitted") == (
        "Add an implementation plan, a rollback plan, at least one affected service "
        "and a business justification before submitting."
    )


def test_a_standard_change_needs_no_justification():
    check_transition(_change(type_="standard", template_id=3, justification=""), "submitted")


def test_scheduling_needs_a_window():
    change = _change("approved", window_start=None, window_end=None)
    assert _refusal(change, "scheduled") == "Add a planned window before scheduling."


def test_implementing_needs_an_implementer():
    change = _change("scheduled", implementer_id=None)
    assert (
        _refusal(change, "implementing")
        == "Name an implementer before starting the implementation."
    )


def test_completed_and_failed_need_validation_results():
    change = _change("validating", validation_results="")
    assert _refusal(change, "completed") == "Add validation results before completing."
    assert _refusal(change, "failed") == "Add validation results before marking it failed."


def test_closing_a_failed_change_needs_lessons_learned():
    assert _refusal(_change("failed", lessons_learned=""), "closed") == (
        "Add lessons learned before closing a failed change."
    )
    # A normal change that completed closes without them.
    check_transition(_change("completed", lessons_learned=""), "closed")


def test_closing_an_emergency_change_needs_lessons_and_a_retrospective():
    change = _change("completed", "emergency", lessons_learned="")
    assert _refusal(change, "closed") == (
        "Add lessons learned and a retrospective review before closing an emergency change."
    )
    change = _change("failed", "emergency")
    change.review = ChangeReview(findings="   ")
    assert _refusal(change, "closed") == (
        "Add a retrospective review before closing a failed emergency change."
    )


def test_only_a_pre_approved_change_skips_review():
    assert "skips review" in _refusal(_change("submitted", "standard", template_id=1), "in_review")
    assert "without review" in _refusal(_change("submitted"), "approved")


def test_approving_needs_the_approvals_the_risk_asks_for():
    change = _change("in_review", impact=3, likelihood=3, risk="high", votes=[_vote(APPROVER)])
    assert _refusal(change, "approved") == (
        "Get 2 more approvals (one from an admin) before approving."
    )


# -- the risk matrix -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("impact", "likelihood", "expected"),
    [
        (1, 1, "low"),
        (1, 2, "low"),
        (2, 1, "low"),
        (1, 3, "medium"),
        (3, 1, "medium"),
        (2, 2, "medium"),
        (2, 3, "high"),
        (3, 2, "high"),
        (3, 3, "high"),
    ],
)
def test_risk_is_impact_times_likelihood(impact, likelihood, expected):
    assert risk.risk_of(impact, likelihood) == expected


@pytest.mark.parametrize(("impact", "likelihood"), [(0, 1), (4, 1), (1, 0), (2, 4)])
def test_ratings_outside_one_to_three_are_refused(impact, likelihood):
    with pytest.raises(ValueError):
        risk.risk_of(impact, likelihood)


# -- approval rules --------------------------------------------------------------------------


def test_approvals_needed_by_risk_and_type():
    assert risk.requirement("normal", "low") == risk.Requirement(1, False)
    assert risk.requirement("normal", "medium") == risk.Requirement(2, False)
    assert risk.requirement("normal", "high") == risk.Requirement(3, True)
    assert risk.requirement("emergency", "high") == risk.Requirement(1, False)
    assert risk.requirement("standard", "low", pre_approved=True) == risk.Requirement(0, False)
    assert risk.requirement("normal", "high").describe() == "3 approvals, one from an admin"


@pytest.mark.parametrize(
    ("level", "votes", "approved"),
    [
        ("low", [], False),
        ("low", [_vote(APPROVER)], True),
        ("medium", [_vote(APPROVER)], False),
        ("medium", [_vote(APPROVER), _vote(OTHER)], True),
        ("high", [_vote(APPROVER), _vote(OTHER), _vote(6)], False),  # no admin among them
        ("high", [_vote(APPROVER), _vote(OTHER), _vote(ADMIN, "admin")], True),
        ("high", [_vote(APPROVER), _vote(ADMIN, "admin")], False),
    ],
)
def test_counting_approvals(level, votes, approved):
    assert risk.tally(votes, risk.requirement("normal", level)).approved is approved


def test_high_risk_without_an_admin_still_misses_one():
    counts = risk.tally([_vote(APPROVER), _vote(OTHER)], risk.requirement("normal", "high"))
    assert (counts.missing, counts.admin_missing) == (1, True)
    assert counts.describe_missing() == "1 more approval from an admin"


def test_one_rejection_rejects_whatever_was_approved():
    votes = [_vote(APPROVER), _vote(ADMIN, "admin"), _vote(OTHER, decision="reject")]
    counts = risk.tally(votes, risk.requirement("normal", "medium"))
    assert counts.rejected and not counts.approved


def test_only_the_current_rounds_votes_count():
    change = _change("in_review", approval_round=2, votes=[_vote(APPROVER, rnd=1)])
    assert change.current_votes == []
    assert _refusal(change, "approved") == "Get 1 more approval before approving."


def _check(voter_id, role="approver", active=True, voted=()):
    risk.check_voter(voter_id, role, active, REQUESTER, IMPLEMENTER, voted)


def test_separation_of_duties():
    _check(APPROVER)
    _check(ADMIN, "admin")
    for voter, role in ((REQUESTER, "admin"), (IMPLEMENTER, "approver"), (OTHER, "agent")):
        with pytest.raises(Forbidden) as refused:
            _check(voter, role)
        assert refused.value.status == 403
    with pytest.raises(Forbidden, match="requested this change"):
        _check(REQUESTER, "admin")
    with pytest.raises(Forbidden, match="implementing this change"):
        _check(IMPLEMENTER)
    with pytest.raises(Forbidden):
        _check(APPROVER, active=False)


def test_one_vote_per_approver_per_round():
    with pytest.raises(Conflict, match="already voted"):
        _check(APPROVER, voted=[APPROVER])


def test_the_number_is_padded_to_six_digits():
    assert _change().number == "CR-000045"


def test_a_time_at_the_edge_of_the_calendar_is_refused_not_a_crash():
    from datetime import datetime

    from portal.changes.conflicts import to_utc
    from portal.errors import ServiceError

    with pytest.raises(ServiceError) as refused:
        to_utc(datetime(1, 1, 1, 0, 30), "Europe/Berlin", "window_start")
    assert refused.value.field == "window_start" and "out of range" in refused.value.message
