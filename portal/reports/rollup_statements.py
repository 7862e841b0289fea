"""Keeping the daily ticket counts (rollups.py) through bulk statements sent through the
session, which no flush sees: the tickets demo's inserts, retention's deletes, an UPDATE
of ticket columns. Each is turned into additions to the counts in its own transaction;
SQL sent around the session is not seen (rebuild after it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import ORMExecuteState

from ..tickets.models import Ticket
from ..timeutil import utcnow
from .rollups import TRACKED, Deltas, counted_ids, queue_behind_the_chain, write

log = logging.getLogger(__name__)


def _statement_rows(state: ORMExecuteState) -> list[dict[str, Any]]:
    """The rows an INSERT or UPDATE was given: executemany parameters, or its VALUES."""
    params = state.parameters
    if isinstance(params, list | tuple) and params:
        return [dict(row) for row in params]
    stmt: Any = state.statement
    multi = getattr(stmt, "_multi_values", ())
    if multi:
        return [_named(row) for row in multi[0]]
    values = getattr(stmt, "_values", None)
    if values:
        row = _named(values)
        if isinstance(params, Mapping):
            row.update(params)
        return [row]
    return [dict(params)] if isinstance(params, Mapping) and params else []


def _named(values: Mapping[Any, Any]) -> dict[str, Any]:
    named = {}
    for key, value in values.items():
        name = key if isinstance(key, str) else getattr(key, "key", str(key))
        named[name] = getattr(value, "value", value)  # a bound parameter's value
    return named


def _with_defaults(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row inserted without some tracked column gets the column's default (created_at
    is taken as now: the insert's own default falls within the same moment)."""
    columns = Ticket.__table__.c
    facts = {}
    for name in TRACKED:
        if name in row:
            facts[name] = row[name]
        elif name == "created_at":
            facts[name] = utcnow()
        else:
            default = columns[name].default
            facts[name] = getattr(default, "arg", None) if default is not None else None
    return facts


def _plain(facts: Mapping[str, Any]) -> bool:
    """Values counted in Python: times, ids and text, not SQL expressions."""
    times = (facts["created_at"], facts["resolved_at"], facts["closed_at"])
    return (
        isinstance(times[0], datetime)
        and all(t is None or isinstance(t, datetime) for t in times[1:])
        and (facts["team_id"] is None or isinstance(facts["team_id"], int))
        and isinstance(facts["priority"], str)
        and isinstance(facts["type"], str)
    )


def _bulk_insert(state: ORMExecuteState) -> Any:
    rows = _statement_rows(state)
    result = state.invoke_statement()
    connection = state.session.connection()
    if rows and all(row.get("id") is not None for row in rows):
        # Read back what the database stored: defaults and all.
        write(connection, counted_ids(connection, [row["id"] for row in rows], +1))
        return result
    deltas, uncounted = Deltas(), not rows  # INSERT … SELECT gives no rows to read
    for row in rows:
        facts = _with_defaults(row)
        if _plain(facts):
            deltas.add(facts, +1)
        else:
            uncounted = True
    write(connection, deltas)
    if uncounted:
        log.warning(
            "tickets inserted by SQL the daily counts cannot read (no ids, or values that"
            " are SQL expressions): run `flask reports rebuild-rollups` after it"
        )
    return result


def _bulk_update(state: ORMExecuteState) -> Any:
    rows = _statement_rows(state)
    if rows and not any(name in row for row in rows for name in TRACKED):
        return None  # no count depends on what it sets
    connection = state.session.connection()
    where = getattr(state.statement, "whereclause", None)
    if rows and where is None and all("id" in row for row in rows):
        ids = [row["id"] for row in rows]  # an update by primary key, one row each
    else:
        ids = _locked_ids(connection, where)
    write(connection, counted_ids(connection, ids, -1))
    result = state.invoke_statement()
    write(connection, counted_ids(connection, ids, +1))
    return result


def bulk_statement(state: ORMExecuteState) -> Any:
    if not (state.is_insert or state.is_update or state.is_delete):
        return None
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) != Ticket.__tablename__:
        return None
    if state.is_insert:
        return _bulk_insert(state)
    if state.is_update:
        return _bulk_update(state)
    connection = state.session.connection()
    # Read before the rows go, in the same transaction: if the delete then fails or is
    # rolled back (retention checks how many it removed), so is this.
    ids = _locked_ids(connection, getattr(state.statement, "whereclause", None))
    write(connection, counted_ids(connection, ids, -1))
    return None


def _locked_ids(connection: Connection, where: Any) -> list[int]:
    """The ids of the tickets a bulk statement will touch, their rows locked until the
    transaction ends (behind the chain's lock: one order for every writer)."""
    queue_behind_the_chain(connection)
    stmt = select(Ticket.__table__.c.id).with_for_update()
    if where is not None:
        stmt = stmt.where(where)
    return list(connection.execute(stmt).scalars())
