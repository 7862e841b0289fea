"""Exports: asking for one, cancelling, retrying, downloading, expiring (DESIGN §4).
Documents (the monthly PDF, sources.DOCUMENTS) are Export rows too, asked for by
`request_monthly_report`, and share everything after that.

A request writes the export's row and enqueues `tasks.build_export` on the `exports`
queue once that row is committed; the job moves the row through running to done (or
failed, or cancelled) by compare-and-set updates, so two runs of one job, a cancel
racing the end of a build, or the sweep reconciling a dead worker never both win.
"""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import update

from .. import jobs
from ..audits import record
from ..errors import Conflict, ServiceError
from ..extensions import db
from ..timeutil import utcnow
from ..users.models import User
from .models import ACTIVE, Export
from .monthly_figures import parse_month
from .sources import DOCUMENTS, KINDS, SOURCES, Document, Source

log = logging.getLogger(__name__)

# An export of millions of rows on a busy worker; RQ stops the job after this.
JOB_TIMEOUT = 3 * 3600
_CANCEL_KEY = "portal:export-cancel:{}"


class NotAllowed(ServiceError):
    status = 403


def source_of(kind: str) -> Source:
    source = SOURCES.get(kind)
    if source is None:
        raise ServiceError(f"There is no export of {kind!r}.", field="kind")
    return source


def kind_of(kind: str) -> Source | Document:
    """The list or document an Export row was made from."""
    found = KINDS.get(kind)
    if found is None:
        raise ServiceError(f"There is no export of {kind!r}.", field="kind")
    return found


def may_download(export: Export, user: User) -> bool:
    """The owner, or an admin; either as they are now (active, still allowed to read that
    list, and the owner still seeing as much as when they asked)."""
    source = KINDS.get(export.kind)
    if source is None or not source.allows(user):
        return False
    if user.role == "admin":
        return True
    return export.requested_by_id == user.id and source.scope(user) == export.scope


def request_export(kind: str, args: Any, actor: User) -> Export:
    """Queue an export of the list `kind` under the filters in `args` (its query string).
    Inline (no Redis) the job runs right here, so the row comes back finished."""
    source = source_of(kind)
    if not source.allows(actor):
        raise NotAllowed("You may not export this list.")
    filters = source.read_filters(args)
    export = Export(
        job_id=uuid.uuid4().hex,
        kind=kind,
        requested_by_id=actor.id,
        query=urlencode(source.query_string(filters)),
        scope=source.scope(actor),
        timezone=actor.timezone or current_app.config["SETTINGS"].TIMEZONE,
        status="queued",
    )
    db.session.add(export)
    db.session.flush()
    record("export.requested", actor, export, kind=kind, filters=export.query)
    _enqueue_after_commit(export)
    return _commit_and_enqueue(export)


def zone_of(user: User) -> str:
    """The person's zone, or the portal's, or UTC when neither is one Python knows."""
    zone = user.timezone or current_app.config["SETTINGS"].TIMEZONE
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return zone


def last_month(zone: str) -> date:
    """The first day of the month before this one, in `zone`: the form's default."""
    today = datetime.now(ZoneInfo(zone)).date()
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def request_monthly_report(month: str, actor: User) -> Export:
    """Queue the monthly operations report of `month` (YYYY-MM, local to the actor) for
    `actor`. A month that is malformed or has not started is a ServiceError (422)."""
    document = DOCUMENTS["monthly_report"]
    if not document.allows(actor):
        raise NotAllowed("You may not run reports.")
    zone = zone_of(actor)
    first = parse_month(month, datetime.now(ZoneInfo(zone)).date())
    if isinstance(first, str):
        raise ServiceError(first, field="month")
    export = new_document(document, {"month": f"{first:%Y-%m}"}, actor)
    return _commit_and_enqueue(export)


