"""The retention run on the record kinds: archive, read back, delete; the run row and
the `retention.archived` event. The same tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from portal import storage
from portal.audits.models import AuditEvent
from portal.changes.models import ChangeRequest, change_services
from portal.extensions import db
from portal.mail import OutboxMessage
from portal.retention import policies
from portal.retention.archive import ArchiveError, read_back, sha256_of
from portal.retention.models import RetentionRun
from portal.retention.run import run_retention
from portal.tickets.extra_models import ActionItem, IncidentReview, TicketAttachment
from portal.tickets.models import Ticket, TicketChange, TicketReply
from portal.timeutil import utcnow
from portal.users.models import UserSession
from tests.changes.helpers import make_change
from tests.factories import make_user
from tests.retention.helpers import YEAR, closed_ticket, ended_session, sent_mail


def _count(model) -> int:  # type: ignore[no-untyped-def]
    return db.session.scalar(select(func.count()).select_from(model))


def _world():  # type: ignore[no-untyped-def]
    user = make_user(role="agent")
    old = closed_ticket(user, 8 * YEAR)
    recent = closed_ticket(user, YEAR)
    still_open = closed_ticket(user, 9 * YEAR, status="in_progress")
    change = make_change()
    change.status, change.closed_at = "closed", utcnow() - 8 * YEAR
    ended_session(user, 100)
    ended_session(user, 10)
    sent_mail(100)
    sent_mail(100, status="failed")
    db.session.commit()
    attachment_key = db.session.scalar(
        select(TicketAttachment.storage_key).where(TicketAttachment.ticket_id == old.id)
    )
    return old, recent, still_open, change, attachment_key


def test_a_run_archives_then_deletes_what_is_past_its_policy(ctx):
    old, recent, still_open, change, attachment_key = _world()
    old_id, old_subject, change_id = old.id, old.subject, change.id
    kept = {recent.id, still_open.id}
    linked = _count(change_services)
    assert linked > 0
    sessions, messages = _count(UserSession), _count(OutboxMessage)

    run = run_retention()

    assert run.status == "done", run.error
    assert run.counts == {
        "audit_events": 0,
        "tickets": 1,
        "change_requests": 1,
        "sessions": 1,
        "sent_mail": 1,
    }
    # Gone with everything hanging from them; the others stay.
    assert db.session.get(Ticket, old_id) is None
    for model in (TicketReply, TicketChange, TicketAttachment):
        assert not db.session.scalar(select(func.count()).where(model.ticket_id == old_id))
    assert not storage.exists(attachment_key)
    assert db.session.get(ChangeRequest, change_id) is None
    assert _count(change_services) == linked - 1
    assert {t.id for t in db.session.scalars(select(Ticket))} >= kept
    assert (_count(UserSession), _count(OutboxMessage)) == (sessions - 1, messages - 1)

    # The archive holds them, proved against its manifest.
    folder = Path(run.archive_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kinds"] == run.counts
    files = {entry["table"]: entry for entry in manifest["files"]}
    assert files["tickets"]["rows"] == 1
    assert files["ticket_replies"]["rows"] == 1
    assert files["change_services"]["rows"] == 1
    assert files["tickets"]["sha256"] == sha256_of(folder / "tickets.jsonl.gz")
    with gzip.open(folder / "tickets.jsonl.gz") as stream:
        (line,) = stream.read().splitlines()
    assert json.loads(line)["id"] == old_id
    assert read_back(folder)["tickets"][0]["subject"] == old_subject
    (stored,) = manifest["stored_files"]
    assert stored["name"] == f"files/{attachment_key}"
    assert (folder / stored["name"]).read_bytes() == b"smoke\n" * 10

    # Never silent: the event carries the manifest.
    event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event.action == "retention.archived"
    assert event.target_type == "retentionrun" and event.target_id == str(run.id)
    assert event.data["manifest"]["kinds"] == run.counts
    assert event.data["manifest_sha256"] == run.manifest_sha256


def test_a_second_run_finds_nothing_and_keeps_no_archive(ctx):
    _world()
    assert run_retention().status == "done"
    again = run_retention()
    assert again.status == "done"
    assert again.removed == 0 and again.archive_path is None


def test_a_record_goes_with_its_review_and_one_pointed_at_stays(ctx):
    """An incident goes with its review and the review's action items (cascading two
    deep); the ticket an action item was turned into is kept while the item points at it
    (no cascade), and goes on the next run."""
    user = make_user(role="agent")
    incident = closed_ticket(user, 8 * YEAR)
    follow_up = closed_ticket(user, 8 * YEAR)
    review = IncidentReview(ticket_id=incident.id, author_id=user.id, root_cause="Dust")
    db.session.add(review)
    db.session.flush()
    db.session.add(
        ActionItem(
            review_id=review.id,
            description="Clean the printer",
            owner_id=user.id,
            due_on=date(2018, 5, 1),
            ticket_id=follow_up.id,
        )
    )
    db.session.commit()
    incident_id, follow_up_id = incident.id, follow_up.id
    assert {i.kind.key: i.count for i in policies.due_now()}["tickets"] == 1

    first = run_retention()
    assert first.status == "done", first.error
    assert first.counts["tickets"] == 1
    assert db.session.get(Ticket, incident_id) is None
    assert db.session.get(Ticket, follow_up_id) is not None
    assert _count(ActionItem) == 0
    (item,) = read_back(Path(first.archive_path))["incident_action_items"]
    assert item["due_on"] == "2018-05-01" and item["ticket_id"] == follow_up_id

    second = run_retention()
    assert second.counts["tickets"] == 1
    assert db.session.get(Ticket, follow_up_id) is None


def test_an_archive_changed_on_disk_is_refused(ctx):
    _world()
    run = run_retention()
    folder = Path(run.archive_path)
    path = folder / "user_sessions.jsonl.gz"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    try:
        read_back(folder)
    except ArchiveError as exc:
        assert "user_sessions.jsonl.gz" in str(exc)
    else:
        raise AssertionError("a changed byte went unnoticed")


def test_the_command_runs_and_says_what_went(app):
    with app.app_context():
        _world()
        result = app.test_cli_runner().invoke(args=["retention", "run"])
        assert result.exit_code == 0, result.output
        assert "tickets: 1 archived and deleted" in result.output
        assert "sessions: 1 archived and deleted" in result.output
        run = db.session.scalars(select(RetentionRun).order_by(RetentionRun.id.desc())).first()
        assert run.archive_path in result.output
