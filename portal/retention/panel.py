"""The operations panel on the retention page: the last verification and its result,
the last checkpoint, the last retention run and what it removed, the rows each kind
holds now, and where the audit log starts since retention archived its oldest events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from ..audits.models import AuditCheckpoint, AuditEvent, VerificationRun
from ..audits.runs import last_finished_run
from ..audits.verification import SEAL_ACTION
from ..extensions import db
from .kinds import KINDS
from .models import RetentionRun


@dataclass(frozen=True)
class LogStart:
    """The newest seal: the audit log now starts after its archived segment."""

    seal_id: int
    first_id: int
    last_id: int
    archived_up_to: datetime | None


@dataclass(frozen=True)
class Panel:
    verification: VerificationRun | None
    checkpoint: AuditCheckpoint | None
    retention_run: RetentionRun | None
    rows: dict[str, int]
    log_start: LogStart | None


def _log_start() -> LogStart | None:
    seal = db.session.execute(
        select(AuditEvent.id, AuditEvent.data)
        .where(AuditEvent.action == SEAL_ACTION)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    if seal is None or not isinstance(seal.data, dict):
        return None
    data: dict[str, Any] = seal.data
    last_at = data.get("last_at")
    return LogStart(
        seal_id=seal.id,
        first_id=int(data.get("first_id") or 0),
        last_id=int(data.get("last_id") or 0),
        archived_up_to=datetime.fromisoformat(last_at.removesuffix("Z")) if last_at else None,
    )


def panel() -> Panel:
    rows = {
        kind.key: int(db.session.scalar(select(func.count()).select_from(kind.model)) or 0)
        for kind in KINDS
    }
    return Panel(
        verification=last_finished_run(),
        checkpoint=db.session.scalar(
            select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
        ),
        retention_run=db.session.scalar(
            select(RetentionRun).order_by(RetentionRun.id.desc()).limit(1)
        ),
        rows=rows,
        log_start=_log_start(),
    )
