"""Verification runs: the whole chain verified by a job, its progress and result kept in
`audit_verification_runs` (the page polls it; the operations panel shows the last one).

A run is asked for from the page, or started daily by the scheduler. It is held against
every checkpoint within reach (the exported file and the database's), and ends with an
`audit.verified` event: appended after the head it proved, so it never disturbs the
verification it records.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import abort
from sqlalchemy import select, update

from .. import jobs
from ..extensions import db
from ..timeutil import utcnow
from ..users.models import User
from . import checkpoints
from .models import VerificationRun
from .services import record
from .verification import Verification, verify

log = logging.getLogger(__name__)

# Problems kept on the run's row; a chain broken everywhere is summed up, not listed.
KEPT_PROBLEMS = 500
RECENT_RUNS = 10
JOB_TIMEOUT = timedelta(hours=4)
# A run still queued or running this long after it was asked for lost its worker.
STALE_AFTER = JOB_TIMEOUT + timedelta(minutes=10)


def chain_broken_alert(summary: str) -> None:
    """Tell the alerting module, where one is installed, that the chain is broken."""
    try:
        from . import alerts  # type: ignore[attr-defined]
    except ImportError:
        return
    hook = getattr(alerts, "chain_broken", None)
    if hook is not None:
        hook(summary)


def request_run(requested_by: User | None) -> VerificationRun:
    """A queued run, committed, and its job started after the commit."""
    run = VerificationRun(requested_by_id=requested_by.id if requested_by else None, problems=[])
    db.session.add(run)
    db.session.flush()
    jobs.after_commit(run_verification, run.id, timeout=int(JOB_TIMEOUT.total_seconds()))
    jobs.commit()
    return run


def _claim(run_id: int) -> bool:
    claimed = db.session.execute(
        update(VerificationRun)
        .where(VerificationRun.id == run_id, VerificationRun.status == "queued")
        .values(status="running", started_at=utcnow(), checked=0)
    ).rowcount
    db.session.commit()
    return bool(claimed)


@jobs.job
def run_verification(run_id: int) -> str:
    """Verify the chain for one run. Safe to run twice: only the run that moves the row
    from queued to running verifies."""
    if not _claim(run_id):
        return "not queued"
    run = db.session.get(VerificationRun, run_id)
    assert run is not None

    def progress(checked: int, total: int) -> None:
        run.checked, run.total = checked, total
        db.session.commit()
        jobs.set_progress(checked, total)

    try:
        result = verify(progress=progress, checkpoints=checkpoints.known_marks())
    except Exception as exc:
        db.session.rollback()
        db.session.execute(
            update(VerificationRun)
            .where(VerificationRun.id == run_id)
            .values(
                status="failed", error=f"{type(exc).__name__}: {exc}"[:4000], finished_at=utcnow()
            )
        )
        db.session.commit()
        raise
    _finish(run, result)
    return result.summary()


def _finish(run: VerificationRun, result: Verification) -> None:
    run.status, run.ok = "done", result.ok
    run.checked, run.total = result.checked, result.total
    run.problems = [p.as_dict() for p in result.problems[:KEPT_PROBLEMS]]
    run.head_id, run.head_hash = result.last_id, result.last_hash
    run.finished_at = utcnow()
    record(
        "audit.verified",
        run.requested_by,
        ("audit_verification_run", run.id),
        ok=result.ok,
        checked=result.checked,
        problems=len(result.problems),
        head_id=result.last_id,
    )
    jobs.commit()
    if not result.ok:
        log.error("audit chain verification %s: %s", run.id, result.summary())
        chain_broken_alert(result.summary())


def active_run() -> VerificationRun | None:
    """The run on its way, if any (one whose worker was lost long ago is not)."""
    stmt = (
        select(VerificationRun)
        .where(
            VerificationRun.status.in_(("queued", "running")),
            VerificationRun.created_at > utcnow() - STALE_AFTER,
        )
        .order_by(VerificationRun.id.desc())
        .limit(1)
    )
    return db.session.scalar(stmt)


def fail_stale_runs() -> int:
    """End, as failed, the runs whose worker stopped without a word; commits."""
    failed = db.session.execute(
        update(VerificationRun)
        .where(
            VerificationRun.status.in_(("queued", "running")),
            VerificationRun.created_at <= utcnow() - STALE_AFTER,
        )
        .values(status="failed", error="The worker stopped before the end.", finished_at=utcnow())
    ).rowcount
    db.session.commit()
    return failed


@jobs.job
def scheduled_verification() -> str:
    """The daily verification, asked for by no one (the scheduler)."""
    fail_stale_runs()
    run = request_run(None)
    db.session.refresh(run)
    return f"verification run {run.id}: {run.status}"


def recent_runs(limit: int = RECENT_RUNS) -> list[VerificationRun]:
    stmt = (
        select(VerificationRun)
        .order_by(VerificationRun.created_at.desc(), VerificationRun.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(stmt))


def last_finished_run() -> VerificationRun | None:
    """The newest run that ended (done or failed): what the operations panel shows."""
    stmt = (
        select(VerificationRun)
        .where(VerificationRun.status.in_(("done", "failed")))
        .order_by(VerificationRun.finished_at.desc(), VerificationRun.id.desc())
        .limit(1)
    )
    return db.session.scalar(stmt)


def get_run_or_404(run_id: int) -> VerificationRun:
    run = db.session.get(VerificationRun, run_id) if 0 < run_id < 2**31 else None
    if run is None:
        abort(404)
    return run
