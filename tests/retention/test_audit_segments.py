"""Audit events archived in whole chain segments: the seal anchors what remains, so
`flask audits verify` still proves it, and `verify --archive DIR` proves the archived
segments from the archive files alone. The same tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.audits import checkpoints, record
from portal.audits import services as audit_services
from portal.audits.models import AuditEvent
from portal.audits.verification import verify
from portal.extensions import db
from portal.retention.run import run_retention
from portal.timeutil import iso_utc, utcnow
from tests.audits.tamper import as_intruder
from tests.factories import make_user
from tests.retention.helpers import YEAR


@pytest.fixture
def archive_dir(ctx, settings, tmp_path) -> Path:  # type: ignore[no-untyped-def]
    settings(
        ARCHIVE_DIR=str(tmp_path / "archive"),
        AUDIT_CHECKPOINT_DIR=str(tmp_path / "checkpoints"),
        AUDIT_CHECKPOINT_EVERY=0,
    )
    return tmp_path / "archive"


def _events(count: int, age: timedelta, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """`count` events recorded `age` ago (each committed, as requests do); their ids."""
    moment = utcnow() - age
    actor = make_user(role="admin")
    ids = []
    with monkeypatch.context() as patched:
        patched.setattr(audit_services, "utcnow", lambda: moment)
        for i in range(count):
            event = record("test.old", actor, ("thing", i), before={"n": i}, after={"n": 1})
            ids.append(event.id)
            db.session.commit()
    return ids


def _chain(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[int]]:
    old = _events(6, 4 * YEAR, monkeypatch)
    recent = _events(3, timedelta(days=2), monkeypatch)
    return old, recent


def _cli(app, *args: str):  # type: ignore[no-untyped-def]
    return app.test_cli_runner().invoke(args=["audits", "verify", "--quiet", *args])


def test_a_sealed_segment_leaves_a_chain_that_verifies(app, archive_dir, monkeypatch):
    old, recent = _chain(monkeypatch)
    last_old = db.session.get(AuditEvent, old[-1])
    last_old_hash, last_old_at = last_old.hash, last_old.created_at

    run = run_retention()

    assert run.status == "done", run.error
    assert run.counts["audit_events"] == len(old)
    first_remaining = db.session.scalar(select(func.min(AuditEvent.id)))
    assert first_remaining == recent[0]
    seal = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "audit.sealed"))
    manifest = (Path(run.archive_path) / "manifest.json").read_bytes()
    assert seal.data == {
        "first_id": old[0],
        "last_id": old[-1],
        "count": len(old),
        "last_hash": last_old_hash,
        "last_at": iso_utc(last_old_at),
        "archive_sha256": hashlib.sha256(manifest).hexdigest(),
        "archive": Path(run.archive_path).name,
    }
    # The seal was appended before the archived event that reports the run.
    archived = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "retention.archived")
    )
    assert seal.id < archived.id

    result = verify()
    assert result.ok, result.problems
    assert result.checked == recent[-1] - recent[0] + 1 + 2  # the seal and the report
    command = _cli(app)
    assert command.exit_code == 0, command.output
    assert "OK:" in command.output
    proved = _cli(app, "--archive", str(archive_dir))
    assert proved.exit_code == 0, proved.output
    assert f"OK: rows {old[0]}..{old[-1]} (6 events)" in proved.output


def test_checkpoints_of_archived_rows_do_not_break_verification(app, archive_dir, monkeypatch):
    old, _recent = _chain(monkeypatch)
    assert checkpoints.write_checkpoint("manual") is not None
    assert run_retention().status == "done"
    marks = checkpoints.read_marks(checkpoints.export_file())
    assert marks and marks[0].last_id >= old[-1]
    assert verify(checkpoints=marks).ok


def test_two_runs_leave_two_segments_that_follow_each_other(app, archive_dir, monkeypatch):
    first, _ = _chain(monkeypatch)
    assert run_retention().status == "done"
    # A year later the recent events, the seal and the report are old too.
    later = run_retention(now=utcnow() + 4 * YEAR)
    assert later.status == "done", later.error
    assert verify().ok
    proved = _cli(app, "--archive", str(archive_dir))
    assert proved.exit_code == 0, proved.output
    assert proved.output.count("OK: rows") == 2


def test_one_changed_byte_of_the_archive_is_caught(app, archive_dir, monkeypatch):
    _chain(monkeypatch)
    run = run_retention()
    path = Path(run.archive_path) / "audit_events.jsonl.gz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    proved = _cli(app, "--archive", str(archive_dir))
    assert proved.exit_code == 1
    assert "audit_events.jsonl.gz: its SHA-256 is not the manifest's" in proved.output


def test_an_edited_row_with_its_manifest_redone_is_caught(app, archive_dir, monkeypatch):
    """Someone who rewrites a row and the manifest's checksum still fails: the row's hash
    and the seal's checksum of the manifest no longer hold."""
    _chain(monkeypatch)
    folder = Path(run_retention().archive_path)
    path = folder / "audit_events.jsonl.gz"
    lines = gzip.decompress(path.read_bytes()).splitlines()
    lines[2] = lines[2].replace(b'"after":{"n":1}', b'"after":{"n":7}')
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n", mtime=0))
    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["table"] == "audit_events":
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))

    proved = _cli(app, "--archive", str(folder))
    assert proved.exit_code == 1
    assert "row 3: its contents no longer match its hash" in proved.output
    assert "manifest.json is not the one the seal names" in proved.output


