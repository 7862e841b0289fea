"""Which rows a kind's expired record brings with it, and which records must stay.

A record goes with every row that depends on it through a foreign key with ON DELETE
CASCADE, however deep (a ticket's replies, changes, SLA events, attachments, its review
and the review's action items). A record another row still points at without cascade
(a ticket a finding was filed as, an action item's ticket) stays: removing it would break
that row. Both are read from the tables' foreign keys, so a new dependant table is
archived without a change here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Table, and_, exists, select

from ..extensions import db
from .kinds import Kind


@dataclass(frozen=True)
class Dependant:
    """Rows of `table` whose `columns` name a row of `parent` (any one of them)."""

    table: Table
    parent: Table
    columns: tuple[str, ...]


def root_table(kind: Kind) -> Table:
    return kind.model.__table__


def dependants(root: Table) -> list[Dependant]:
    """The tables cascading from `root`, parents before children."""
    found: list[Dependant] = []
    queue = [root]
    seen = {root.name}
    while queue:
        parent = queue.pop(0)
        for table in db.metadata.sorted_tables:
            columns = tuple(
                fk.parent.name
                for fk in table.foreign_keys
                if fk.column.table is parent and fk.ondelete == "CASCADE"
            )
            if columns and table.name not in seen:
                seen.add(table.name)
                found.append(Dependant(table, parent, columns))
                queue.append(table)
    return found


def _kept_because_referenced(root: Table) -> list[ColumnElement[bool]]:
    """A root row stays while a row points at it without cascade."""
    conditions = []
    for table in db.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table is root and fk.ondelete != "CASCADE":
                conditions.append(~exists().where(fk.parent == fk.column))
    return conditions


def expired(kind: Kind, cutoff: datetime) -> ColumnElement[bool]:
    """The kind's records past `cutoff` that may go (the dry run counts these)."""
    return and_(kind.expired(cutoff), *_kept_because_referenced(root_table(kind)))


def primary_key(table: Table) -> tuple[str, ...]:
    return tuple(column.name for column in table.primary_key.columns)


def expired_ids(kind: Kind, cutoff: datetime, after: int, limit: int) -> list[int]:
    root = root_table(kind)
    return list(
        db.session.scalars(
            select(root.c.id)
            .where(expired(kind, cutoff), root.c.id > after)
            .order_by(root.c.id)
            .limit(limit)
        )
    )
