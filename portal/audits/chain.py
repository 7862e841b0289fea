"""The hash chain's one canonical serialisation, and the rows it is computed from.

`canonical()` is the only place that turns a row into the bytes its hash covers:
record() calls it on the values it is about to insert, verification on the values it
reads back. It writes exactly what `json.dumps(body, sort_keys=True,
separators=(",", ":"), ensure_ascii=False)` writes for the row as a dict, but assembled
from a fixed template, which is several times faster and matters when ten million rows
are checked. The stored `data` JSON reads back as a dict equal to the one inserted
(plain() keeps it free of floats, tuples and non-text keys), so its canonical text
after the round trip is the one record() hashed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Select, Text, cast, select

from ..extensions import db
from ..timeutil import iso_utc
from .json_column import encode_data
from .models import AuditEvent

GENESIS_HASH = "0" * 64

# The columns a hash covers, in the order canonical() takes them, then the stored hash.
HASHED_COLUMNS = (
    AuditEvent.id,
    AuditEvent.created_at,
    AuditEvent.actor_id,
    AuditEvent.actor_label,
    AuditEvent.ip,
    AuditEvent.user_agent,
    AuditEvent.action,
    AuditEvent.target_type,
    AuditEvent.target_id,
    AuditEvent.data,
    AuditEvent.prev_hash,
)
ROW_COLUMNS = (*HASHED_COLUMNS, AuditEvent.hash)

_string = json.encoder.encode_basestring  # what ensure_ascii=False writes for a str


def _time(value: datetime) -> str:
    """timeutil.iso_utc's text for a time canonical() does not write itself
    (an aware one, or before the year 1000)."""
    return iso_utc(value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value)


def canonical(row: Sequence[Any]) -> bytes:
    """The bytes a row's hash covers. `row` holds the values of HASHED_COLUMNS in that
    order (a stored row may carry its hash after them), `data` as the dict stored."""
    return canonical_stored(row, encode_data(row[9]))


def canonical_stored(row: Sequence[Any], data_text: str) -> bytes:
    """canonical() with `data` given as its canonical text: the text the column stores
    (json_column.CanonicalJSON), which a stored row carries as it is read.

    Every field but the hash itself, keys sorted, UTC ISO time with microseconds,
    compact separators, UTF-8: exactly what `json.dumps(row_as_dict, sort_keys=True,
    separators=(",", ":"), ensure_ascii=False)` writes, built from a fixed template.
    """
    # Indexed, not unpacked: a stored row carries its hash after these eleven values.
    # Inlined rather than helper calls: this runs ten million times in a verification.
    # action, actor_label and prev_hash are NOT NULL columns; the others may be null.
    q, created_at = _string, row[1]
    actor_id, ip, agent, target_type, target_id = row[2], row[4], row[5], row[7], row[8]
    if created_at.tzinfo is None and created_at.year >= 1000:
        time = created_at.isoformat()
        time = f"{time}Z" if created_at.microsecond else f"{time}.000000Z"
    else:
        time = _time(created_at)
    return (
        f'{{"action":{q(row[6])},'
        f'"actor_id":{"null" if actor_id is None else int(actor_id)},'
        f'"actor_label":{q(row[3])},"created_at":"{time}","data":{data_text},'
        f'"id":{int(row[0])},"ip":{"null" if ip is None else q(ip)},'
        f'"prev_hash":{q(row[10])},'
        f'"target_id":{"null" if target_id is None else q(target_id)},'
        f'"target_type":{"null" if target_type is None else q(target_type)},'
        f'"user_agent":{"null" if agent is None else q(agent)}}}'
    ).encode()


def row_hash(row: Sequence[Any]) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()


def event_values(event: AuditEvent) -> tuple[Any, ...]:
    """An ORM event's values in HASHED_COLUMNS order."""
    return tuple(getattr(event, column.key) for column in HASHED_COLUMNS)


def plain(value: Any) -> Any:
    """JSON-safe, float-free values, so stored data reads back equal and hashes the same:
    times become UTC ISO text, tuples lists, sets sorted lists, anything else its text."""
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, bool | int | str) or value is None:
        return value
    return str(value)


# What verification reads: `data` as the text stored, so the fast path hashes it as it is.
STORED_COLUMNS = tuple(
    cast(column, Text).label("data") if column is AuditEvent.data else column
    for column in ROW_COLUMNS
)


def stored_data(text: str | None) -> Any:
    """A stored row's data text as the value record() wrote."""
    return None if text is None else json.loads(text)


def rows_after(after_id: int, up_to_id: int, limit: int) -> Select[Any]:
    """One batch of the chain in id order, as plain column tuples (no ORM objects) with
    `data` as its stored text."""
    return (
        select(*STORED_COLUMNS)
        .where(AuditEvent.id > after_id, AuditEvent.id <= up_to_id)
        .order_by(AuditEvent.id)
        .limit(limit)
    )


def read_batch(after_id: int, up_to_id: int, limit: int) -> list[Any]:
    """One batch of stored rows, in the session's transaction.

    On PostgreSQL the rows come straight from the driver's cursor: psycopg already gives
    ints, naive datetimes and text, and skipping SQLAlchemy's row objects triples the
    rate. SQLite keeps its times as text, which SQLAlchemy's result turns into datetimes.
    """
    statement = rows_after(after_id, up_to_id, limit)
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        return list(connection.execute(statement).all())
    compiled = statement.compile(dialect=connection.dialect)
    cursor = connection.connection.cursor()
    try:
        cursor.execute(compiled.string, compiled.params)
        return cursor.fetchall()
    finally:
        cursor.close()
