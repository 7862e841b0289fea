"""Writing an export's rows to its file as they are read, in batches, so memory stays
flat at any size and nothing caps the row count.

PostgreSQL streams the filtered query through COPY ... TO STDOUT with every cell
formatted in SQL (columns.Format.sql): no Python per row. Other databases (SQLite, the
embedded default) read the same query in batches through `yield_per` and format each
cell in Python. Both give the same bytes.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from ..extensions import db
from ..storage import NewFile
from .sources import Plan

# Excel reads a CSV as UTF-8 only when it starts with the byte-order mark.
BOM = "\ufeff".encode()
BATCH_ROWS = 5000
# How often a running export reports progress and looks for a cancel: often enough for a
# progress bar, rare enough to cost nothing next to the rows.
REPORT_EVERY_SECONDS = 0.5


class Cancelled(Exception):
    """Someone cancelled the export while it was being written."""


# Called with the rows written so far; raises Cancelled to stop the export.
Progress = Callable[[int], None]


def count_rows(plan: Plan) -> int:
    return (
        db.session.scalar(select(func.count()).select_from(plan.listed.order_by(None).subquery()))
        or 0
    )


def header_line(plan: Plan) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(plan.headers)
    return buffer.getvalue().encode()


def write_csv(plan: Plan, out: NewFile, zone: str, progress: Progress) -> int:
    """Write the BOM, the header row and every row of `plan` to `out`; the row count."""
    out.write(BOM)
    out.write(header_line(plan))
    if db.session.get_bind().dialect.name == "postgresql":
        return _copy_rows(plan, out, zone, progress)
    return _python_rows(plan, out, ZoneInfo(zone), progress)


class _Throttle:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.last = time.monotonic()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last >= REPORT_EVERY_SECONDS:
            self.last = now
            self.progress(done)


def _python_rows(plan: Plan, out: NewFile, zone: ZoneInfo, progress: Progress) -> int:
    formats = [column.format.py for column in plan.columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    report, done = _Throttle(progress), 0
    result = db.session.execute(plan.statement.execution_options(yield_per=BATCH_ROWS))
    for batch in result.partitions():
        writer.writerows(
            [fmt(value, zone) for fmt, value in zip(formats, row, strict=True)] for row in batch
        )
        out.write(buffer.getvalue().encode())
        buffer.seek(0)
        buffer.truncate()
        done += len(batch)
        report(done)
    return done


def _copy_rows(plan: Plan, out: NewFile, zone: str, progress: Progress) -> int:
    cells = [c.format.sql(c.expr).label(f"c{i}") for i, c in enumerate(plan.columns)]
    compiled = plan.statement.with_only_columns(*cells).compile(
        dialect=db.session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
    )
    raw: Any = db.session.connection().connection.driver_connection
    report, newlines = _Throttle(progress), 0
    with raw.cursor() as cursor:
        # Times are written in the reader's zone: the session's, for this transaction only,
        # put back afterwards (an inline export shares its transaction with the request).
        previous = cursor.execute(
            "SELECT current_setting('TimeZone'), current_setting('jit')"
        ).fetchone()
        # JIT compiling this wide projection costs seconds and wins less than it costs.
        cursor.execute(
            "SELECT set_config('TimeZone', %s, true), set_config('jit', 'off', true)", [zone]
        )
        try:
            with cursor.copy(
                f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv)", compiled.params
            ) as copy:
                for data in copy:
                    out.write(data)
                    # A row's text may hold line breaks, so this is an estimate until the end.
                    newlines += bytes(data).count(b"\n")
                    report(newlines)
            rows = cursor.rowcount
        finally:
            cursor.execute(
                "SELECT set_config('TimeZone', %s, true), set_config('jit', %s, true)",
                list(previous),
            )
    return rows
