"""Checkpoints of the chain's head, kept in the database and out of it (DESIGN §6).

A chain proves that nothing inside it changed, not that it is all there: a tail cut
off, or the whole chain recomputed by someone with write access, is still a valid
chain. A checkpoint (event count, last id, last hash, time) is written to the
`audit_checkpoints` table, appended to a file under AUDIT_CHECKPOINT_DIR and emailed to
the security contacts; `verify(checkpoints=...)` then proves that the database still
holds every head a checkpoint saw.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import jobs, mail
from ..extensions import db
from ..timeutil import iso_utc, utcnow
from .models import AuditCheckpoint, AuditEvent
from .verification import Mark, Problem

FILE_NAME = "audit-checkpoints.jsonl"
# Ids looked up in one query when holding the chain to its checkpoints.
LOOKUP_CHUNK = 1000


class CheckpointFileError(ValueError):
    """A checkpoint file that cannot be read as one checkpoint per line."""


def checkpoint_dir() -> Path:
    configured = current_app.config["SETTINGS"].AUDIT_CHECKPOINT_DIR
    return Path(configured) if configured else Path(current_app.instance_path) / "checkpoints"


def export_file() -> Path:
    return checkpoint_dir() / FILE_NAME


def mark_line(mark: Mark) -> str:
    """One checkpoint as the file (and the email) carries it: a line of JSON."""
    body = {
        "at": mark.at,
        "event_count": mark.event_count,
        "last_id": mark.last_id,
        "last_hash": mark.last_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def _mark_of(checkpoint: AuditCheckpoint) -> Mark:
    return Mark(
        checkpoint.event_count,
        checkpoint.last_id,
        checkpoint.last_hash,
        iso_utc(checkpoint.created_at),
    )


def current_head() -> tuple[int, int, str] | None:
    """(event count, last id, last hash) of the committed chain, None when it is empty."""
    last = db.session.execute(
        select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).first()
    if last is None:
        return None
    count = db.session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    return count, last.id, last.hash


def write_checkpoint(reason: str) -> AuditCheckpoint | None:
    """Checkpoint the chain's head, once per head: None when the chain is empty or this
    head has a checkpoint already (so a job that runs twice writes one). Commits."""
    head = current_head()
    if head is None:
        return None
    count, last_id, last_hash = head
    if db.session.scalar(select(AuditCheckpoint.id).where(AuditCheckpoint.last_id == last_id)):
        db.session.rollback()
        return None
    checkpoint = AuditCheckpoint(
        created_at=utcnow(), event_count=count, last_id=last_id, last_hash=last_hash, reason=reason
    )
    try:
        with db.session.begin_nested():
            db.session.add(checkpoint)
    except IntegrityError:  # another run wrote this head's checkpoint just now
        db.session.rollback()
        return None
    mark = _mark_of(checkpoint)
    _email(mark)
    # Appended before the commit: a line for a head that is committed is true whatever
    # becomes of this row, and a rerun after a failed commit only repeats the line.
    _append(mark)
    jobs.commit()
    return checkpoint


def _append(mark: Mark) -> None:
    path = export_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(mark_line(mark) + "\n")
        out.flush()


def _email(mark: Mark) -> None:
    settings = current_app.config["SETTINGS"]
    subject = f"Audit checkpoint: {mark.event_count:,} events up to #{mark.last_id}"
    body = (
        f"The audit trail of {settings.BASE_URL} at {mark.at}:\n\n"
        f"  events:    {mark.event_count}\n"
        f"  last id:   {mark.last_id}\n"
        f"  last hash: {mark.last_hash}\n\n"
        "Keep this message out of the portal's reach. To prove the database still holds "
        "what this checkpoint saw, put the line below in a file and run\n"
        "`flask audits verify --checkpoints FILE`:\n\n"
        f"{mark_line(mark)}\n"
    )
    for contact in settings.security_contacts:
        mail.send(contact, subject, body)


@jobs.job
def checkpoint_job(reason: str = "periodic") -> str:
    """Write a checkpoint of the head as it is when the job runs (safe to run twice)."""
    checkpoint = write_checkpoint(reason)
    return f"checkpoint at #{checkpoint.last_id}" if checkpoint else "head already checkpointed"


@jobs.job
def periodic_checkpoint() -> str:
    return checkpoint_job("periodic")


def read_marks(path: Path) -> list[Mark]:
    """The checkpoints in a file written by _append (or pasted from the emails)."""
    marks = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointFileError(f"cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            body = json.loads(line)
            marks.append(
                Mark(
                    int(body["event_count"]),
                    int(body["last_id"]),
                    str(body["last_hash"]),
                    str(body.get("at", "")),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointFileError(f"{path}, line {number}: not a checkpoint ({exc})") from exc
    return marks


def stored_marks() -> list[Mark]:
    """The checkpoints the database keeps (an intruder may have changed these too)."""
    checkpoints = db.session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.last_id))
    return [_mark_of(checkpoint) for checkpoint in checkpoints]


def known_marks() -> list[Mark]:
    """Every checkpoint within reach: the exported file's, when there is one, and the
    database's."""
    path = export_file()
    exported = read_marks(path) if path.exists() else []
    return exported + stored_marks()


def _stored_hashes(ids: list[int]) -> dict[int, str]:
    hashes: dict[int, str] = {}
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start : start + LOOKUP_CHUNK]
        rows = db.session.execute(
            select(AuditEvent.id, AuditEvent.hash).where(AuditEvent.id.in_(chunk))
        )
        hashes.update({row.id: row.hash for row in rows})
    return hashes


def compare(marks: Iterable[Mark], head_id: int) -> list[Problem]:
    """What the database lost or changed since the checkpoints saw it."""
    unique = sorted({(m.last_id, m.last_hash): m for m in marks}.values(), key=lambda m: m.last_id)
    if not unique:
        return []
    stored = _stored_hashes(sorted({m.last_id for m in unique}))
    problems: list[Problem] = []
    still_good = 0  # the newest checkpointed row that is as it was
    rewritten: list[Mark] = []
    cut: Mark | None = None
    for mark in unique:
        found = stored.get(mark.last_id)
        if found == mark.last_hash:
            if not rewritten:
                still_good = mark.last_id
        elif found is None and mark.last_id > head_id:
            cut = mark
        elif found is None:
            problems.append(
                Problem(
                    mark.last_id,
                    "deleted",
                    f"the newest row of the checkpoint of {mark.at or 'an unknown time'} is gone",
                )
            )
        else:
            rewritten.append(mark)
    if rewritten:
        first = rewritten[0]
        problems.append(
            Problem(
                first.last_id,
                "rewritten",
                f"row {first.last_id} no longer has the hash the checkpoint of "
                f"{first.at or 'an unknown time'} saw: the chain was rewritten from a row "
                f"after {still_good} on ({len(rewritten)} checkpoints disagree)",
            )
        )
    if cut is not None:
        problems.append(
            Problem(
                cut.last_id,
                "truncated",
                f"the chain ends at row {head_id}, but the checkpoint of "
                f"{cut.at or 'an unknown time'} saw {cut.event_count} events up to row "
                f"{cut.last_id}: rows {head_id + 1}..{cut.last_id} were cut off",
            )
        )
    return problems
