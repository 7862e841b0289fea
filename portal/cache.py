"""Short-lived shared values, kept in Redis so every web process sees the same value and
the same invalidation (without `REDIS_URL`, the in-process stand-in the jobs use).

A value is stored with its namespace's version: `bump()` after a write makes every
older value stale at once, and the TTL only bounds how long a stale value lingers.
Redis being down never fails a page: the value is computed.

The namespaces are table names: `watch_writes()` notes every ORM session's writes to a
table (objects flushed, or bulk statements) and bumps that table's namespace once the
transaction commits, so a value derived from a table is never older than its last
committed change.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from flask import current_app, has_app_context
from redis import RedisError
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from . import jobs

PREFIX = "portal:cache:"
T = TypeVar("T")
log = logging.getLogger(__name__)


def _version_key(namespace: str) -> str:
    return f"{PREFIX}version:{namespace}"


def remember(namespaces: str | Sequence[str], key: str, ttl: int, compute: Callable[[], T]) -> T:
    """The cached JSON value of `compute()` for `key`, computed when missing or stale.

    A value read from several tables names them all. It is stored with the versions its
    tables had when it was computed, and the versions and the value are read back in one
    round trip: a committed write to any of the tables moves a version on, so the stored
    value no longer matches and is computed again.
    """
    if ttl <= 0:
        return compute()
    names = [namespaces] if isinstance(namespaces, str) else list(namespaces)
    value_key = f"{PREFIX}{'+'.join(names)}:{key}"
    try:
        conn = jobs.connection()
        *stamps, cached = conn.mget([*(_version_key(name) for name in names), value_key])
        versions = [int(stamp or 0) for stamp in stamps]
        if cached is not None:
            stored_versions, value = json.loads(cached)
            if stored_versions == versions:
                return value  # type: ignore[no-any-return]
    except RedisError as exc:
        log.warning("cache unavailable, computing %s: %s", names, exc)
        return compute()
    value = compute()
    try:
        conn.set(value_key, json.dumps([versions, value]), ex=ttl)
    except RedisError as exc:
        log.warning("cache unavailable, not keeping %s: %s", names, exc)
    return value


def bump(namespace: str) -> None:
    """Make every value cached so far under `namespace` stale."""
    try:
        jobs.connection().incr(_version_key(namespace))
    except RedisError as exc:
        # The values then live out their TTL; the page still works.
        log.warning("cache unavailable, %s not invalidated: %s", namespace, exc)


def clear() -> None:
    """Drop every cached value and version (the tests start each from nothing)."""
    conn = jobs.connection()
    keys = list(conn.scan_iter(match=f"{PREFIX}*", count=1000))
    if keys:
        conn.delete(*keys)


_CHANGED = "portal.cache_tables_changed"


def _note_flush(session: Session, _context: Any, _instances: Any) -> None:
    changed = session.info.setdefault(_CHANGED, set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(obj, "__table__", None)
        if table is not None:
            changed.add(table.name)


def _note_statement(state: ORMExecuteState) -> None:
    """Bulk statements (sweeps, bulk actions, seeding) write without a flush."""
    if state.is_insert or state.is_update or state.is_delete:
        name = getattr(getattr(state.statement, "table", None), "name", None)
        if name:
            state.session.info.setdefault(_CHANGED, set()).add(name)


def _after_commit(session: Session) -> None:
    changed = session.info.pop(_CHANGED, None)
    if changed and has_app_context():
        for table in sorted(changed):
            bump(table)


def _after_rollback(session: Session) -> None:
    session.info.pop(_CHANGED, None)


def watch_writes() -> None:
    """Listen on every ORM session (once per process) for the tables it writes to."""
    listeners = (
        ("before_flush", _note_flush),
        ("do_orm_execute", _note_statement),
        ("after_commit", _after_commit),
        ("after_rollback", _after_rollback),
    )
    for name, listener in listeners:
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)


def shared(namespaces: str | Sequence[str], key: str, compute: Callable[[], T]) -> T:
    """`remember()` for the answers many people share, kept `SHARED_CACHE_SECONDS`."""
    return remember(namespaces, key, current_app.config["SETTINGS"].SHARED_CACHE_SECONDS, compute)
