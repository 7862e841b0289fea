"""Checkpoints of the chain's head: in the database, appended to a file and mailed to the
security contacts; written once per head; every N events and hourly."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from portal import jobs
from portal.audits import checkpoints, record
from portal.audits.models import AuditCheckpoint, AuditEvent
from portal.extensions import db
from portal.mail import OutboxMessage
from portal.schedule import PERIODIC

CONTACTS = "sec@example.com, soc@example.com"


def _events(n: int) -> None:
    for i in range(n):
        record("test.checkpointed", None, ("thing", i), i=i)
        jobs.commit()


def _head() -> tuple[int, str]:
    row = db.session.execute(
        select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).one()
    return row.id, row.hash


def _checkpoint_mail() -> list[OutboxMessage]:
    stmt = select(OutboxMessage).where(OutboxMessage.subject.startswith("Audit checkpoint"))
    return list(db.session.scalars(stmt.order_by(OutboxMessage.id)))


def test_a_checkpoint_goes_to_the_database_the_file_and_the_contacts(ctx, settings, tmp_path):
    settings(AUDIT_CHECKPOINT_DIR=str(tmp_path), SECURITY_CONTACTS=CONTACTS)
    _events(3)
    last_id, last_hash = _head()
    count = db.session.scalar(select(db.func.count()).select_from(AuditEvent))

    checkpoint = checkpoints.write_checkpoint("manual")

    assert checkpoint is not None
    stored = db.session.scalars(select(AuditCheckpoint)).one()
    assert (stored.event_count, stored.last_id, stored.last_hash) == (count, last_id, last_hash)
    lines = (tmp_path / "audit-checkpoints.jsonl").read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) | {"at": ""} == {
        "at": "",
        "event_count": count,
        "last_id": last_id,
        "last_hash": last_hash,
    }
    mails = _checkpoint_mail()
    assert sorted(m.to for m in mails) == ["sec@example.com", "soc@example.com"]
    assert last_hash in mails[0].body and lines[0] in mails[0].body
    # The line copied from the email is a checkpoint file of its own.
    pasted = tmp_path / "pasted.txt"
    pasted.write_text(lines[0] + "\n")
    assert [m.last_hash for m in checkpoints.read_marks(pasted)] == [last_hash]


def test_a_checkpoint_job_run_twice_writes_one_checkpoint(ctx, settings, tmp_path):
    settings(AUDIT_CHECKPOINT_DIR=str(tmp_path), SECURITY_CONTACTS="sec@example.com")
    _events(2)
    assert checkpoints.checkpoint_job("periodic").startswith("checkpoint at #")
    assert checkpoints.checkpoint_job("periodic") == "head already checkpointed"
    assert db.session.scalar(select(db.func.count()).select_from(AuditCheckpoint)) == 1
    assert len((tmp_path / "audit-checkpoints.jsonl").read_text().splitlines()) == 1
    assert len(_checkpoint_mail()) == 1
    # A new head gets its own.
    _events(1)
    assert checkpoints.periodic_checkpoint().startswith("checkpoint at #")
    assert db.session.scalar(select(db.func.count()).select_from(AuditCheckpoint)) == 2


def test_no_contacts_no_mail_and_an_empty_chain_no_checkpoint(ctx, settings, tmp_path):
    settings(AUDIT_CHECKPOINT_DIR=str(tmp_path), SECURITY_CONTACTS="")
    if db.session.scalar(select(db.func.count()).select_from(AuditEvent)) == 0:
        assert checkpoints.write_checkpoint("manual") is None
    _events(1)
    assert checkpoints.write_checkpoint("manual") is not None
    assert _checkpoint_mail() == []


def test_every_n_events_a_checkpoint_is_written_after_the_commit(ctx, settings, tmp_path):
    settings(AUDIT_CHECKPOINT_DIR=str(tmp_path), AUDIT_CHECKPOINT_EVERY=4)
    _events(9)
    written = db.session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.last_id)).all()
    assert len(written) == 2
    assert all(c.last_id % 4 == 0 and c.reason == "every" for c in written)
    assert [c.event_count for c in written] == [
        db.session.scalar(select(db.func.count()).where(AuditEvent.id <= c.last_id))
        for c in written
    ]


def test_no_checkpoint_for_an_event_rolled_back(ctx, settings, tmp_path):
    settings(AUDIT_CHECKPOINT_DIR=str(tmp_path), AUDIT_CHECKPOINT_EVERY=1)
    record("test.rolled_back", None, None)
    jobs.rollback()
    jobs.commit()
    assert db.session.scalar(select(db.func.count()).select_from(AuditCheckpoint)) == 0


def test_the_file_defaults_to_the_instance_folder(app, ctx, settings):
    settings(AUDIT_CHECKPOINT_DIR="")
    assert (
        checkpoints.export_file() == Path(app.instance_path) / "checkpoints" / checkpoints.FILE_NAME
    )


def test_the_checkpoint_command(app, ctx, settings, tmp_path):
    settings(AUDIT_CHECKPOINT_DIR=str(tmp_path))
    _events(2)
    last_id, _ = _head()
    runner = app.test_cli_runner()
    first = runner.invoke(args=["audits", "checkpoint"])
    assert first.exit_code == 0 and f"up to #{last_id}" in first.output
    again = runner.invoke(args=["audits", "checkpoint"])
    assert again.exit_code == 0 and "checkpointed already" in again.output


def test_the_checkpoint_is_periodic_hourly():
    entry = next(p for p in PERIODIC if p.func is checkpoints.periodic_checkpoint)
    assert entry.every_seconds == 3600
