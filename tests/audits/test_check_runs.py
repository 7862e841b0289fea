"""Scheduled audit runs: periods, running a period once, findings compared with the
previous run (new, still open, resolved), accepted risks coming back, the emails about
high findings, the command and the periodic entry."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from portal.audits import check_services
from portal.audits.check_models import CheckResult, CheckRun, Finding
from portal.audits.checks import CHECKS, SCHEDULES, period_for
from portal.audits.models import AuditEvent
from portal.extensions import db
from portal.mail import OutboxMessage
from portal.schedule import PERIODIC
from portal.timeutil import utcnow
from portal.users import services as user_services
from portal.users.models import User
from tests.conftest import row_counts
from tests.factories import make_user

# A Wednesday in the middle of a quarter's middle month.
WEDNESDAY = datetime(2026, 11, 18, 10, 30)


def _dormant(**fields):  # type: ignore[no-untyped-def]
    long_ago = utcnow() - timedelta(days=400)
    return make_user(role="agent", created_at=long_ago, last_login_at=long_ago, **fields)


# -- periods -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "start", "end"),
    [
        ("daily", datetime(2026, 11, 17), datetime(2026, 11, 18)),
        ("weekly", datetime(2026, 11, 9), datetime(2026, 11, 16)),
        ("monthly", datetime(2026, 10, 1), datetime(2026, 11, 1)),
        ("quarterly", datetime(2026, 7, 1), datetime(2026, 10, 1)),
    ],
)
def test_each_schedule_audits_its_last_ended_period(schedule, start, end) -> None:  # type: ignore[no-untyped-def]
    assert period_for(schedule, WEDNESDAY, "UTC") == (start, end)


def test_periods_are_the_portal_time_zone_s_days() -> None:
    # 23:30 UTC on the 17th is already the 18th in Berlin: its previous day is the 17th,
    # which began at 23:00 UTC on the 16th.
    start, end = period_for("daily", datetime(2026, 11, 17, 23, 30), "Europe/Berlin")
    assert (start, end) == (datetime(2026, 11, 16, 23), datetime(2026, 11, 17, 23))
    january = period_for("quarterly", datetime(2027, 1, 5), "UTC")
    assert january == (datetime(2026, 10, 1), datetime(2027, 1, 1))


def test_every_check_is_declared_once_on_a_known_schedule() -> None:
    keys = [c.key for c in CHECKS]
    assert len(keys) == len(set(keys))
    assert {c.schedule for c in CHECKS} == set(SCHEDULES)
    assert all(c.severity in ("low", "medium", "high") and c.recommendation for c in CHECKS)


# -- a run ---------------------------------------------------------------------------------


def test_a_run_stores_each_check_s_result_and_its_findings(ctx) -> None:  # type: ignore[no-untyped-def]
    dormant = _dormant()
    run, created = check_services.run_schedule("weekly")
    assert created and run.status == "done"
    results = {r.check_key: r for r in run.results}
    assert set(results) == {c.key for c in CHECKS if c.schedule == "weekly"}
    dormant_result = results["dormant_accounts"]
    assert dormant_result.status == "failed" and dormant_result.failing >= 1
    assert dormant_result.passed == dormant_result.total - dormant_result.failing
    finding = db.session.scalar(select(Finding).where(Finding.subject_key == f"user:{dormant.id}"))
    assert finding is not None
    assert (finding.state, finding.first_seen_run_id, finding.last_seen_run_id) == (
        "new",
        run.id,
        run.id,
    )
    assert finding.evidence["rows"][0]["email"] == dormant.email
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "audit.run_completed"))
    assert event.target_type == "audit_check_run" and event.target_id == str(run.id)
    assert event.data["schedule"] == "weekly" and event.data["new"] == run.summary["new"]


def test_running_the_same_period_twice_adds_nothing(ctx) -> None:  # type: ignore[no-untyped-def]
    _dormant()
    first, created = check_services.run_schedule("weekly", now=WEDNESDAY)
    assert created
    before = row_counts()
    # Later the same week: the same period (the week before) — nothing more.
    again, created_again = check_services.run_schedule("weekly", now=WEDNESDAY + timedelta(days=3))
    assert not created_again and again.id == first.id
    assert row_counts() == before


def test_a_finding_the_next_run_no_longer_sees_is_resolved(ctx) -> None:  # type: ignore[no-untyped-def]
    dormant, still_dormant = _dormant(), _dormant()
    first, _ = check_services.run_schedule("weekly", now=WEDNESDAY)
    # One of them signs in again; the other stays away.
    dormant.last_login_at = WEDNESDAY
    db.session.commit()
    second, _ = check_services.run_schedule("weekly", now=WEDNESDAY + timedelta(days=7))
    gone = db.session.scalar(select(Finding).where(Finding.subject_key == f"user:{dormant.id}"))
    kept = db.session.scalar(
        select(Finding).where(Finding.subject_key == f"user:{still_dormant.id}")
    )
    assert (gone.state, gone.resolved_run_id, gone.last_seen_run_id) == (
        "resolved",
        second.id,
        first.id,
    )
    assert gone.compared_with(second.id) == "resolved"
    assert (kept.state, kept.last_seen_run_id, kept.first_seen_run_id) == (
        "open",
        second.id,
        first.id,
    )
    assert kept.compared_with(second.id) == "still open"
    assert second.summary["resolved"] >= 1 and second.summary["open"] >= 1


def test_a_subject_failing_again_after_it_was_resolved_is_a_new_finding(ctx) -> None:  # type: ignore[no-untyped-def]
    user = _dormant()
    check_services.run_schedule("weekly", now=WEDNESDAY)
    user.last_login_at = WEDNESDAY
    db.session.commit()
    check_services.run_schedule("weekly", now=WEDNESDAY + timedelta(days=7))
    user.last_login_at = WEDNESDAY - timedelta(days=400)
    db.session.commit()
    third, _ = check_services.run_schedule("weekly", now=WEDNESDAY + timedelta(days=14))
    episodes = db.session.scalars(
        select(Finding).where(Finding.subject_key == f"user:{user.id}").order_by(Finding.id)
    ).all()
    assert [f.state for f in episodes] == ["resolved", "new"]
    assert episodes[1].first_seen_run_id == third.id


def test_an_accepted_risk_comes_back_once_it_expires(ctx) -> None:  # type: ignore[no-untyped-def]
    auditor = make_user(role="auditor")
    user = _dormant()
    now = utcnow()
    check_services.run_schedule("weekly", now=now)
    finding = db.session.scalar(select(Finding).where(Finding.subject_key == f"user:{user.id}"))
    check_services.accept_risk(
        finding, auditor, "Break-glass account, kept on purpose.", (now + timedelta(days=2)).date()
    )
    assert finding.state == "accepted"
    # A week later the acceptance has expired and the account is still dormant.
    later, _ = check_services.run_schedule("weekly", now=now + timedelta(days=7))
    db.session.refresh(finding)
    assert finding.state == "open" and finding.last_seen_run_id == later.id
    assert later.summary["reopened"] == 1


def test_an_acceptance_still_running_keeps_the_finding_accepted(ctx) -> None:  # type: ignore[no-untyped-def]
    auditor = make_user(role="auditor")
    user = _dormant()
    now = utcnow()
    check_services.run_schedule("weekly", now=now)
    finding = db.session.scalar(select(Finding).where(Finding.subject_key == f"user:{user.id}"))
    check_services.accept_risk(
        finding, auditor, "Break-glass account, kept on purpose.", (now + timedelta(days=30)).date()
    )
    check_services.run_schedule("weekly", now=now + timedelta(days=7))
    db.session.refresh(finding)
    assert finding.state == "accepted"


def test_high_findings_email_each_active_auditor_and_admin(ctx) -> None:  # type: ignore[no-untyped-def]
    auditor = make_user(role="auditor")
    admin = make_user(role="admin")
    make_user(role="auditor", is_active=False)
    make_user(role="agent")
    user_services.change_role(make_user(role="agent"), "admin", admin)  # a new admin: high
    run, _ = check_services.run_schedule("daily", now=utcnow() + timedelta(days=1))
    assert run.summary["high_new"] >= 1
    recipients = set(
        db.session.scalars(
            select(OutboxMessage.to).where(OutboxMessage.subject.like("[Ops Portal audit]%"))
        )
    )
    expected = set(
        db.session.scalars(
            select(User.email).where(User.is_active.is_(True), User.role.in_(("auditor", "admin")))
        )
    )
    assert recipients == expected
    db.session.expire_all()
    assert run.summary["notified"] == len(expected) == 3  # the new admin is one of them
    assert auditor.email in recipients and admin.email in recipients
    body = db.session.scalar(select(OutboxMessage.body).where(OutboxMessage.to == auditor.email))
    assert "became an admin" in body and f"/audits/runs/{run.id}" in body


def test_a_run_without_high_findings_emails_nobody(ctx) -> None:  # type: ignore[no-untyped-def]
    make_user(role="auditor")
    before = db.session.scalar(select(func.count()).select_from(OutboxMessage))
    check_services.run_schedule("quarterly")
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == before


def test_a_check_that_breaks_is_an_error_and_leaves_its_findings_open(ctx, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    user = _dormant()
    check_services.run_schedule("weekly", now=WEDNESDAY)
    from portal.audits import checks

    def broken(context):  # type: ignore[no-untyped-def]
        raise RuntimeError("the query timed out")

    patched = tuple(
        c if c.key != "dormant_accounts" else checks.Check(**{**c.__dict__, "function": broken})
        for c in checks.CHECKS
    )
    monkeypatch.setattr(checks, "CHECKS", patched)
    run, _ = check_services.run_schedule("weekly", now=WEDNESDAY + timedelta(days=7))
    result = db.session.scalar(
        select(CheckResult).where(
            CheckResult.run_id == run.id, CheckResult.check_key == "dormant_accounts"
        )
    )
    assert run.status == "failed" and result.status == "error" and "timed out" in result.error
    finding = db.session.scalar(select(Finding).where(Finding.subject_key == f"user:{user.id}"))
    assert finding.resolved_run_id is None  # not seen, but not seen to pass either


def test_a_later_period_audited_already_refuses_an_earlier_one(ctx) -> None:  # type: ignore[no-untyped-def]
    from portal.errors import Conflict

    check_services.run_schedule("daily", now=WEDNESDAY)
    with pytest.raises(Conflict):
        check_services.run_schedule("daily", now=WEDNESDAY - timedelta(days=3))


def test_the_periodic_entry_runs_what_is_due_once(ctx) -> None:  # type: ignore[no-untyped-def]
    entry = next(p for p in PERIODIC if p.func is check_services.run_due_schedules)
    assert entry.every_seconds <= 3600
    first = check_services.run_due_schedules()
    assert first.startswith("ran ") and all(s in first for s in SCHEDULES)
    assert check_services.run_due_schedules() == "nothing due"
    assert db.session.scalar(select(func.count()).select_from(CheckRun)) == len(SCHEDULES)


def test_the_command_runs_a_schedule_once(app) -> None:  # type: ignore[no-untyped-def]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audits", "run", "monthly"])
    assert result.exit_code == 0, result.output
    assert "monthly" in result.output and "new" in result.output
    again = runner.invoke(args=["audits", "run", "monthly"])
    assert again.exit_code == 0 and "Nothing to do" in again.output
    wrong = runner.invoke(args=["audits", "run", "hourly"])
    assert wrong.exit_code != 0


def _runner(url: str) -> bool:
    from portal import create_app
    from tests.conftest import settings_for_tests

    app = create_app(settings_for_tests(DATABASE_URL=url))
    with app.app_context():
        _, created = check_services.run_schedule("weekly", now=WEDNESDAY)
        db.session.remove()
        db.engine.dispose()
    return created


def test_processes_running_the_same_period_at_once_run_it_once() -> None:
    import multiprocessing

    from portal import create_app
    from tests.conftest import fresh_database_url, settings_for_tests

    url = fresh_database_url("check_runs")
    app = create_app(settings_for_tests(DATABASE_URL=url))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        long_ago = utcnow() - timedelta(days=400)
        make_user(role="agent", created_at=long_ago, last_login_at=long_ago)
        db.session.remove()
        db.engine.dispose()
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        created = pool.map(_runner, [url] * 4)
    assert sorted(created) == [False, False, False, True]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CheckRun)) == 1
        assert db.session.scalar(select(func.count()).select_from(Finding)) == 1
        completed = select(func.count()).where(AuditEvent.action == "audit.run_completed")
        assert db.session.scalar(completed) == 1
        db.session.remove()
        db.engine.dispose()
