import json

from portal.audits.models import AuditEvent
from portal.extensions import db
from portal.users.models import User, UserSession
from tests.factories import make_user, sign_in_client


def test_create_admin_then_list_as_json_and_table(app, ctx):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "users",
            "create-admin",
            "--email",
            "Root@Example.com",
            "--password",
            "a-long-admin-password-1",
        ]
    )
    assert result.exit_code == 0, result.output
    listed = json.loads(runner.invoke(args=["users", "list", "--format", "json"]).output)
    assert {"email": "root@example.com", "role": "admin", "status": "active"}.items() <= next(
        u for u in listed if u["email"] == "root@example.com"
    ).items()
    table = runner.invoke(args=["users", "list"]).output
    assert "root@example.com" in table and "EMAIL" in table
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "user.created"))
    assert event.actor_label == "system"


def test_create_admin_prompts_for_the_password(app, ctx):
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", "--email", "prompt@example.com"],
        input="typed-password-is-long\ntyped-password-is-long\n",
    )
    assert result.exit_code == 0, result.output
    assert db.session.scalar(db.select(User).where(User.email == "prompt@example.com"))


def test_create_admin_refuses_a_weak_password_and_a_duplicate(app, ctx):
    runner = app.test_cli_runner()
    weak = runner.invoke(
        args=["users", "create-admin", "--email", "w@example.com", "--password", "short"]
    )
    assert weak.exit_code != 0 and "at least 12" in weak.output
    make_user(email="dup@example.com")
    dup = runner.invoke(
        args=[
            "users",
            "create-admin",
            "--email",
            "dup@example.com",
            "--password",
            "a-long-admin-password-1",
        ]
    )
    assert dup.exit_code != 0 and "already exists" in dup.output


def test_deactivate_ends_sessions_and_unlock_lifts_a_lock(app, ctx):
    from datetime import timedelta

    from portal.timeutil import utcnow

    user = make_user(email="cli@example.com")
    sign_in_client(app.test_client(), user)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["users", "deactivate", "CLI@example.com"]).exit_code == 0
    db.session.refresh(user)
    assert not user.is_active
    assert (
        db.session.scalar(
            db.select(UserSession).where(
                UserSession.user_id == user.id, UserSession.revoked_at.is_(None)
            )
        )
        is None
    )

    user.locked_until = utcnow() + timedelta(minutes=10)
    db.session.commit()
    assert runner.invoke(args=["users", "unlock", "cli@example.com"]).exit_code == 0
    db.session.refresh(user)
    assert not user.is_locked
    missing = runner.invoke(args=["users", "unlock", "nobody@example.com"])
    assert missing.exit_code != 0 and "No account" in missing.output


def test_seed_demo_only_on_an_empty_database(app, ctx):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["ops", "seed-demo"])
    assert first.exit_code == 0 and "admin@example.com" in first.output
    password = first.output.split("password:")[1].strip()
    login = app.test_client().post(
        "/login", data={"email": "admin@example.com", "password": password}
    )
    assert login.status_code == 302
    again = runner.invoke(args=["ops", "seed-demo"])
    assert "no demo data added" in again.output


def test_create_any_role(app, ctx):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "Ag@Example.com",
            "--role",
            "agent",
            "--name",
            "Ag",
            "--password",
            "agent-password-long",
        ]
    )
    assert result.exit_code == 0 and "Created agent ag@example.com" in result.output
    bad = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "x@example.com",
            "--role",
            "root",
            "--password",
            "agent-password-long",
        ]
    )
    assert bad.exit_code != 0 and "root" in bad.output
