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
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from ..extensions import db
from ..storage import NewFile
from . import copy_export
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


def write_csv(plan: Plan, out: NewFile, zone: str, progress: Progress, expected: int = 0) -> int:
    """Write the BOM, the header row and every row of `plan` to `out`; the row count.
    `expected` (the count taken before, if any) lets a large export on PostgreSQL be
    copied by two backends at once."""
    out.write(BOM)
    out.write(header_line(plan))
    if db.session.get_bind().dialect.name == "postgresql":
        return _copy_rows(plan, out, zone, progress, expected)
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


def _copy_rows(plan: Plan, out: NewFile, zone: str, progress: Progress, expected: int = 0) -> int:
    values = plan.statement.with_only_columns(*(c.expr for c in plan.columns))
    formats = [c.format.sql for c in plan.columns]
    return copy_export.copy_rows(values, formats, out, zone, _Throttle(progress), expected)
