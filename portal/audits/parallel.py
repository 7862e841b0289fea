"""A large chain on PostgreSQL verified by several processes, one id range each.

One core cannot both read and hash much over 100,000 rows a second, so the chain is cut
into segments that worker processes check side by side, each on its own connection.
A segment starts from the stored hash of the row before it, which is exactly where the
single walk would stand there (it goes on from what each row claims), so the problems
found are the same as one walk's.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import URL

from ..database import libpq_url
from .chain import ROW_COLUMNS

# Fewer rows than this are not worth starting processes for.
PARALLEL_FROM = 300_000
SEGMENT = 200_000

# As chain.STORED_COLUMNS: `data` as the text stored.
_COLUMNS = ", ".join(
    "data::text" if column.name == "data" else column.name for column in ROW_COLUMNS
)
# Built from the model's column names only, never from input.
SEGMENT_SQL = (
    f"SELECT {_COLUMNS} FROM audit_events "  # noqa: S608
    "WHERE id > %(after)s AND id <= %(up_to)s ORDER BY id LIMIT %(limit)s"
)
ROW_BEFORE_SQL = "SELECT id, hash FROM audit_events WHERE id <= %(id)s ORDER BY id DESC LIMIT 1"

_connection: Any = None


def worker_count() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _open(url: str) -> None:
    import gc

    import psycopg

    global _connection
    _connection = psycopg.connect(url, autocommit=True)
    gc.disable()  # as in verify(): the rows hold no cycles


def check_segment(task: tuple[int, int, int, tuple[int, str] | None]) -> Any:
    """Walk the rows after `after` up to `up_to` in a worker process; its Verification.
    The first segment is given where the chain starts (row 1, or the first row after an
    archived, sealed segment); the others start after the row before them."""
    from .verification import GENESIS_HASH, Verification, _Walk

    after, up_to, batch_size, start = task
    result = Verification()
    walk = _Walk(result, stop_at_first=False)
    with _connection.cursor() as cursor:
        if start is not None:
            walk.expected_id, walk.expected_prev = start
        else:
            cursor.execute(ROW_BEFORE_SQL, {"id": after})
            before = cursor.fetchone()
            walk.expected_id, walk.expected_prev = (
                (before[0] + 1, before[1]) if before else (1, GENESIS_HASH)
            )
        while after < up_to:
            cursor.execute(SEGMENT_SQL, {"after": after, "up_to": up_to, "limit": batch_size})
            rows = cursor.fetchall()
            if not rows:
                break
            walk.batch(rows)
            after = rows[-1][0]
    return result


def check_in_parallel(
    url: URL,
    head_id: int,
    batch_size: int,
    on_segment: Callable[[Any], None],
    workers: int | None = None,
    start: tuple[int, str] | None = None,
) -> None:
    """Check ids from `start` (the first id and the hash it follows; default row 1)
    to head_id in segments, handing each segment's Verification to `on_segment` in id
    order as it completes."""
    segment = SEGMENT
    first_id = start[0] if start is not None else 1
    tasks = [
        (after, min(after + segment, head_id), batch_size, start if after == first_id - 1 else None)
        for after in range(first_id - 1, head_id, segment)
    ]
    # Spawned, not forked: a fork copies locks other threads (a mail server, a log
    # handler) may hold at that instant, and the child would wait on them for ever.
    context = multiprocessing.get_context("spawn")
    with context.Pool(
        workers or worker_count(), initializer=_open, initargs=(libpq_url(url),)
    ) as pool:
        for partial in pool.imap(check_segment, tasks):
            on_segment(partial)
