"""The queue (DESIGN §4): the one way to start background work.

With `REDIS_URL` set, jobs go to Redis and `flask worker` runs them inside the
app context. Without it (the embedded default) RQ runs them synchronously, in
the request, through the same code path; RQ still wants a connection, so it
gets an in-process fakeredis one.

Jobs are enqueued only after the transaction that wrote their rows commits:
services call `commit()` here, which commits and then starts whatever jobs
`after_commit()` queued in that unit of work.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask import Flask, current_app
from redis import Redis
from rq import Queue, Retry, SimpleWorker, Worker
from rq.job import Job, get_current_job

from .extensions import db

QUEUES = ("default", "email", "exports")
F = TypeVar("F", bound=Callable[..., Any])
_PENDING_KEY = "portal.after_commit_jobs"


def connection(app: Flask | None = None) -> Redis:
    """The Redis connection of `app`, made once per app and kept in its extensions."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    conn = app.extensions.get("portal.redis")
    if conn is None:
        url = app.config["SETTINGS"].REDIS_URL
        if url:
            conn = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        else:
            import fakeredis

            conn = fakeredis.FakeRedis()
        app.extensions["portal.redis"] = conn
    return conn


def get_queue(name: str = "default") -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    inline = current_app.config["SETTINGS"].jobs_inline
    return Queue(name, connection=connection(), is_async=not inline)


def enqueue(
    func: Callable[..., Any],
    *args: Any,
    queue: str = "default",
    retry: Retry | None = None,
    timeout: int | None = None,
    job_id: str | None = None,
    at: datetime | None = None,
) -> Job | None:
    """Start `func(*args)` on `queue`, or at `at` (naive UTC) through RQ's scheduler.

    Arguments must be ids and plain values. Inline (no Redis) there is no
    scheduler: a job for later is dropped, and the periodic sweep that every
    scheduled job has as a safety net does its work instead.
    """
    options: dict[str, Any] = {
        "retry": retry,
        "job_timeout": timeout,
        "job_id": job_id,
        "result_ttl": 86400,
        "failure_ttl": 7 * 86400,
    }
    if at is not None:
        if current_app.config["SETTINGS"].jobs_inline:
            return None
        return get_queue(queue).enqueue_at(at.replace(tzinfo=UTC), func, *args, **options)
    return get_queue(queue).enqueue(func, *args, **options)


def after_commit(func: Callable[..., Any], *args: Any, **options: Any) -> None:
    """Enqueue `func(*args)` once the current transaction has committed (see commit())."""
    db.session.info.setdefault(_PENDING_KEY, []).append((func, args, options))


def discard_pending() -> None:
    db.session.info.pop(_PENDING_KEY, None)


def commit() -> list[Job | None]:
    """Commit the unit of work, then enqueue the jobs it asked for."""
    try:
        db.session.commit()
    except Exception:
        discard_pending()
        raise
    pending = db.session.info.pop(_PENDING_KEY, [])
    return [enqueue(func, *args, **options) for func, args, options in pending]


def rollback() -> None:
    discard_pending()
    db.session.rollback()


def job(func: F) -> F:
    """Mark a job function: a failure rolls its transaction back and is re-raised.

    A job never reports success after an error; RQ records the failure (and
    retries it when the job was enqueued with a Retry).
    """

    @functools.wraps(func)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception:
            rollback()
            raise

    return wrapped  # type: ignore[return-value]


def will_retry() -> bool:
    """Whether RQ will run the current job again if it fails now."""
    current = get_current_job()
    if current is None or not current.origin or current_app.config["SETTINGS"].jobs_inline:
        return False
    return bool(current.retries_left)


def set_progress(done: int, total: int) -> None:
    current = get_current_job()
    if current is not None:
        current.meta.update(done=done, total=total)
        current.save_meta()


class _AppContextMixin:
    """Runs every job inside a fresh app context (its own database session)."""

    app: Flask

    def perform_job(self, *args: Any, **kwargs: Any) -> bool:
        with self.app.app_context():
            try:
                return super().perform_job(*args, **kwargs)  # type: ignore[misc]
            finally:
                db.session.remove()


class AppWorker(_AppContextMixin, Worker):
    def main_work_horse(self, *args: Any, **kwargs: Any) -> None:
        # The forked horse must not share pooled connections with its parent.
        with self.app.app_context():
            db.engine.dispose(close=False)
        super().main_work_horse(*args, **kwargs)


class AppSimpleWorker(_AppContextMixin, SimpleWorker):
    pass


def make_worker(app: Flask, queues: list[str], simple: bool = False) -> Worker:
    cls = AppSimpleWorker if simple else AppWorker
    worker = cls([Queue(q, connection=connection(app)) for q in queues], connection=connection(app))
    worker.app = app
    return worker
