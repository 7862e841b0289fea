"""The audit trail's own checks: the daily chain verification and the quarterly security
summary, each with a data set where it finds something and one where it finds nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from portal.audits import check_services
from portal.audits.check_models import Finding
from portal.audits.models import AuditEvent
from portal.extensions import db
from portal.timeutil import utcnow
from portal.users import services as user_services
from tests.audits.check_helpers import run_check, subjects
from tests.audits.tamper import as_intruder
from tests.factories import make_user


def test_chain_verification_passes_an_intact_chain(ctx) -> None:  # type: ignore[no-untyped-def]
    admin = make_user(role="admin")
    user_services.change_role(make_user(role="agent"), "approver", admin)
    outcome = run_check("chain_verification")
    assert outcome.drafts == [] and outcome.passed == outcome.total == 1
    assert outcome.details["checked"] >= 1 and outcome.details["problems"] == 0


def test_chain_verification_finds_an_edited_event(ctx) -> None:  # type: ignore[no-untyped-def]
    admin = make_user(role="admin")
    user_services.change_role(make_user(role="agent"), "approver", admin)
    event_id = db.session.scalar(
        select(AuditEvent.id).where(AuditEvent.action == "user.role_changed")
    )
    as_intruder("UPDATE audit_events SET actor_label = 'someone else' WHERE id = :id", id=event_id)
    outcome = run_check("chain_verification")
    assert subjects(outcome) == {"audit-chain"}
    draft = outcome.drafts[0]
    assert draft.title.startswith("Audit chain broken")
    assert any(row["event_id"] == event_id and row["kind"] == "edited" for row in draft.rows)


def _overdue_high_finding() -> Finding:
    admin = make_user(role="admin")
    user_services.change_role(make_user(role="agent"), "admin", admin)
    check_services.run_schedule("daily", now=utcnow() + timedelta(days=1))
    finding = db.session.scalar(select(Finding).where(Finding.check_key == "new_admins"))
    assert finding is not None and finding.severity == "high"
    return finding


def test_security_summary_finds_high_findings_left_open_for_a_month(ctx) -> None:  # type: ignore[no-untyped-def]
    finding = _overdue_high_finding()
    db.session.execute(
        update(Finding)
        .where(Finding.id == finding.id)
        .values(created_at=utcnow() - timedelta(days=200))
    )
    db.session.commit()
    outcome = run_check("security_summary", utcnow() + timedelta(days=100))
    assert subjects(outcome) == {f"finding:{finding.id}"}
    assert outcome.drafts[0].rows[0]["check"] == "new_admins"
    assert "role_changes" in outcome.details and "findings_raised" in outcome.details


def test_security_summary_finds_nothing_when_high_findings_are_dealt_with(ctx) -> None:  # type: ignore[no-untyped-def]
    finding = _overdue_high_finding()
    db.session.execute(
        update(Finding)
        .where(Finding.id == finding.id)
        .values(created_at=utcnow() - timedelta(days=200), state="accepted")
    )
    db.session.commit()
    outcome = run_check("security_summary", utcnow() + timedelta(days=100))
    assert outcome.drafts == [] and outcome.total == 0
