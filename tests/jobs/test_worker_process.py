"""A real `flask worker` process delivers an invitation email from a committed database."""

import os
import subprocess
import sys
from pathlib import Path

from redis import Redis

from portal import create_app
from portal.extensions import db
from portal.mail import OutboxMessage
from tests.conftest import REDIS_URL, fresh_database_url, needs_redis, settings_for_tests

pytestmark = needs_redis


def test_worker_process_sends_the_invitation(smtp_server):
    database_url = fresh_database_url("worker")
    overrides = {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": smtp_server.port,
    }
    app = create_app(settings_for_tests(**overrides))
    Redis.from_url(REDIS_URL).flushdb()  # the test Redis database is ours alone
    with app.test_request_context("/"):
        from flask_migrate import upgrade

        from portal.users import services

        upgrade()
        admin = services.create_user(
            "boss@example.com", "Boss", "admin", "a-long-admin-password-1", actor=None
        )
        services.invite("worker.test@example.com", "agent", admin)
        message = db.session.scalar(db.select(OutboxMessage))
        assert message.status == "queued"

    env = {
        **os.environ,
        "PORTAL_ENV": "testing",
        "SECRET_KEY": app.config["SECRET_KEY"],
        **{k: str(v) for k, v in overrides.items()},
    }
    worker = subprocess.run(
        [
            str(Path(sys.executable).parent / "flask"),
            "--app",
            "portal",
            "worker",
            "--burst",
            "--queue",
            "email",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr[-2000:]

    [received] = smtp_server.messages
    assert received["To"] == "worker.test@example.com"
    assert "/invite/" in received.get_payload()
    with app.app_context():
        row = db.session.get(OutboxMessage, message.id)
        assert (row.status, row.attempts) == ("sent", 1)
        db.session.remove()
        db.engine.dispose()
