"""The retention run: archive every record past its policy, read the archive back and
prove it, then delete what it holds in batches, and record `retention.archived` with the
manifest. Nothing is deleted unless the archive holds it.

Export files are not handled here: reports/tasks.py cleanup_exports expires them after
EXPORT_RETENTION_DAYS.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import Table, delete, select, tuple_

from .. import jobs, storage
from ..audits.services import record
from ..extensions import db
from ..timeutil import iso_utc, utcnow
from . import audit_segment, records
from .archive import ArchiveError, ArchiveWriter, manifest_bytes, read_back
from .kinds import KINDS, Kind
from .models import RetentionRun
from .policies import cutoff_for, policies

log = logging.getLogger(__name__)

BATCH = 500
AUDIT = "audit_events"
# Kinds archived row by row with their dependants; the audit trail goes in whole chain
# segments (audit_segment.py).
RECORD_KINDS = tuple(kind for kind in KINDS if kind.key != AUDIT)
ATTACHMENTS = "ticket_attachments"

PrimaryKey = tuple[Any, ...]


@dataclass
class _Batch:
    """One batch of a kind's records and every row they bring: deleted together."""

    kind: Kind
    cutoff: datetime
    rows: dict[str, list[PrimaryKey]] = field(default_factory=dict)
    stored_files: list[str] = field(default_factory=list)


def archive_folder(run: RetentionRun) -> Path:
    """A new folder under ARCHIVE_DIR named by the run's start and id (never one reused:
    a run id rolled back with its transaction may come again)."""
    root = Path(current_app.config["SETTINGS"].ARCHIVE_DIR)
    name = f"{run.started_at:%Y%m%dT%H%M%SZ}-run{run.id}"
    folder, copy = root / name, 1
    while folder.exists():
        copy += 1
        folder = root / f"{name}-{copy}"
    return folder


def _rows(table: Table, column_names: tuple[str, ...], values: list[Any]) -> list[dict[str, Any]]:
    columns = [table.c[name] for name in column_names]
    condition = columns[0].in_(values)
    for column in columns[1:]:
        condition = condition | column.in_(values)
    statement = select(table).where(condition).order_by(*table.primary_key.columns)
    return [dict(row._mapping) for row in db.session.execute(statement)]


def _archive_batch(writer: ArchiveWriter, kind: Kind, cutoff: datetime, ids: list[int]) -> _Batch:
    batch = _Batch(kind, cutoff)
    root = records.root_table(kind)
    found = {root.name: _rows(root, ("id",), ids)}
    for dependant in records.dependants(root):
        parents = [row["id"] for row in found.get(dependant.parent.name, [])]
        found[dependant.table.name] = (
            _rows(dependant.table, dependant.columns, parents) if parents else []
        )
    for table_name, rows in found.items():
        if not rows:
            continue
        table = db.metadata.tables[table_name]
        key = records.primary_key(table)
        writer.write(kind.key, table_name, rows)
        batch.rows[table_name] = [tuple(row[name] for name in key) for row in rows]
    for attachment in found.get(ATTACHMENTS, []):
        key = attachment["storage_key"]
        if storage.exists(key):
            with storage.open(key) as stream:
                writer.copy_file(Path(stream.name), key)
        batch.stored_files.append(key)
    return batch


def _archive_kind(writer: ArchiveWriter, kind: Kind, cutoff: datetime) -> list[_Batch]:
    batches, after = [], 0
    while ids := records.expired_ids(kind, cutoff, after, BATCH):
        batches.append(_archive_batch(writer, kind, cutoff, ids))
        after = ids[-1]
    return batches


def _prove(folder: Path, batches: list[_Batch]) -> None:
    """The archive read back holds exactly the rows about to be deleted."""
    archived = read_back(folder)
    segment = archived.pop(audit_segment.TABLE, None)
    if segment is not None:
        proof = audit_segment.prove_folder(folder, with_seal=False)
        if proof is None or not proof.ok:
            problems = "; ".join(proof.problems) if proof else "no segment in the manifest"
            raise ArchiveError(f"the archived audit segment does not prove: {problems}")
    for table_name, rows in archived.items():
        key = records.primary_key(db.metadata.tables[table_name])
        held = sorted(tuple(row[name] for name in key) for row in rows)
        planned = sorted(pk for batch in batches for pk in batch.rows.get(table_name, []))
        if held != planned:
            raise ArchiveError(f"{table_name}: the archive does not hold the rows to delete")
    planned_tables = {name for batch in batches for name in batch.rows}
    if planned_tables - set(archived):
        raise ArchiveError("the archive lacks tables it should hold")


