"""The daily access checks, each with a day where it finds something and one where it
finds nothing: failed sign-ins, role changes, new admins."""

from __future__ import annotations

from flask import Flask

from portal.audits import record
from portal.extensions import db
from portal.users import auth
from portal.users import services as user_services
from tests.audits.check_helpers import run_check, subjects, today_s_run
from tests.factories import make_user


def _fail_sign_in(app: Flask, email: str, ip: str, times: int) -> None:
    with app.test_request_context("/login", environ_base={"REMOTE_ADDR": ip}):
        for _ in range(times):
            auth.authenticate(email, "not-the-password", ip, "pytest")


def _unknown_accounts_tried(app: Flask, ip: str, times: int) -> None:
    """What authenticate() records for an address nobody has (without hashing each time)."""
    with app.test_request_context("/login", environ_base={"REMOTE_ADDR": ip}):
        for n in range(times):
            email = f"nobody{n}@example.com"
            record(
                "auth.login_failed", None, ("email", email), email=email, reason="unknown account"
            )
        db.session.commit()


def test_failed_sign_ins_finds_a_guessed_account_and_a_guessing_address(app, ctx) -> None:  # type: ignore[no-untyped-def]
    target = make_user(role="agent")
    _fail_sign_in(app, target.email, "198.51.100.7", 6)
    _unknown_accounts_tried(app, "203.0.113.9", 20)
    outcome = run_check("failed_sign_ins", today_s_run())
    assert f"user:{target.id}" in subjects(outcome)
    assert "ip:203.0.113.9" in subjects(outcome)
    account = next(d for d in outcome.drafts if d.subject_key == f"user:{target.id}")
    assert account.title.startswith("6 failed sign-ins for " + target.email)
    assert account.evidence["total"] == 6 and len(account.evidence["rows"]) == 6
    assert {r["ip"] for r in account.evidence["rows"]} == {"198.51.100.7"}
    address = next(d for d in outcome.drafts if d.subject_key == "ip:203.0.113.9")
    assert address.severity == "high" and address.evidence["total"] == 20
    # Twenty unknown addresses typed once each are no finding by themselves.
    assert not any(s.startswith("email:") for s in subjects(outcome))
    assert outcome.total > outcome.failing >= 2


def _unknown_accounts_tried(app: Flask, ip: str, times: int) -> None:
    """What authenticate() records for an address nobody has (without hashing each time)."""
    with app.test_request_context("/login", environ_base={"REMOTE_ADDR": ip}):
        for n in range(times):
            email = f"nobody{n}@example.com"
            record(
                "auth.login_failed", None, ("email", email), email=email, reason="unknown account"
            )
        db.session.commit()


def test_failed_sign_ins_finds_nothing_in_an_ordinary_day(app, ctx) -> None:  # type: ignore[no-untyped-def]
    target = make_user(role="agent")
    _fail_sign_in(app, target.email, "198.51.100.7", 2)  # a typo or two
    outcome = run_check("failed_sign_ins", today_s_run())
    assert outcome.drafts == [] and outcome.failing == 0
    assert outcome.total == 2  # the account and the address, both passing


def test_failed_sign_ins_of_another_day_are_not_counted(app, ctx) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    target = make_user(role="agent")
    _fail_sign_in(app, target.email, "198.51.100.7", 6)
    # Two days on, the daily run audits yesterday: today's failures are not in it.
    outcome = run_check("failed_sign_ins", today_s_run() + timedelta(days=1))
    assert outcome.drafts == [] and outcome.total == 0


def test_role_changes_lists_each_changed_account(ctx) -> None:  # type: ignore[no-untyped-def]
    admin = make_user(role="admin")
    changed = make_user(role="requester")
    user_services.change_role(changed, "agent", admin)
    outcome = run_check("role_changes", today_s_run())
    assert subjects(outcome) == {f"user:{changed.id}"}
    draft = outcome.drafts[0]
    assert draft.title == f"Access of {changed.email} changed: requester → agent"
    assert draft.rows[0]["by"] == admin.email
    assert outcome.total == 2 and outcome.passed == 1


def test_role_changes_finds_nothing_when_no_role_changed(ctx) -> None:  # type: ignore[no-untyped-def]
    make_user(role="admin")
    make_user(role="agent")
    outcome = run_check("role_changes", today_s_run())
    assert outcome.drafts == [] and outcome.passed == outcome.total == 2


def test_new_admins_finds_an_account_made_admin(ctx) -> None:  # type: ignore[no-untyped-def]
    admin = make_user(role="admin")
    promoted = make_user(role="agent")
    user_services.change_role(promoted, "admin", admin)
    user_services.change_role(make_user(role="agent"), "approver", admin)  # not an admin
    outcome = run_check("new_admins", today_s_run())
    assert subjects(outcome) == {f"user:{promoted.id}"}
    assert outcome.drafts[0].title == f"{promoted.email} became an admin"
    assert outcome.drafts[0].rows[0]["action"] == "user.role_changed"
    assert outcome.total == 2 and outcome.passed == 1


def test_new_admins_finds_nothing_when_nobody_became_admin(ctx) -> None:  # type: ignore[no-untyped-def]
    admin = make_user(role="admin")
    user_services.change_role(make_user(role="agent"), "approver", admin)
    outcome = run_check("new_admins", today_s_run())
    assert outcome.drafts == [] and outcome.total == 1 and outcome.passed == 1
