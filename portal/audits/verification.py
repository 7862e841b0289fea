"""Walking the chain and naming what breaks it (DESIGN §6).

The walk reads plain column tuples in large keyset batches (no ORM objects, no cursor
held across commits, so a job may commit its progress between batches) and recomputes
each row's hash with chain.canonical(), the function record() used. What it can name:

- edited: a row's contents no longer match its hash;
- out-of-order: a row is intact but stands where another was written (its hash holds
  for a neighbouring id, its link points at a neighbour);
- deleted: ids are missing before a row (ids are given one after the other);
- broken-link: a row does not follow the one before it although both are intact (the
  rows before it were changed and their hashes recomputed);
- truncated, rewritten: found only with checkpoints taken earlier (checkpoints.py),
  since a chain cut short, or recomputed up to its head, is still a valid chain.

Once retention has archived the oldest rows (portal/retention/audit_segment.py), the walk
starts at the first remaining row, after the last hash the segment's seal recorded.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select

from ..extensions import db
from .chain import GENESIS_HASH, canonical, canonical_stored, read_batch, stored_data
from .models import AuditEvent

BATCH = 50_000
# How far from its place a moved row is looked for (a swap of neighbours, a shuffled run).
REORDER_WINDOW = 16
ProgressCallback = Callable[[int, int], None]
# The event retention appends before it deletes a segment of the oldest rows.
SEAL_ACTION = "audit.sealed"


@dataclass
class Problem:
    event_id: int
    kind: str  # edited | out-of-order | deleted | broken-link | truncated | rewritten
    detail: str

    def __str__(self) -> str:
        return f"row {self.event_id}: {self.kind}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Verification:
    checked: int = 0
    total: int = 0
    last_id: int | None = None
    last_hash: str | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return f"OK: {self.checked} events, chain intact (last id {self.last_id})."
        kinds: dict[str, int] = {}
        for problem in self.problems:
            kinds[problem.kind] = kinds.get(problem.kind, 0) + 1
        named = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
        return f"BROKEN: {self.checked} events checked, {len(self.problems)} problems ({named})."


@dataclass(frozen=True)
class Mark:
    """What a checkpoint saw: `event_count` events, the newest `last_id` with `last_hash`."""

    event_count: int
    last_id: int
    last_hash: str
    at: str = ""


class _Stop(Exception):
    """The first problem is all that was asked for."""


def chain_head() -> tuple[int, int]:
    """(first id, last id) of the chain now; (0, 0) when it is empty."""
    first, last = db.session.execute(select(func.min(AuditEvent.id), func.max(AuditEvent.id))).one()
    return (first or 0, last or 0)


@dataclass(frozen=True)
class Start:
    """Where the walk begins: the first id and the hash its row must follow."""

    first_id: int
    prev_hash: str
    problem: Problem | None = None


def chain_start(first_id: int) -> Start:
    """Row 1 after the genesis hash; or, when the oldest rows were archived, the first
    remaining row after the last hash of the newest seal whose segment ends just before it.
    Two queries, only for a chain that does not start at row 1."""
    if first_id <= 1:
        return Start(1, GENESIS_HASH)
    first_prev = db.session.scalar(select(AuditEvent.prev_hash).where(AuditEvent.id == first_id))
    seals = db.session.execute(
        select(AuditEvent.id, AuditEvent.data)
        .where(AuditEvent.action == SEAL_ACTION)
        .order_by(AuditEvent.id.desc())
    )
    for seal_id, data in seals:
        if isinstance(data, dict) and data.get("last_id") == first_id - 1:
            if data.get("last_hash") == first_prev:
                return Start(first_id, first_prev)
            detail = (
                f"does not follow the archived rows {data.get('first_id')}..{first_id - 1} "
                f"that row {seal_id} sealed: its previous hash is not the sealed last hash"
            )
            return Start(first_id, first_prev, Problem(first_id, "broken-link", detail))
    rows = "row 1 was" if first_id == 2 else f"rows 1..{first_id - 1} were"
    detail = f"{rows} removed without a seal (rows before the first remaining row)"
    return Start(first_id, first_prev or GENESIS_HASH, Problem(first_id, "deleted", detail))


def _written_as(values: tuple[Any, ...], stored_hash: str) -> int | None:
    """The nearby id for which an otherwise intact row's hash holds: where it was written."""
    event_id = values[0]
    for offset in range(1, REORDER_WINDOW + 1):
        for candidate in (event_id - offset, event_id + offset):
            if candidate > 0:
                moved = (candidate, *values[1:])
                if hashlib.sha256(canonical(moved)).hexdigest() == stored_hash:
                    return candidate
    return None