def test_rows_removed_without_a_seal_are_named(app, archive_dir, monkeypatch):
    old, recent = _chain(monkeypatch)
    assert run_retention().status == "done"
    # The first remaining row goes too, without a seal of its own.
    as_intruder("DELETE FROM audit_events WHERE id = :id", id=recent[0])

    problems = verify().problems
    assert [(p.event_id, p.kind) for p in problems] == [(recent[1], "deleted")]
    assert "removed without a seal" in problems[0].detail
    command = _cli(app)
    assert command.exit_code == 1
    assert "removed without a seal" in command.output


def test_a_chain_cut_from_row_one_is_named(app, archive_dir, monkeypatch):
    old, _recent = _chain(monkeypatch)
    as_intruder("DELETE FROM audit_events WHERE id <= :id", id=old[1])
    problems = verify().problems
    assert [(p.event_id, p.kind) for p in problems] == [(old[2], "deleted")]
    assert f"rows 1..{old[1]} were removed without a seal" in problems[0].detail


def test_a_broken_chain_is_not_archived(app, archive_dir, monkeypatch):
    old, _recent = _chain(monkeypatch)
    as_intruder("DELETE FROM audit_events WHERE id = :id", id=old[3])
    run = run_retention()
    assert run.status == "failed"
    assert "verify the chain before archiving" in run.error
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) >= len(old) - 1


def test_the_panel_shows_where_the_log_starts_and_the_last_run(
    app, client, as_role, archive_dir, monkeypatch
):
    with app.app_context():
        old, recent = _chain(monkeypatch)
        checkpoints.write_checkpoint("manual")
        run = run_retention()
        assert run.status == "done", run.error
    as_role("auditor")
    html = client.get("/audits/retention").get_data(as_text=True)
    assert "Archived up to " in html
    assert f"events {old[0]}–{old[-1]} are in the archive" in html
    assert f"the log now starts at event {recent[0]}." in html
    assert "removed 6 records (6 audit events)" in html
    assert f"up to event {recent[-1]} (manual)" in html
    assert 'id="last-verification">None yet.' in html


def test_the_panel_before_any_archive(client, as_role):
    as_role("admin")
    html = client.get("/audits/retention").get_data(as_text=True)
    assert "At its first event: nothing archived yet." in html
    assert 'id="last-retention-run">None yet.' in html
