"""Starting a campaign, deciding, carrying out and completing it (portal/audits/reviews.py)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal import storage
from portal.audits import reviews
from portal.audits.models import AuditEvent
from portal.audits.review_models import AccessReview
from portal.errors import Conflict, Forbidden, ServiceError
from portal.extensions import db
from portal.timeutil import utcnow
from portal.users import auth
from portal.users.models import UserSession
from tests.factories import make_user

from .helpers import decide_all_keep, events, item_of, make_team, start

pytestmark = pytest.mark.usefixtures("ctx")


def _hash_by_hand(rows: list[dict]) -> str:
    """The roster hash as the README tells an auditor to compute it."""
    canonical = sorted(rows, key=lambda r: r["user_id"])
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_starting_freezes_the_active_roster_and_hashes_it() -> None:
    admin = make_user(role="admin", name="Ada Admin")
    agent = make_user(role="agent", name="Ana Agent")
    requester = make_user(role="requester", name="Rui Requester")
    make_user(role="agent", name="Gone Person", is_active=False)
    make_team("Ops", agent, [agent])

    review = start(admin, title="Q4 review")

    assert review.roster_count == 3
    assert item_of(review, agent).snapshot["team"] == "Ops"
    assert item_of(review, agent).snapshot["role"] == "agent"
    expected = _hash_by_hand(
        [
            {"user_id": u.id, "email": u.email, "role": u.role, "status": "active", "team": t}
            for u, t in ((admin, ""), (agent, "Ops"), (requester, ""))
        ]
    )
    assert review.roster_hash == expected
    (started,) = events("access_review.started")
    assert started.actor_id == admin.id
    assert started.data["roster_hash"] == expected
    assert started.data["roster_count"] == 3

    # Frozen: a later change to the person leaves the snapshot (and the hash) as it was.
    agent.role = "requester"
    db.session.commit()
    db.session.expire_all()
    assert item_of(review, agent).snapshot["role"] == "agent"
    assert reviews.roster_hash(reviews.frozen(i) for i in _items(review)) == expected


def _items(review: AccessReview):  # type: ignore[no-untyped-def]
    from portal.audits.review_models import AccessReviewItem

    return db.session.scalars(
        select(AccessReviewItem).where(AccessReviewItem.review_id == review.id)
    ).all()


def test_scopes_admins_only_and_one_team() -> None:
    admin = make_user(role="admin")
    other_admin = make_user(role="admin")
    member = make_user(role="agent")
    make_user(role="requester")
    team = make_team("Network", None, [member, other_admin])

    admins_only = start(admin, scope="admins")
    assert {i.user_id for i in _items(admins_only)} == {admin.id, other_admin.id}

    one_team = start(admin, scope="team", team_id=team.id)
    assert {i.user_id for i in _items(one_team)} == {member.id, other_admin.id}
    assert one_team.scope_label == "One team: Network"


def test_an_empty_scope_is_refused_and_starts_nothing() -> None:
    admin = make_user(role="admin")
    gone = make_user(role="agent", is_active=False)
    team = make_team("Ghosts", None, [gone])
    with pytest.raises(ServiceError, match="Nobody active is in this scope"):
        start(admin, scope="team", team_id=team.id)
    with pytest.raises(ServiceError, match="Choose the team"):
        start(admin, scope="team", team_id=None)
    with pytest.raises(ServiceError, match="due date must be in the future"):
        start(admin, due_at=utcnow() - timedelta(hours=1))
    assert db.session.scalar(select(func.count()).select_from(AccessReview)) == 0


def test_team_leads_review_their_team_and_the_admins_the_rest() -> None:
    admin = make_user(role="admin")
    lead = make_user(role="agent", name="Lee Lead")
    member = make_user(role="agent")
    loner = make_user(role="requester")
    make_team("Desk", lead, [lead, member])

    review = start(admin, rule="team_leads")

    assert item_of(review, member).reviewer_id == lead.id
    # The lead's own access, and anyone outside a led team, is the admins'.
    assert item_of(review, lead).reviewer_id is None
    assert item_of(review, loner).reviewer_id is None


def test_nobody_reviews_their_own_access() -> None:
    admin = make_user(role="admin")
    make_user(role="admin")
    review = start(admin, scope="admins")
    with pytest.raises(Forbidden, match="Nobody reviews their own access") as refused:
        reviews.decide(item_of(review, admin), admin, "keep")
    assert refused.value.status == 403
    assert events("access_review.decided") == []


def test_only_the_assigned_reviewer_decides() -> None:
    admin = make_user(role="admin")
    lead = make_user(role="agent")
    member = make_user(role="agent")
    stranger = make_user(role="agent")
    make_team("Desk", lead, [lead, member])
    review = start(admin, rule="team_leads")

    for who in (stranger, admin):
        with pytest.raises(Forbidden, match="reviewed by"):
            reviews.decide(item_of(review, member), who, "keep")
    with pytest.raises(Forbidden):
        reviews.decide(item_of(review, stranger), lead, "keep")  # the admins' item

    reviews.decide(item_of(review, member), lead, "keep", comment="Works the desk daily.")
    (decided,) = events("access_review.decided")
    assert decided.actor_id == lead.id
    assert decided.target_id == str(member.id)
    assert decided.data["decision"] == "keep"


def test_a_comment_is_required_to_change_a_role_or_deactivate() -> None:
    admin = make_user(role="admin")
    agent = make_user(role="agent")
    review = start(admin)
    item = item_of(review, agent)
    for decision, new_role in (("deactivate", None), ("change_role", "requester")):
        with pytest.raises(ServiceError, match="comment is required") as refused:
            reviews.decide(item, admin, decision, new_role, "   ")
        assert refused.value.field == "comment"
    with pytest.raises(ServiceError, match="Choose the new role"):
        reviews.decide(item, admin, "change_role", "superuser", "Fewer rights.")
    with pytest.raises(ServiceError, match="already has the role"):
        reviews.decide(item, admin, "change_role", "agent", "Same.")
    with pytest.raises(ServiceError, match="Choose keep"):
        reviews.decide(item, admin, "promote", None, "x")


def test_a_lead_may_narrow_access_but_never_grant_it() -> None:
    admin = make_user(role="admin")
    lead = make_user(role="agent")
    member = make_user(role="agent")
    make_team("Desk", lead, [lead, member])
    review = start(admin, rule="team_leads")
    item = item_of(review, member)
    for role in ("admin", "approver", "auditor"):
        with pytest.raises(ServiceError, match="Only an admin may give"):
            reviews.decide(item, lead, "change_role", role, "Promotion.")
    reviews.decide(item, lead, "change_role", "requester", "Moved to sales.")
    assert item.new_role == "requester"


def test_confirming_carries_decisions_out_through_the_users_services() -> None:
    admin = make_user(role="admin")
    agent = make_user(role="agent")
    leaver = make_user(role="agent")
    keeper = make_user(role="requester")
    auth._open_session(leaver, "10.0.0.5", "leaver-browser")
    db.session.commit()
    review = start(admin)
    reviews.decide(item_of(review, agent), admin, "change_role", "requester", "No more desk work.")
    reviews.decide(item_of(review, leaver), admin, "deactivate", None, "Left the company.")
    reviews.decide(item_of(review, keeper), admin, "keep")
    # Decided, not yet carried out.
    assert agent.role == "agent" and leaver.is_active

    done = reviews.confirm(review, admin)

    assert (done.applied, done.refused) == (3, [])
    db.session.expire_all()
    assert agent.role == "requester"
    assert not leaver.is_active
    assert (
        db.session.scalar(
            select(func.count()).where(
                UserSession.user_id == leaver.id, UserSession.revoked_at.is_(None)
            )
        )
        == 0
    )
    assert item_of(review, agent).outcome == "role agent → requester"
    assert item_of(review, leaver).outcome == "deactivated; sessions ended"
    assert item_of(review, keeper).outcome == "kept; nothing changed"
    # Audited as the users services audit, by the reviewer, beside the review's own events.
    (changed,) = events("user.role_changed")
    assert (changed.actor_id, changed.target_id) == (admin.id, str(agent.id))
    (deactivated,) = events("user.deactivated")
    assert (deactivated.actor_id, deactivated.target_id) == (admin.id, str(leaver.id))
    assert len(events("access_review.applied")) == 3
    # A settled decision is final.
    with pytest.raises(Conflict, match="carried out already"):
        reviews.decide(item_of(review, keeper), admin, "deactivate", None, "Changed my mind.")


def test_a_last_admin_refusal_becomes_a_message_on_the_item() -> None:
    ada = make_user(role="admin", name="Ada")
    bob = make_user(role="admin", name="Bob")
    review = start(ada, scope="admins")
    reviews.decide(item_of(review, bob), ada, "deactivate", None, "Leaving.")
    reviews.decide(item_of(review, ada), bob, "change_role", "agent", "Not an admin any more.")
    reviews.confirm(review, ada)  # Bob is deactivated: Ada is the last admin

    done = reviews.confirm(review, bob)

    assert done.applied == 0
    assert done.refused == [
        "Ada: Not carried out: This is the last active admin; make someone else an admin first."
    ]
    db.session.expire_all()
    item = item_of(review, ada)
    assert ada.role == "admin"
    assert item.applied_at is None and item.decision == "change_role"
    assert item.outcome.startswith("Not carried out: This is the last active admin")


def test_completing_needs_every_decision_carried_out() -> None:
    admin = make_user(role="admin")
    other = make_user(role="admin")
    make_user(role="agent")
    review = start(admin)
    decide_all_keep(review, admin)
    with pytest.raises(Conflict, match="1 person"):
        reviews.complete(review, admin)  # the admin's own item waits for another admin
    assert review.status == "open"
    decide_all_keep(review, other)
    reviews.complete(review, admin)
    assert review.status == "completed"
    with pytest.raises(Conflict, match="completed already"):
        reviews.complete(review, admin)
    with pytest.raises(Conflict, match="decisions are closed"):
        reviews.decide(item_of(review, admin), other, "keep")


def test_completion_stamps_the_chain_head_and_stores_the_evidence(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings(STORAGE_DIR=str(tmp_path))
    admin = make_user(role="admin", name="Ada Admin")
    other = make_user(role="admin", name="Bo Admin")
    agent = make_user(role="agent", name='=HYPERLINK("x")')
    leaver = make_user(role="requester", name="Lou Leaver")
    make_team("Ops", agent, [agent])
    review = start(admin, title="Year-end review")
    reviews.decide(item_of(review, agent), admin, "change_role", "requester", "Desk closed.")
    reviews.decide(item_of(review, leaver), admin, "deactivate", None, "Contract ended.")
    decide_all_keep(review, admin)
    decide_all_keep(review, other)
    head_before = db.session.execute(
        select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).one()

    reviews.complete(review, admin)

    assert (review.chain_head_id, review.chain_head_hash) == tuple(head_before)
    (completed,) = events("access_review.completed")
    assert completed.id == head_before.id + 1
    assert completed.data["chain_head_hash"] == head_before.hash
    assert completed.data["roster_hash"] == review.roster_hash

    raw = storage.open(review.evidence_csv_key).read()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    header, body = lines[0], lines[1:]
    rows = [dict(zip(header, line, strict=True)) for line in body[: body.index([])]]
    stamps = {line[0]: line[1:] for line in body[body.index([]) + 1 :]}
    assert len(rows) == 4
    by_email = {row["email"]: row for row in rows}
    assert by_email[agent.email]["decision"] == "change_role"
    assert by_email[agent.email]["what_changed"] == "role agent → requester"
    assert by_email[agent.email]["person"].startswith("'=")  # defused for spreadsheets
    assert by_email[leaver.email]["comment"] == "Contract ended."
    assert by_email[admin.email]["decision"] == "keep"  # keeps are evidence too
    assert by_email[admin.email]["decided_by"] == other.email
    assert stamps["# roster_sha256"][0] == review.roster_hash
    assert stamps["# audit_chain_head_sha256"][0] == head_before.hash
    # An auditor recomputes the roster hash from the CSV alone.
    recomputed = _hash_by_hand(
        [
            {
                "user_id": int(r["user_id"]),
                "email": r["email"],
                "role": r["role_at_freeze"],
                "status": r["status_at_freeze"],
                "team": r["team_at_freeze"],
            }
            for r in rows
        ]
    )
    assert recomputed == review.roster_hash
    assert storage.open(review.evidence_pdf_key).read().startswith(b"%PDF-")