class _Walk:
    """The state carried from one row to the next."""

    def __init__(self, result: Verification, stop_at_first: bool) -> None:
        self.result = result
        self.stop_at_first = stop_at_first
        self.expected_id = 1
        self.expected_prev = GENESIS_HASH
        self.previous_moved = False

    def problem(self, event_id: int, kind: str, detail: str) -> None:
        self.result.problems.append(Problem(event_id, kind, detail))
        if self.stop_at_first:
            raise _Stop

    def batch(self, rows: list[Any]) -> None:
        """The hot loop: one canonical form and one SHA-256 per row; anything more only
        for a row that fails."""
        sha256 = hashlib.sha256
        expected_id, expected_prev = self.expected_id, self.expected_prev
        for row in rows:
            event_id, prev_hash, stored = row[0], row[10], row[11]
            # The stored data text is the canonical one (json_column), hashed as it is.
            intact = sha256(canonical_stored(row, row[9])).hexdigest() == stored
            if not (intact and event_id == expected_id and prev_hash == expected_prev):
                values = (*row[:9], stored_data(row[9]), row[10])
                # A row written before the column stored canonical text (or any text
                # that reads as the same value) is judged on its value.
                intact = intact or sha256(canonical(values)).hexdigest() == stored
                self.expected_id, self.expected_prev = expected_id, expected_prev
                if intact and event_id == expected_id and prev_hash == expected_prev:
                    self.previous_moved = False
                else:
                    self._examine(values, stored, intact)
            else:
                self.previous_moved = False
            # Go on from what the row claims, so one edit is reported once.
            expected_id, expected_prev = event_id + 1, stored
        self.expected_id, self.expected_prev = expected_id, expected_prev
        self.result.checked += len(rows)
        if rows:
            self.result.last_id, self.result.last_hash = rows[-1][0], rows[-1][11]

    def _examine(self, values: tuple[Any, ...], stored: str, intact: bool) -> None:
        event_id, prev_hash = values[0], values[10]
        moved = False
        if not intact:
            written_as = _written_as(values, stored)
            moved = written_as is not None
            if moved:
                self.problem(
                    event_id,
                    "out-of-order",
                    f"this row was written as row {written_as}: rows were reordered",
                )
            else:
                self.problem(event_id, "edited", "its contents no longer match its hash")
        if event_id != self.expected_id:
            first, last = self.expected_id, event_id - 1
            rows = f"row {first} was" if first == last else f"rows {first}..{last} were"
            self.problem(event_id, "deleted", f"{rows} deleted before this row")
        elif prev_hash != self.expected_prev and not (moved or self.previous_moved):
            self.problem(
                event_id,
                "broken-link",
                f"does not follow row {event_id - 1}: that row was changed and its hash "
                "recomputed (the chain was rewritten up to it)",
            )
        self.previous_moved = moved


def verify(
    progress: ProgressCallback | None = None,
    stop_at_first: bool = False,
    checkpoints: Iterable[Mark] = (),
    batch_size: int = BATCH,
    workers: int | None = None,
) -> Verification:
    """Walk the chain from its first row to the head it has now and name every row that
    breaks it, then hold it against `checkpoints` (the truncated tail or the rewritten
    chain a chain alone cannot show). `progress(checked, total)` is called as it goes;
    total is the number of ids up to the head (a deleted row still counts).

    `workers`: processes that check segments side by side (PostgreSQL only; None: as
    many as there are cores once the chain is large, 1: this process alone)."""
    from . import parallel
    from .checkpoints import compare

    first_id, head_id = chain_head()
    start = chain_start(first_id) if head_id else Start(1, GENESIS_HASH)
    result = Verification(total=max(0, head_id - start.first_id + 1))
    walk = _Walk(result, stop_at_first)
    walk.expected_id, walk.expected_prev = start.first_id, start.prev_hash
    # Checkpoints of rows archived since are proved with the archive (verify --archive).
    marks = [mark for mark in checkpoints if mark.last_id >= start.first_id]
    bind = db.session.get_bind()
    if workers is None:
        large = head_id >= parallel.PARALLEL_FROM
        workers = parallel.worker_count() if large else 1
    # A batch holds tens of thousands of fresh dicts: the cycle collector, triggered by
    # every few hundred of them, would walk them all again and again (it doubled the
    # time). The rows hold no cycles; plain reference counting frees them.
    collecting = gc.isenabled()
    gc.disable()
    try:
        if start.problem is not None:
            walk.problem(start.problem.event_id, start.problem.kind, start.problem.detail)
        if workers > 1 and bind.dialect.name == "postgresql":
            # The workers read what is committed: rows this transaction added are not
            # theirs to see (and nothing here commits the caller's transaction).
            def merge(partial: Verification) -> None:
                _merge(result, partial)
                if progress is not None:
                    progress(result.checked, result.total)
                if stop_at_first and result.problems:
                    del result.problems[1:]
                    raise _Stop  # leaving the pool ends the segments still running

            parallel.check_in_parallel(
                bind.engine.url,
                head_id,
                batch_size,
                merge,
                workers,
                start=(start.first_id, start.prev_hash),
            )
        else:
            last_id = start.first_id - 1
            while last_id < head_id:
                rows = read_batch(last_id, head_id, batch_size)
                if not rows:
                    break
                walk.batch(rows)
                last_id = rows[-1][0]
                if progress is not None:
                    progress(result.checked, result.total)
        for problem in compare(marks, head_id):
            walk.problem(problem.event_id, problem.kind, problem.detail)
    except _Stop:
        pass
    finally:
        if collecting:
            gc.enable()
    return result


def _merge(result: Verification, partial: Verification) -> None:
    """Add one segment's findings. A segment that starts just after a moved row cannot
    know it: its first row's broken link is the reorder already named."""
    problems = partial.problems
    if (
        problems
        and result.problems
        and problems[0].kind == "broken-link"
        and result.problems[-1].kind == "out-of-order"
        and problems[0].event_id == result.last_id + 1
        and result.problems[-1].event_id == result.last_id
    ):
        problems = problems[1:]
    result.problems.extend(problems)
    result.checked += partial.checked
    if partial.last_id is not None:
        result.last_id, result.last_hash = partial.last_id, partial.last_hash
