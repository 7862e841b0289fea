"""PostgreSQL's side of an export: the filtered list streamed through
`COPY (…) TO STDOUT` with every cell formatted in SQL, no Python per row.

One backend formats and sends about 200,000 rows a second here, and formatting the
cells (zoned times, defused names) is most of its work. A large export whose list is in
primary-key order is therefore cut in two at its middle key and copied by two backends
at once, both reading one snapshot (`pg_export_snapshot`, as pg_dump does), so the
halves are the same rows a single COPY would give, in the same order: the first half
goes straight into the file, the second into a spool appended after it.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from typing import IO, Any

import psycopg
from psycopg import sql
from sqlalchemy import Column, Select, UnaryExpression
from sqlalchemy.engine import Engine
from sqlalchemy.sql import operators

from ..database import libpq_url
from ..extensions import db
from ..storage import NewFile

# COPY's rows are written to the file in blocks of about this size.
BLOCK_BYTES = 1 << 20
# Below this many rows a second backend costs more to start than it saves.
SPLIT_FROM_ROWS = 200_000
# Each call gets the rows written so far; it may raise to stop the export.
Report = Callable[[int], None]


def copy_rows(
    statement: Select[Any], out: NewFile, zone: str, report: Report, expected: int
) -> int:
    """Write `statement`'s rows (cells already formatted in SQL) to `out` as CSV; the
    row count. `expected` is the count taken before, which decides on the split."""
    bind = db.session.get_bind()
    key = _primary_key_order(statement)
    # A bind that is a connection (a caller's open transaction, as in the test suite)
    # holds rows other connections cannot see: one stream, on it.
    if key is None or expected < SPLIT_FROM_ROWS or not isinstance(bind, Engine):
        raw: Any = db.session.connection().connection.driver_connection
        return _copy_in_transaction(raw, statement, out, zone, report)
    return _copy_split(bind, statement, key, out, zone, report, expected)


def _primary_key_order(statement: Select[Any]) -> tuple[Column[Any], bool] | None:
    """(column, descending) when the statement's order starts with a one-column primary
    key, which makes "rows before the middle key" the first half of the list."""
    clauses = statement._order_by_clauses  # no public accessor for a Select's order
    if not clauses:
        return None
    first = clauses[0]
    descending = isinstance(first, UnaryExpression) and first.modifier is operators.desc_op
    column = first.element if isinstance(first, UnaryExpression) else first
    if not isinstance(column, Column) or not column.primary_key:
        return None
    table_key = column.table.primary_key.columns
    return (column, descending) if len(table_key) == 1 else None


def _compiled(statement: Select[Any]) -> Any:
    return statement.compile(
        dialect=db.session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
    )


def _set_zone(cursor: Any, zone: str) -> list[Any]:
    """The reader's zone for this transaction's times, JIT off; the previous values."""
    previous = cursor.execute(
        "SELECT current_setting('TimeZone'), current_setting('jit')"
    ).fetchone()
    # JIT compiling this wide projection costs seconds and wins less than it costs.
    cursor.execute(
        "SELECT set_config('TimeZone', %s, true), set_config('jit', 'off', true)", [zone]
    )
    return list(previous)


def _stream(cursor: Any, compiled: Any, sink: IO[bytes] | NewFile, tick: Report) -> int:
    """COPY the compiled statement's rows into `sink`; no app context needed (the second
    half runs in a thread of its own)."""
    done = 0
    with cursor.copy(f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv)", compiled.params) as copy:
        # libpq hands over one row per read: gather them and write (and hash) a block at
        # a time, looking at the clock once per block, not per row.
        block = bytearray()
        for data in copy:
            block += data
            done += 1
            if len(block) >= BLOCK_BYTES:
                sink.write(bytes(block))
                block.clear()
                tick(done)
        sink.write(bytes(block))
    return done


def _copy_in_transaction(
    raw: Any, statement: Select[Any], out: NewFile, zone: str, report: Report
) -> int:
    with raw.cursor() as cursor:
        # Set for this transaction only and put back afterwards: an inline export shares
        # its transaction with the request.
        previous = _set_zone(cursor, zone)
        try:
            return _stream(cursor, _compiled(statement), out, report)
        finally:
            cursor.execute(
                "SELECT set_config('TimeZone', %s, true), set_config('jit', %s, true)",
                previous,
            )


def _copy_split(
    engine: Engine,
    statement: Select[Any],
    key: tuple[Column[Any], bool],
    out: NewFile,
    zone: str,
    report: Report,
    expected: int,
) -> int:
    column, descending = key
    url = libpq_url(engine.url)
    with (
        psycopg.connect(url) as first,
        psycopg.connect(url) as second,
        tempfile.TemporaryFile() as spool,
    ):
        for conn in (first, second):
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        snapshot = first.execute("SELECT pg_export_snapshot()").fetchone()[0]  # type: ignore[index]
        second.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
        bound = _middle_key(first, statement, column, expected)
        if bound is None:  # fewer rows than counted: nothing worth splitting
            return _copy_in_transaction(first, statement, out, zone, report)
        low = _compiled(statement.where(column < bound))
        high = _compiled(statement.where(column >= bound))
        head, tail = (high, low) if descending else (low, high)
        written = [0, 0]
        failure: list[BaseException] = []

        def copy_tail() -> None:
            try:
                with second.cursor() as cursor:
                    _set_zone(cursor, zone)
                    written[1] = _stream(cursor, tail, spool, lambda n: written.__setitem__(1, n))
            except BaseException as exc:  # handed to the main thread, raised there
                failure.append(exc)

        worker = threading.Thread(target=copy_tail, name="export-copy", daemon=True)
        worker.start()
        try:
            with first.cursor() as cursor:
                _set_zone(cursor, zone)
                written[0] = _stream(cursor, head, out, lambda n: report(n + written[1]))
            while worker.is_alive():
                worker.join(timeout=0.5)
                report(written[0] + written[1])
        except BaseException:
            second.cancel_safe()  # a cancelled or failed export stops the other half at once
            worker.join()
            raise
        if failure:
            raise failure[0]
        spool.seek(0)
        while chunk := spool.read(BLOCK_BYTES):
            out.write(chunk)
        return written[0] + written[1]


def _middle_key(conn: Any, statement: Select[Any], column: Column[Any], expected: int) -> Any:
    compiled = _compiled(
        statement.with_only_columns(column).order_by(column).offset(expected // 2).limit(1)
    )
    row = conn.execute(compiled.string, compiled.params).fetchone()
    return None if row is None else row[0]
