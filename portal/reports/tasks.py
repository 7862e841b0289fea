"""Jobs of the reports blueprint: building an export, and the periodic cleanup that
expires old files and reconciles rows whose worker died."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from flask import current_app
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from sqlalchemy import select, update
from werkzeug.datastructures import MultiDict

from .. import jobs, storage
from ..audits import alerts, record
from ..extensions import db
from ..timeutil import to_zone, utcnow
from . import csv_writer, services
from .models import ACTIVE, Export
from .sources import DOCUMENTS, KINDS, Document, Source

log = logging.getLogger(__name__)

STORAGE_PREFIX = "exports"
# A queued export whose job Redis no longer knows, after this long, was lost.
LOST_AFTER = timedelta(minutes=10)


@jobs.job
def build_export(export_id: int) -> str:
    """Write the export a row asks for. Safe to run twice: only the run that moves the
    row from queued to running writes; a cancel or a failure ends it without a file."""
    claimed = db.session.execute(
        update(Export)
        .where(Export.id == export_id, Export.status == "queued")
        .values(status="running", started_at=utcnow(), rows_done=0, error=None)
    ).rowcount
    db.session.commit()
    if not claimed:
        return "not queued"
    try:
        return _build(export_id)
    except csv_writer.Cancelled:
        db.session.rollback()
        # Normally the cancel already ended the row; if only the signal got through, end it.
        db.session.execute(
            update(Export)
            .where(Export.id == export_id, Export.status == "running")
            .values(status="cancelled", finished_at=utcnow())
        )
        db.session.commit()
        return "cancelled"
    except Exception as exc:
        services.mark_failed(export_id, f"{type(exc).__name__}: {exc}", only_if=("running",))
        raise


def _build(export_id: int) -> str:
    export = db.session.get(Export, export_id)
    assert export is not None
    owner, source = export.requested_by, KINDS[export.kind]
    # As the owner is now: one whose access shrank since they asked gets no file.
    if not source.allows(owner) or source.scope(owner) != export.scope:
        services.mark_failed(export_id, "The person who asked may no longer export this list.")
        return "refused"
    if isinstance(source, Document):
        stored, count, filename = _write_document(export, source)
    else:
        stored, count, filename = _write_csv(export, source)
    return _finish(export, stored, count, filename)


def _cancel_check(export: Export) -> None:
    if services.cancel_requested(export.job_id):
        raise csv_writer.Cancelled


def _write_csv(export: Export, source: Source) -> tuple[storage.StoredFile, int, str]:
    owner = export.requested_by
    plan = source.plan(source.read_filters(MultiDict(parse_qsl(export.query))), owner)
    export.rows_total = csv_writer.count_rows(plan)
    db.session.commit()
    jobs.set_progress(0, export.rows_total)

    def progress(done: int) -> None:
        jobs.set_progress(min(done, export.rows_total or 0), export.rows_total or 0)
        _cancel_check(export)

    with storage.create(STORAGE_PREFIX) as new_file:
        rows = csv_writer.write_csv(
            plan, new_file, export.timezone, progress, expected=export.rows_total or 0
        )
        _cancel_check(export)
    assert new_file.stored is not None
    local = to_zone(export.created_at, export.timezone)
    return new_file.stored, rows, f"{export.kind}-{local:%Y%m%d-%H%M}-{export.id}.csv"


def _write_document(export: Export, document: Document) -> tuple[storage.StoredFile, int, str]:
    """Progress counts the document's parts; once built, `rows_done` holds its pages."""
    args = dict(parse_qsl(export.query))
    owner = export.requested_by
    export.rows_total = None
    db.session.commit()

    def progress(done: int, total: int) -> None:
        jobs.set_progress(done, total)
        _cancel_check(export)

    with storage.create(STORAGE_PREFIX) as new_file:
        pages = document.build(
            args, export.timezone, f"{owner.name} <{owner.email}>", new_file, progress
        )
    assert new_file.stored is not None
    return new_file.stored, pages, document.filename(args)


def _finish(export: Export, stored: storage.StoredFile, count: int, filename: str) -> str:
    """running → done with the file, unless the export ended meanwhile (then the file goes)."""
    now = utcnow()
    values = {
        "status": "done",
        "rows_done": count,
        "file_key": stored.key,
        "filename": filename,
        "size": stored.size,
        "sha256": stored.sha256,
        "finished_at": now,
        "expires_at": services.expiry_from(now),
    }
    if export.kind in DOCUMENTS:
        values["rows_total"] = count  # pages, so the row reads the same as a CSV's
    finished = db.session.execute(
        update(Export).where(Export.id == export.id, Export.status == "running").values(**values)
    ).rowcount
    if not finished:
        # Cancelled (or reconciled as failed) while the last rows were written.
        db.session.rollback()
        storage.delete(stored.key)
        return "ended meanwhile"
    record("export.completed", None, export, kind=export.kind, rows=count, sha256=stored.sha256)
    if export.kind not in DOCUMENTS:  # a document's count is pages, not rows
        alerts.export_finished(export, count)
    jobs.commit()
    jobs.set_progress(count, count)
    return "built"


@jobs.job
def cleanup_exports() -> str:
    """Expire files past their retention, fail rows whose job died, drop partial files."""
    now = utcnow()
    expired = 0
    for export in db.session.scalars(
        select(Export).where(Export.status == "done", Export.expires_at <= now)
    ):
        if export.file_key:
            storage.delete(export.file_key)
        export.status, export.file_key = "expired", None
        record("export.expired", None, export, kind=export.kind, filename=export.filename)
        expired += 1
    jobs.commit()
    failed = reconcile_dead_jobs(now)
    partial = storage.purge_partial(STORAGE_PREFIX, older_than=timedelta(hours=6))
    return f"{expired} expired, {failed} failed as lost, {partial} partial files removed"


def reconcile_dead_jobs(now: datetime) -> int:
    """Rows still queued or running whose RQ job failed, was stopped, or is gone, end
    failed, so a worker killed mid-export never leaves a row 'running' for ever."""
    if current_app.config["SETTINGS"].jobs_inline:
        return 0
    # A worker that died outright leaves its job in the started registry until this
    # notices its heartbeat stopped and moves it to failed.
    StartedJobRegistry("exports", connection=jobs.connection()).cleanup()
    failed = 0
    for export in db.session.scalars(select(Export).where(Export.status.in_(ACTIVE))).all():
        reason = _dead_job_reason(export, now)
        if reason and services.mark_failed(export.id, reason):
            failed += 1
    return failed


def _dead_job_reason(export: Export, now: datetime) -> str | None:
    try:
        job = Job.fetch(export.job_id, connection=jobs.connection())
    except NoSuchJobError:
        if now - export.created_at > LOST_AFTER:
            return "The export's job was lost; try again."
        return None
    status = job.get_status(refresh=True)
    if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        return "The worker stopped before the export finished; try again."
    overdue = timedelta(seconds=services.JOB_TIMEOUT + 600)
    if status == JobStatus.STARTED and export.started_at and now - export.started_at > overdue:
        return "The export ran past its time limit."
    return None
