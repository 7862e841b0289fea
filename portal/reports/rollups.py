"""The daily ticket counts (TicketDayCount): kept in the transaction of every ticket
change, and rebuilt from the tickets by `rebuild()` (`flask reports rebuild-rollups`).

Keeping them: a session listener turns each flushed ticket change into additions to
the counts of the (day, team, priority, type) it leaves and the one it joins, and writes
them, grouped per flush, as upserts that add to the stored counts. The ticket and its
counts therefore commit or roll back together, whichever code changed the ticket: the
services, a factory, or a bulk statement through the session (the tickets demo's
inserts, retention's deletes: rollup_statements.py). Not seen: SQL sent around the
session (raw connections, `text()`, `psql`, the benchmarks' seeding), and an INSERT …
SELECT into tickets (a warning is logged): rebuild after those.

Counts that fall back to 0/0 keep their row; they add nothing to any sum.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    case,
    cast,
    delete,
    event,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    type_coerce,
    union_all,
)
from sqlalchemy import inspect as inspect_object
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ..audits.services import CHAIN_LOCK_KEY
from ..extensions import db
from ..tickets.models import Ticket
from .rollup_models import NO_TEAM, TicketDayCount

# The ticket columns a count depends on; a change to any other column changes no count.
TRACKED = ("created_at", "resolved_at", "closed_at", "team_id", "priority", "type")
KEY = ("day", "team_id", "priority", "type")
# Rows per upsert statement: well under SQLite's bound-parameter limit.
UPSERT_BATCH = 1000
# Ids per `IN (…)` when a bulk statement's tickets are read back.
ID_BATCH = 500

Key = tuple[date, int, str, str]
_PENDING = "portal.rollup_deltas"


# -- what one ticket counts for ---------------------------------------------------------------


def ended_at(
    created_at: datetime, resolved_at: datetime | None, closed_at: datetime | None
) -> datetime | None:
    """When the ticket stopped being open: the earlier of resolved and closed, not before it
    was created (so no moment sees it ended but not yet created); None while open."""
    ends = [t for t in (resolved_at, closed_at) if t is not None]
    return max(min(ends), created_at) if ends else None


def _contributions(facts: Mapping[str, Any]) -> list[tuple[Key, int, int]]:
    created = facts["created_at"]
    team, priority, type_ = facts["team_id"], facts["priority"], facts["type"]
    team = NO_TEAM if team is None else team
    counted = [((created.date(), team, priority, type_), 1, 0)]
    ended = ended_at(created, facts["resolved_at"], facts["closed_at"])
    if ended is not None:
        counted.append(((ended.date(), team, priority, type_), 0, 1))
    return counted


class Deltas:
    """Additions to the counts, summed per key before anything is written."""

    def __init__(self) -> None:
        self.by_key: dict[Key, list[int]] = defaultdict(lambda: [0, 0])

    def add(self, facts: Mapping[str, Any], sign: int) -> None:
        for key, created, ended in _contributions(facts):
            self.add_counts(key, sign * created, sign * ended)

    def add_counts(self, key: Key, created: int, ended: int) -> None:
        pair = self.by_key[key]
        pair[0] += created
        pair[1] += ended

    def merge(self, other: Deltas) -> None:
        for key, (created, ended) in other.by_key.items():
            self.add_counts(key, created, ended)

    def rows(self) -> list[dict[str, Any]]:
        """The non-zero additions, in key order (concurrent writers then lock the rows
        they share in the same order, so they wait for each other, never deadlock)."""
        return [
            dict(zip(KEY, key, strict=True), created=created, ended=ended)
            for key, (created, ended) in sorted(self.by_key.items())
            if created or ended
        ]


def write(connection: Connection, deltas: Deltas) -> None:
    """Add `deltas` to the stored counts: one upsert per batch of keys."""
    rows = deltas.rows()
    if not rows:
        return
    queue_behind_the_chain(connection)
    table = TicketDayCount.__table__
    dialect = connection.dialect.name
    if dialect == "postgresql":
        make_insert: Any = postgresql.insert
    elif dialect == "sqlite":
        make_insert = sqlite.insert
    else:  # pragma: no cover (the portal runs on these two)
        raise NotImplementedError(f"ticket rollups on {dialect}")
    for start in range(0, len(rows), UPSERT_BATCH):
        stmt = make_insert(table).values(rows[start : start + UPSERT_BATCH])
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c[name] for name in KEY],
            set_={
                "created": table.c.created + stmt.excluded.created,
                "ended": table.c.ended + stmt.excluded.ended,
            },
        )
        connection.execute(stmt)


# -- the same counts in SQL -------------------------------------------------------------------


def day_of(value: ColumnElement[Any], dialect: str) -> ColumnElement[date]:
    """The UTC calendar day of a stored (naive UTC) time."""
    if dialect == "sqlite":
        # SQLite keeps dates as 'YYYY-MM-DD' text, which date() returns.
        return type_coerce(func.date(value), Date)
    return cast(value, Date)


def ended_expression(table: Any = None) -> ColumnElement[datetime]:
    """`ended_at()` in SQL (NULL while open)."""
    c = (table if table is not None else Ticket.__table__).c
    earlier = case(
        (c.resolved_at.is_(None), c.closed_at),
        (or_(c.closed_at.is_(None), c.resolved_at <= c.closed_at), c.resolved_at),
        else_=c.closed_at,
    )
    return case((earlier < c.created_at, c.created_at), else_=earlier)


def counts_select(dialect: str, where: ColumnElement[bool] | None = None) -> Any:
    """(day, team_id, priority, type, created, ended) summed over the tickets (those
    matching `where`): what the kept counts hold for them."""
    c = Ticket.__table__.c
    team = func.coalesce(c.team_id, NO_TEAM)
    one, zero = literal_column("1", Integer), literal_column("0", Integer)
    created_side = select(
        day_of(c.created_at, dialect).label("day"),
        team.label("team_id"),
        c.priority,
        c.type,
        one.label("created"),
        zero.label("ended"),
    )
    ended_side = select(
        day_of(ended_expression(), dialect), team, c.priority, c.type, zero, one
    ).where(or_(c.resolved_at.is_not(None), c.closed_at.is_not(None)))
    if where is not None:
        created_side, ended_side = created_side.where(where), ended_side.where(where)
    both = union_all(created_side, ended_side).subquery("counted")
    keys = [both.c[name] for name in KEY]
    return select(
        *keys,
        func.sum(both.c.created).label("created"),
        func.sum(both.c.ended).label("ended"),
    ).group_by(*keys)


def _counted(connection: Connection, where: ColumnElement[bool] | None, sign: int) -> Deltas:
    deltas = Deltas()
    for day, team, priority, type_, created, ended in connection.execute(
        counts_select(connection.dialect.name, where)
    ):
        if isinstance(day, str):  # pragma: no cover (type_coerce parses it on SQLite)
            day = date.fromisoformat(day)
        deltas.add_counts((day, team, priority, type_), sign * created, sign * ended)
    return deltas


def counted_ids(connection: Connection, ids: list[int], sign: int) -> Deltas:
    deltas = Deltas()
    for start in range(0, len(ids), ID_BATCH):
        chunk = ids[start : start + ID_BATCH]
        deltas.merge(_counted(connection, Ticket.__table__.c.id.in_(chunk), sign))
    return deltas


# -- keeping them: ORM flushes ----------------------------------------------------------------


def _facts_now(ticket: Ticket) -> dict[str, Any]:
    return {name: getattr(ticket, name) for name in TRACKED}


def _stored_facts(
    connection: Connection, ids: list[int], *, lock: bool = False
) -> dict[int, dict[str, Any]]:
    """The tracked values the database holds for these tickets; with `lock`, their rows
    locked until the transaction ends (a concurrent change of the same ticket waits, so
    what is taken away is what is there, not what this session loaded earlier)."""
    c = Ticket.__table__.c
    stmt = select(c.id, *(c[name] for name in TRACKED)).where(c.id.in_(ids))
    if lock:
        stmt = stmt.with_for_update()
    return {row.id: dict(row._mapping) for row in connection.execute(stmt)}


def queue_behind_the_chain(connection: Connection) -> None:
    """Take the audit chain's lock first. Ticket writes lock the audit chain (record()),
    the ticket's row and a shared count row; without one order for all three, a ticket
    created (row, then chain) and one resolved (chain, then row) can deadlock. Taking the
    lock again later in the transaction costs nothing."""
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK_KEY)))


def _changes_counts(ticket: Ticket) -> bool:
    attrs = inspect_object(ticket).attrs
    # A team given as the relationship reaches team_id only during the flush.
    names = (*TRACKED, "team")
    return any(attrs[name].history.has_changes() for name in names)


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    """What the flush takes away: the counts of changed and deleted tickets as the
    database holds them now, their rows locked (read before the flush writes)."""
    changed = [t.id for t in session.dirty if isinstance(t, Ticket) and _changes_counts(t)]
    gone = [t.id for t in session.deleted if isinstance(t, Ticket)]
    if not (changed or gone or any(isinstance(t, Ticket) for t in session.new)):
        return
    connection = session.connection()
    queue_behind_the_chain(connection)
    deltas = Deltas()
    if changed or gone:
        for facts in _stored_facts(connection, [*changed, *gone], lock=True).values():
            deltas.add(facts, -1)
    session.info[_PENDING] = (deltas, changed)


def _after_flush(session: Session, _context: Any) -> None:
    """What the flush adds: changed tickets as the database now holds them (another
    transaction's committed change to a column this one did not touch included), new
    ones as written; then every addition is written, inside the flush's transaction."""
    deltas, changed = session.info.pop(_PENDING, None) or (Deltas(), [])
    connection = session.connection()
    if changed:
        for facts in _stored_facts(connection, changed).values():
            deltas.add(facts, +1)
    for ticket in session.new:
        if isinstance(ticket, Ticket):
            deltas.add(_facts_now(ticket), +1)
    if deltas.by_key:
        write(connection, deltas)


def keep_rollups() -> None:
    """Listen on every ORM session (once per process) for the ticket changes it writes."""
    from .rollup_statements import bulk_statement

    listeners = (
        ("before_flush", _before_flush),
        ("after_flush", _after_flush),
        ("do_orm_execute", bulk_statement),
    )
    for name, listener in listeners:
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)


