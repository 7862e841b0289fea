"""Outbound email: every message is an Outbox row, sent by a job on the `email` queue.

Without `MAIL_SERVER` the job keeps the message unsent, marked `held`, so an
admin can read it (and copy an invitation link) on the Outbox page.
"""

from __future__ import annotations

import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid

from flask import current_app
from rq import Retry
from sqlalchemy import String, Text, update
from sqlalchemy.orm import Mapped, mapped_column

from . import jobs
from .extensions import db
from .timeutil import utcnow

# Backoff between attempts, in seconds.
RETRY_INTERVALS = [30, 120, 600, 1800]


class OutboxMessage(db.Model):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    to: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    # queued → sending → sent | retrying → … | failed; held when no server is set.
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[datetime | None]

    SENDABLE = ("queued", "retrying")


def send(to: str, subject: str, body: str) -> OutboxMessage:
    """Add a message to the current transaction; it is sent after the commit."""
    message = OutboxMessage(to=to, subject=subject[:200], body=body)
    db.session.add(message)
    db.session.flush()
    attempts = current_app.config["SETTINGS"].MAIL_MAX_ATTEMPTS
    retry = Retry(max=attempts - 1, interval=RETRY_INTERVALS) if attempts > 1 else None
    jobs.after_commit(deliver, message.id, queue="email", retry=retry)
    return message


def _claim(message_id: int) -> OutboxMessage | None:
    """Move the message to `sending` unless another run already has it (or sent it)."""
    claimed = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status.in_(OutboxMessage.SENDABLE))
        .values(status="sending", attempts=OutboxMessage.attempts + 1)
    ).rowcount
    db.session.commit()
    return db.session.get(OutboxMessage, message_id) if claimed else None


def _smtp_send(message: OutboxMessage) -> None:
    settings = current_app.config["SETTINGS"]
    email = EmailMessage()
    email["From"] = settings.MAIL_FROM
    email["To"] = message.to
    email["Subject"] = message.subject
    email["Message-ID"] = make_msgid(idstring=f"outbox{message.id}")
    email.set_content(message.body)
    smtp_class = smtplib.SMTP_SSL if settings.MAIL_USE_SSL else smtplib.SMTP
    server = (settings.MAIL_SERVER, settings.MAIL_PORT)
    with smtp_class(*server, timeout=settings.MAIL_TIMEOUT) as smtp:
        if settings.MAIL_USE_TLS:
            smtp.starttls(context=ssl.create_default_context())
        if settings.MAIL_USERNAME:
            smtp.login(settings.MAIL_USERNAME, settings.MAIL_PASSWORD)
        smtp.send_message(email)


@jobs.job
def deliver(message_id: int) -> str:
    """Send one Outbox message. Safe to run twice: a sent message is left alone."""
    settings = current_app.config["SETTINGS"]
    if not settings.MAIL_SERVER:
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status.in_(OutboxMessage.SENDABLE))
            .values(status="held", last_error="No MAIL_SERVER is configured; kept in the Outbox.")
        )
        db.session.commit()
        return "held"
    message = _claim(message_id)
    if message is None:
        return "skipped"
    try:
        _smtp_send(message)
    except (OSError, smtplib.SMTPException) as exc:
        message.status = "retrying" if jobs.will_retry() else "failed"
        message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        db.session.commit()
        raise
    message.status = "sent"
    message.sent_at = utcnow()
    message.last_error = None
    db.session.commit()
    return "sent"
