"""Long jobs' own rows (DESIGN §4): who asked for what, how far it got, the file it made
or the error it ended with.

RQ keeps a job's data in Redis for a day at most and not at all once Redis is flushed,
so the pages that poll a job and the audit trail read this row instead; the RQ job id
is kept on it to find the job in Redis while it still is there.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from flask import abort
from sqlalchemy import ForeignKey, Index, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import jobs
from .extensions import db
from .timeutil import utcnow
from .users.models import User

STATUSES = ("queued", "running", "done", "failed")
ACTIVE = ("queued", "running")
# A job may claim its row from these: a failed one may be run again by RQ's retry.
CLAIMABLE = ("queued", "failed")


class JobRecord(db.Model):
    __tablename__ = "job_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Chosen before the enqueue, so the row and the RQ job carry the same id from the start.
    job_id: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(30))  # change_pdf
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[int]
    status: Mapped[str] = mapped_column(String(10), default="queued")
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    file_key: Mapped[str | None] = mapped_column(String(100))
    filename: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    requested_by: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (
        # The change page asks for the newest record of one change.
        Index("ix_job_records_subject", "subject_type", "subject_id", "created_at"),
    )

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def percent(self) -> int:
        if self.status == "done":
            return 100
        if self.total <= 0:
            return 0
        return min(100, self.done * 100 // self.total)


def new_record(kind: str, subject_type: str, subject_id: int, requested_by: User) -> JobRecord:
    """A queued row in the current transaction; the caller enqueues after the commit."""
    record = JobRecord(
        job_id=uuid.uuid4().hex,
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        requested_by_id=requested_by.id,
        status="queued",
    )
    db.session.add(record)
    db.session.flush()
    return record


def get_for_subject_or_404(
    record_id: int, kind: str, subject_type: str, subject_id: int
) -> JobRecord:
    """The record, only if it is of this kind and about this subject: an id taken from
    another object's URL is not found, so a record never leaks past its subject's check."""
    record = db.session.get(JobRecord, record_id) if 0 < record_id < 2**31 else None
    if record is None or (record.kind, record.subject_type, record.subject_id) != (
        kind,
        subject_type,
        subject_id,
    ):
        abort(404)
    return record


def latest_for(kind: str, subject_type: str, subject_id: int) -> JobRecord | None:
    stmt = (
        select(JobRecord)
        .where(
            JobRecord.kind == kind,
            JobRecord.subject_type == subject_type,
            JobRecord.subject_id == subject_id,
        )
        .order_by(JobRecord.created_at.desc(), JobRecord.id.desc())
        .limit(1)
    )
    return db.session.scalar(stmt)


def claim(record_id: int, rebuild: bool = False) -> bool:
    """Move the row to running unless another run has it (or finished it, unless
    `rebuild`: its file was lost); commits. Compare-and-set in one UPDATE, so two
    workers running the same job never both build."""
    statuses = (*CLAIMABLE, "done") if rebuild else CLAIMABLE
    claimed = db.session.execute(
        update(JobRecord)
        .where(JobRecord.id == record_id, JobRecord.status.in_(statuses))
        .values(status="running", started_at=utcnow(), error=None, done=0, finished_at=None)
    ).rowcount
    db.session.commit()
    return bool(claimed)


def progress(record: JobRecord, done: int, total: int) -> None:
    """Show how far the job is, on the row (for the page) and in RQ's job.meta; commits."""
    record.done, record.total = done, total
    db.session.commit()
    jobs.set_progress(done, total)


def finish(record: JobRecord, file_key: str, filename: str) -> None:
    record.status, record.file_key, record.filename = "done", file_key, filename
    record.done = record.total
    record.error = None
    record.finished_at = utcnow()
    db.session.commit()


def fail(record_id: int, error: str) -> None:
    """End the row failed with `error`, after rolling back whatever the job had begun."""
    db.session.rollback()
    db.session.execute(
        update(JobRecord)
        .where(JobRecord.id == record_id)
        .values(status="failed", error=error[:4000], finished_at=utcnow())
    )
    db.session.commit()
