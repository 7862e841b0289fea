"""What the error handler keeps of refused requests: each 403 as an `auth.forbidden`
audit event, and 429s as counters per client address and clock hour.

Why two ways. A 403 is someone signed in reaching for what their role does not allow:
rare, and worth its own row in the trail. A 429 is what a flood gets, possibly thousands a
second from one address, and the rate limit is there to make each of them cheap. An audit
event per 429 would take the chain lock per request; even an `UPDATE hits = hits + 1` per
request would turn the flood into row writes queueing on one row lock. So a 429 costs one
count in Redis (the in-process stand-in without `REDIS_URL`), moved to `rate_limit_hits`
(one row per address and hour) in batches (portal/counters.py). The security page adds
the counts still waiting in Redis to the rows.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import request
from flask_login import current_user
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from .. import jobs, logs
from ..client import client_ip
from ..counters import BufferedCounter
from ..extensions import db
from ..timeutil import utcnow
from .security_models import RateLimitHit
from .services import record

log = logging.getLogger(__name__)


def forbidden() -> None:
    """Record the refusal of the current request, alone: whatever the request had written
    before it was refused is rolled back first. Never fails the error page."""
    try:
        jobs.rollback()
        user = current_user if current_user.is_authenticated else None
        record(
            "auth.forbidden",
            user,
            user,
            method=request.method,
            path=request.path[:200],
            endpoint=request.endpoint,
        )
        db.session.commit()
    except SQLAlchemyError:
        log.exception("the refusal of %s %s could not be recorded", request.method, request.path)
        db.session.rollback()


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _field(ip: str, hour: datetime) -> str:
    return f"{hour.isoformat()}|{ip}"


def _parse_field(field: bytes | str) -> tuple[str, datetime]:
    text = field.decode() if isinstance(field, bytes) else field
    hour, _, ip = text.partition("|")
    return ip, datetime.fromisoformat(hour)


def rate_limited(limit: str) -> None:
    """Count a 429 for the client's address in this hour and log `RATE_LIMIT`."""
    ip, path = (client_ip() or "unknown")[:45], request.path[:200]
    logs.rate_limited(ip, path, limit)
    HITS.add(_field(ip, hour_of(utcnow())))


def flush_rate_limit_hits() -> int:
    """Move the counts waiting in Redis onto their rows; returns how many hits moved."""
    return HITS.flush()


def _write_safely(hits: dict[tuple[str, datetime], int]) -> bool:
    """Add `hits` to their rows in a transaction of their own (the refused request has
    nothing pending worth keeping); False when the database refused."""
    now = utcnow()
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    try:
        jobs.rollback()
        for (ip, hour), count in sorted(hits.items()):
            statement = insert(RateLimitHit).values(ip=ip, hour=hour, hits=count, last_at=now)
            statement = statement.on_conflict_do_update(
                index_elements=["ip", "hour"],
                set_={"hits": RateLimitHit.hits + count, "last_at": now},
            )
            db.session.execute(statement)
        db.session.commit()
    except SQLAlchemyError:
        log.exception("could not write %s rate-limited requests", sum(hits.values()))
        db.session.rollback()
        return False
    return True


def pending_rate_limit_hits(since_hour: datetime) -> dict[str, int]:
    """Hits counted but not yet on their rows, per address, from `since_hour` on."""
    pending: dict[str, int] = {}
    for field, count in HITS.pending().items():
        ip, hour = _parse_field(field)
        if hour >= since_hour:
            pending[ip] = pending.get(ip, 0) + count
    return pending


HITS = BufferedCounter(
    "rate_limit_hits",
    lambda counts: _write_safely({_parse_field(field): count for field, count in counts.items()}),
)
