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
from collections.abc import Callable, Sequence
from typing import IO, Any

import psycopg
from psycopg import sql
from sqlalchemy import Column, Select, UnaryExpression, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import (
    ColumnElement,
    Label,
    _label_reference,
    _textual_label_reference,
)

from ..database import libpq_url
from ..extensions import db
from ..storage import NewFile

# COPY's rows are written to the file in blocks of about this size.
BLOCK_BYTES = 1 << 20
# Below this many rows a second backend costs more to start than it saves.
SPLIT_FROM_ROWS = 200_000
# Each call gets the rows written so far; it may raise to stop the export.
Report = Callable[[int], None]
# A value's SQL expression made into its cell's (columns.Format.sql).
CellFormat = Callable[[ColumnElement[Any]], ColumnElement[Any]]


def copy_rows(
    statement: Select[Any],
    formats: Sequence[CellFormat],
    out: NewFile,
    zone: str,
    report: Report,
    expected: int,
) -> int:
    """Write `statement`'s rows to `out` as CSV, each selected value made a cell by its
    format in SQL; the row count. `expected` is the count taken before, which decides on
    the split."""
    bind = db.session.get_bind()
    key = _primary_key_order(statement)
    # A bind that is a connection (a caller's open transaction, as in the test suite)
    # holds rows other connections cannot see: one stream, on it.
    if key is None or expected < SPLIT_FROM_ROWS or not isinstance(bind, Engine):
        raw: Any = db.session.connection().connection.driver_connection
        return _copy_in_transaction(raw, formatted(statement, formats), out, zone, report)
    return _copy_split(bind, statement, formats, key, out, zone, report, expected)


def formatted(statement: Select[Any], formats: Sequence[CellFormat]) -> Select[Any]:
    """`statement` with its values made cells, formatted after the rows are sorted.

    Formatting in the sorted query itself would make PostgreSQL sort the formatted text,
    half as wide again as the values; so the list is sorted as it is, in a subquery that
    also carries its sort keys, and the cells are made from that subquery's rows. The
    outer ORDER BY names the same keys, so the order is the planner's to keep, not luck
    (the subquery's order satisfies it: no second sort runs)."""
    values = [_unlabelled(column) for column in statement.selected_columns]
    sort_keys = [_sort_key(clause) for clause in statement._order_by_clauses]
    keys = [key for key in sort_keys if key is not None]
    if len(keys) < len(sort_keys) or statement._distinct:
        # A sort this cannot take apart: the cells are made in the one query.
        made = zip(formats, values, strict=True)
        return statement.with_only_columns(
            *(fmt(v).label(f"c{i}") for i, (fmt, v) in enumerate(made))
        )
    listed = statement.with_only_columns(
        *(value.label(f"v{i}") for i, value in enumerate(values)),
        *(expr.label(f"k{i}") for i, (expr, _) in enumerate(keys)),
    ).subquery("listed")
    order = [_with_modifiers(listed.c[f"k{i}"], mods) for i, (_, mods) in enumerate(keys)]
    cells = (fmt(listed.c[f"v{i}"]).label(f"c{i}") for i, fmt in enumerate(formats))
    return select(*cells).order_by(*order)


_MODIFIERS = {
    operators.asc_op: lambda e: e.asc(),
    operators.desc_op: lambda e: e.desc(),
    operators.nulls_first_op: lambda e: e.nulls_first(),
    operators.nulls_last_op: lambda e: e.nulls_last(),
}


def _unlabelled(column: Any) -> Any:
    return column.element if isinstance(column, Label) else column


def _sort_key(clause: Any) -> tuple[ColumnElement[Any], list[Any]] | None:
    """An ORDER BY term as (expression, its modifiers from the outside in), or None
    when it is something else (a label reference, text)."""
    modifiers = []
    while True:
        if isinstance(clause, _label_reference):  # order_by(a_label) or a_label.desc()
            clause = clause.element
        elif isinstance(clause, UnaryExpression) and clause.modifier in _MODIFIERS:
            modifiers.append(clause.modifier)
            clause = clause.element
        else:
            break
    if isinstance(clause, _textual_label_reference):  # order_by("name")
        return None
    clause = _unlabelled(clause)
    return (clause, modifiers) if isinstance(clause, ColumnElement) else None


def _with_modifiers(expr: Any, modifiers: list[Any]) -> Any:
    for modifier in reversed(modifiers):
        expr = _MODIFIERS[modifier](expr)
    return expr


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


def _prepare_session(cursor: Any, zone: str) -> list[Any]:
    """The reader's zone for this transaction's times, and JIT off; the previous values,
    to put back with `_apply`."""
    previous = cursor.execute(
        "SELECT current_setting('TimeZone'), current_setting('jit')"
    ).fetchone()
    # JIT compiling this wide projection costs seconds and wins less than it costs.
    _apply(cursor, [zone, "off"])
    return list(previous)


def _apply(cursor: Any, values: list[Any]) -> None:
    cursor.execute("SELECT set_config('TimeZone', %s, true), set_config('jit', %s, true)", values)


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
        previous = _prepare_session(cursor, zone)
        try:
            return _stream(cursor, _compiled(statement), out, report)
        finally:
            _apply(cursor, previous)


def _copy_split(
    engine: Engine,
    statement: Select[Any],
    formats: Sequence[CellFormat],
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
            return _copy_in_transaction(first, formatted(statement, formats), out, zone, report)
        low = _compiled(formatted(statement.where(column < bound), formats))
        high = _compiled(formatted(statement.where(column >= bound), formats))
        head, tail = (high, low) if descending else (low, high)
        written = [0, 0]
        failure: list[BaseException] = []

        def copy_tail() -> None:
            try:
                with second.cursor() as cursor:
                    _prepare_session(cursor, zone)
                    written[1] = _stream(cursor, tail, spool, lambda n: written.__setitem__(1, n))
            except BaseException as exc:  # handed to the main thread, raised there
                failure.append(exc)

        worker = threading.Thread(target=copy_tail, name="export-copy", daemon=True)
        worker.start()
        try:
            with first.cursor() as cursor:
                _prepare_session(cursor, zone)
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