def _delete_batch(batch: _Batch) -> None:
    """Delete one batch, children first, in one transaction; a record changed since it
    was archived (a ticket reopened) stops the run rather than go unarchived."""
    root = records.root_table(batch.kind)
    order = [t for t in reversed(db.metadata.sorted_tables) if t.name in batch.rows]
    for table in order:
        keys = batch.rows[table.name]
        columns = list(table.primary_key.columns)
        if table is root:
            ids = [pk[0] for pk in keys]
            statement = delete(table).where(
                table.c.id.in_(ids), records.expired(batch.kind, batch.cutoff)
            )
        elif len(columns) == 1:
            statement = delete(table).where(columns[0].in_([pk[0] for pk in keys]))
        else:
            statement = delete(table).where(tuple_(*columns).in_(keys))
        removed = db.session.execute(statement.execution_options(synchronize_session=False))
        if removed.rowcount != len(keys):
            raise ArchiveError(
                f"{table.name}: {removed.rowcount} of {len(keys)} archived rows could be "
                "deleted (changed since they were archived); this batch was kept"
            )
    db.session.commit()
    for key in batch.stored_files:
        storage.delete(key)


def run_retention(now: datetime | None = None) -> RetentionRun:
    """Archive, prove, delete; the run row says what went and where the archive is."""
    now = now or utcnow()
    run = RetentionRun(started_at=now, status="running", counts={})
    db.session.add(run)
    db.session.commit()
    run_id = run.id
    try:
        _run(run, now)
    except Exception as exc:
        db.session.rollback()
        log.exception("retention run %s failed", run_id)
        failed = db.session.get(RetentionRun, run_id)
        assert failed is not None
        failed.status, failed.finished_at, failed.error = "failed", utcnow(), str(exc)[:2000]
        db.session.commit()
        return failed
    return run


def _run(run: RetentionRun, now: datetime) -> None:
    found = policies()
    cutoffs = {kind.key: cutoff_for(found[kind.key], now) for kind in KINDS}
    counts = {kind.key: 0 for kind in KINDS}
    folder = archive_folder(run)
    writer = ArchiveWriter(
        folder,
        meta={
            "run_id": run.id,
            "created_at": iso_utc(now),
            "cutoffs": {key: iso_utc(cutoff) for key, cutoff in cutoffs.items()},
        },
    )
    batches: list[_Batch] = []
    for kind in RECORD_KINDS:
        kind_batches = _archive_kind(writer, kind, cutoffs[kind.key])
        counts[kind.key] = sum(len(b.rows.get(kind.model.__tablename__, [])) for b in kind_batches)
        batches.extend(kind_batches)
    segment = None
    bounds = audit_segment.bounds(cutoffs[AUDIT])
    if bounds is not None:
        segment = audit_segment.archive(writer, *bounds)
        writer.meta["audit_segment"] = segment
        counts[AUDIT] = segment["count"]
    writer.meta["kinds"] = counts
    manifest = writer.close()
    if not batches and segment is None:
        # Nothing went: no archive to keep.
        shutil.rmtree(folder)
        run.status, run.finished_at, run.counts = "done", utcnow(), counts
        jobs.commit()
        return
    _prove(folder, batches)
    for batch in batches:
        _delete_batch(batch)
    if segment is not None:
        # The seal first, then the segment's rows, committed together with the event below.
        audit_segment.seal_and_delete(segment, folder)
    manifest_sha256 = hashlib.sha256(manifest_bytes(manifest)).hexdigest()
    run.status, run.finished_at, run.counts = "done", utcnow(), counts
    run.archive_path, run.manifest_sha256 = str(folder), manifest_sha256
    if any(counts.values()):
        record(
            "retention.archived",
            None,
            run,
            archive=str(folder),
            manifest_sha256=manifest_sha256,
            manifest=manifest,
        )
    jobs.commit()
    if segment is not None:
        audit_segment.confirm_seal(folder)


@jobs.job
def retention_job() -> str:
    """The daily run (portal/schedule.py)."""
    run = run_retention()
    if run.status != "done":
        return f"retention run {run.id} failed: {run.error}"
    removed = ", ".join(f"{count} {kind}" for kind, count in run.counts.items())
    return f"retention run {run.id}: {removed}"
