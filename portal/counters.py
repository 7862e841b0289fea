"""Counts that arrive in floods (blocked requests, 429s) kept in a Redis hash and moved
onto their database rows in one batch at most every few seconds.

A row write per event would turn a flood of refused requests into a flood of writes
contending for the same rows; a counter costs the refused request one Redis round trip.
If Redis is unreachable the count is written directly, and a batch the database refuses
is put back for the next flush, so no count is lost to either failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from redis import RedisError

from . import cache, jobs

log = logging.getLogger(__name__)

# Writes {field: count} onto the rows; False when the database refused (nothing written).
Writer = Callable[[dict[str, int]], bool]


class BufferedCounter:
    def __init__(self, name: str, write: Writer, flush_seconds: int = 10) -> None:
        # Under the cache's prefix, so clearing the cache (as each test does) drops the
        # counts with the rows they count.
        self.key = f"{cache.PREFIX}{name}"
        self.flush_due_key = f"{self.key}_flushed"
        self.name = name
        self.write = write
        self.flush_seconds = flush_seconds

    def add(self, field: str) -> None:
        """Count one for `field`; the request that finds a flush due does it."""
        try:
            pipe = jobs.connection().pipeline(transaction=False)
            pipe.hincrby(self.key, field, 1)
            pipe.set(self.flush_due_key, "1", nx=True, ex=self.flush_seconds)
            _, flush_due = pipe.execute()
        except RedisError as exc:
            log.warning("%s: counter unavailable, writing directly: %s", self.name, exc)
            self.write({field: 1})
            return
        if flush_due:
            self.flush()

    def flush(self) -> int:
        """Move the counts waiting in Redis onto their rows; how many were moved."""
        conn = jobs.connection()
        try:
            pipe = conn.pipeline(transaction=True)
            pipe.hgetall(self.key)
            pipe.delete(self.key)
            counted, _ = pipe.execute()
        except RedisError as exc:
            log.warning("%s: counter unavailable, nothing flushed: %s", self.name, exc)
            return 0
        counts = {_text(field): int(value) for field, value in counted.items()}
        if not counts or self.write(counts):
            return sum(counts.values())
        try:
            pipe = conn.pipeline(transaction=False)
            for field, count in counts.items():
                pipe.hincrby(self.key, field, count)
            pipe.execute()
        except RedisError:
            log.warning("%s: counts lost: %s", self.name, counts)
        return 0

    def pending(self) -> dict[str, int]:
        """Counts not yet on their rows, per field (pages add them to the rows')."""
        try:
            counted = jobs.connection().hgetall(self.key)
        except RedisError:
            return {}
        return {_text(field): int(value) for field, value in counted.items()}


def _text(field: bytes | str) -> str:
    return field.decode() if isinstance(field, bytes) else field
