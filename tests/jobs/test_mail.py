"""Outbox delivery over a real SMTP server, inline and through a real RQ worker."""

import pytest
from redis import Redis
from rq import Queue

from portal import jobs, mail
from portal.extensions import db
from portal.mail import OutboxMessage
from tests.conftest import REDIS_URL, free_port, needs_redis


def _send(subject="Hello"):
    message = mail.send("someone@example.com", subject, "Body line\nhttp://portal.test/x")
    jobs.commit()
    db.session.refresh(message)
    return message


def test_without_mail_server_the_message_is_held(ctx):
    message = _send()
    assert message.status == "held"
    assert "No MAIL_SERVER" in message.last_error


def test_inline_delivery_over_smtp(ctx, settings, smtp_server):
    settings(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port)
    message = _send("Inline hello")
    assert message.status == "sent" and message.attempts == 1 and message.sent_at
    [received] = smtp_server.messages
    assert received["Subject"] == "Inline hello"
    assert received["To"] == "someone@example.com"
    assert "Body line" in received.get_payload()


def test_failure_ends_failed_with_the_error_when_no_retry_remains(ctx, settings):
    settings(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port(), MAIL_TIMEOUT=2)
    message = _send()
    assert message.status == "failed"
    assert "ConnectionRefusedError" in message.last_error


def test_delivery_twice_sends_once(ctx, settings, smtp_server):
    settings(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port)
    message = _send()
    assert mail.deliver(message.id) == "skipped"
    assert len(smtp_server.messages) == 1


@needs_redis
def test_real_worker_sends_and_retries_with_backoff(app, ctx, settings, smtp_server):
    """Enqueued on real Redis after the commit; a burst worker runs it in the app context."""
    settings(REDIS_URL=REDIS_URL, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port)
    app.extensions.pop("portal.redis", None)
    Redis.from_url(REDIS_URL).flushdb()  # the test Redis database is ours alone
    try:
        connection = jobs.connection(app)
        message = mail.send("queued@example.com", "Via worker", "Body")
        assert Queue("email", connection=connection).count == 0  # not before the commit
        jobs.commit()
        assert Queue("email", connection=connection).count == 1
        db.session.refresh(message)
        assert message.status == "queued"

        jobs.make_worker(app, ["email"], simple=True).work(burst=True)
        db.session.expire_all()
        assert db.session.get(OutboxMessage, message.id).status == "sent"
        assert [m["Subject"] for m in smtp_server.messages] == ["Via worker"]

        # A failing server: the job fails, the row says `retrying` and RQ schedules a retry.
        settings(MAIL_PORT=free_port(), MAIL_TIMEOUT=2)
        failing = mail.send("later@example.com", "Retry me", "Body")
        jobs.commit()
        jobs.make_worker(app, ["email"], simple=True).work(burst=True)
        db.session.expire_all()
        row = db.session.get(OutboxMessage, failing.id)
        assert row.status == "retrying" and row.attempts == 1
        assert "ConnectionRefusedError" in row.last_error
        scheduled = Queue("email", connection=connection).scheduled_job_registry
        assert scheduled.count == 1
    finally:
        Redis.from_url(REDIS_URL).flushdb()
        app.extensions.pop("portal.redis", None)


@pytest.mark.parametrize("status", ["sent", "failed", "held"])
def test_outbox_page_lists_messages_by_status(client, as_role, status):
    as_role("admin")
    db.session.add(
        OutboxMessage(to="a@example.com", subject=f"S-{status}", body="b", status=status)
    )
    db.session.commit()
    page = client.get(f"/outbox/?status={status}")
    assert page.status_code == 200 and f"S-{status}" in page.text