# -- rebuilding them --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rebuilt:
    rows_before: int
    rows: int
    tickets: int
    seconds: float


def rebuild(actor: Any = None) -> Rebuilt:
    """Recompute every count from the tickets, in one transaction, and record it."""
    from ..audits import record

    started = time.perf_counter()
    table = TicketDayCount.__table__
    session = db.session
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # Ticket changes wait (their upserts queue on the lock) until this commits: the
        # counts read below then hold every change committed before, none twice. The
        # chain's lock comes first, as for every ticket write (record() below needs it).
        queue_behind_the_chain(session.connection())
        session.execute(text("LOCK TABLE ticket_day_counts IN EXCLUSIVE MODE"))
    rows_before = session.scalar(select(func.count()).select_from(table)) or 0
    session.execute(delete(table))
    session.execute(insert(table).from_select([*KEY, "created", "ended"], counts_select(dialect)))
    rows = session.scalar(select(func.count()).select_from(table)) or 0
    tickets = session.scalar(select(func.coalesce(func.sum(table.c.created), 0))) or 0
    seconds = time.perf_counter() - started
    record(
        "reports.rollups_rebuilt",
        actor,
        None,
        table=table.name,
        rows_before=rows_before,
        rows=rows,
        tickets=int(tickets),
    )
    session.commit()
    return Rebuilt(rows_before, rows, int(tickets), seconds)


def stored_counts() -> dict[Key, tuple[int, int]]:
    """Every stored count by key (for checks and tests: 0/0 rows left out)."""
    t = TicketDayCount
    stmt = select(t.day, t.team_id, t.priority, t.type, t.created, t.ended)
    return {
        (day, team, priority, type_): (int(created), int(ended))
        for day, team, priority, type_, created, ended in db.session.execute(stmt)
        if created or ended
    }