def new_document(document: Document, args: dict[str, str], owner: User) -> Export:
    """A queued Export row for `document` built from `args` (already checked), audited,
    in the current transaction; its job starts once the caller commits through
    `jobs.commit()`."""
    export = Export(
        job_id=uuid.uuid4().hex,
        kind=document.kind,
        requested_by_id=owner.id,
        query=urlencode(args),
        scope=document.scope(owner),
        timezone=zone_of(owner),
        status="queued",
    )
    db.session.add(export)
    db.session.flush()
    record("export.requested", owner, export, kind=document.kind, filters=export.query)
    _enqueue_after_commit(export)
    return export


def _enqueue_after_commit(export: Export) -> None:
    from .tasks import build_export

    jobs.after_commit(
        build_export, export.id, queue="exports", job_id=export.job_id, timeout=JOB_TIMEOUT
    )


def _commit_and_enqueue(export: Export) -> Export:
    try:
        jobs.commit()
    except RedisError as exc:
        # The row is committed but no job will pick it up: say so, so the page offers a retry.
        log.error("could not queue export %s: %s", export.id, exc)
        mark_failed(export.id, "The job queue is unavailable; try again in a moment.")
    db.session.refresh(export)
    return export


def cancel_export(export: Export, actor: User) -> Export:
    """Stop a queued or running export; its partial file is never kept."""
    cancelled = db.session.execute(
        update(Export)
        .where(Export.id == export.id, Export.status.in_(ACTIVE))
        .values(status="cancelled", finished_at=utcnow())
    ).rowcount
    if not cancelled:
        db.session.rollback()
        raise Conflict("Only a waiting or running export can be cancelled.")
    record("export.cancelled", actor, export, kind=export.kind)
    jobs.commit()
    try:
        # The running job looks for this between batches; a queued one finds its row
        # cancelled when it starts and does nothing.
        jobs.connection().set(_CANCEL_KEY.format(export.job_id), "1", ex=JOB_TIMEOUT)
    except RedisError as exc:
        log.warning("could not signal the cancel of export %s: %s", export.id, exc)
    db.session.refresh(export)
    return export


def cancel_requested(job_id: str) -> bool:
    """Whether the export run by `job_id` was cancelled (a retry runs under a new id)."""
    try:
        return bool(jobs.connection().exists(_CANCEL_KEY.format(job_id)))
    except RedisError:
        return False


def retry_export(export: Export, actor: User) -> Export:
    """Run a failed export again, under a new job, if its owner may still ask for it."""
    source = kind_of(export.kind)
    if export.requested_by_id != actor.id:
        raise NotAllowed("Only the person who asked for an export can retry it.")
    if not source.allows(actor) or source.scope(actor) != export.scope:
        raise NotAllowed("You may no longer export this list; ask for a new export.")
    job_id = uuid.uuid4().hex
    retried = db.session.execute(
        update(Export)
        .where(Export.id == export.id, Export.status == "failed")
        .values(status="queued", job_id=job_id, error=None, rows_done=0, finished_at=None)
    ).rowcount
    if not retried:
        db.session.rollback()
        raise Conflict("Only a failed export can be retried.")
    db.session.refresh(export)
    record("export.retried", actor, export, kind=export.kind)
    _enqueue_after_commit(export)
    return _commit_and_enqueue(export)


def record_download(export: Export, actor: User) -> None:
    record(
        "export.downloaded",
        actor,
        export,
        kind=export.kind,
        filename=export.filename,
        rows=export.rows_done,
        sha256=export.sha256,
    )
    jobs.commit()


def mark_failed(export_id: int, error: str, only_if: tuple[str, ...] = ACTIVE) -> bool:
    """End an export failed with `error` unless it already ended; commits."""
    db.session.rollback()
    failed = db.session.execute(
        update(Export)
        .where(Export.id == export_id, Export.status.in_(only_if))
        .values(status="failed", error=error[:4000], finished_at=utcnow())
    ).rowcount
    db.session.commit()
    return bool(failed)


def expiry_from(now: datetime) -> datetime:
    return now + timedelta(days=current_app.config["SETTINGS"].EXPORT_RETENTION_DAYS)
