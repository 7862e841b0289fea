"""Dates as id ranges of the audit log (a module of its own: the viewer, the alerts and
the scheduled checks all use it, and it needs nothing but the model)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from .models import AuditEvent


def first_id_at(moment: datetime) -> Any:
    """The id of the first event at or after `moment`, as a subquery.

    record() stamps the time under the chain lock, so ids and times rise together: a
    date range is also an id range, which the primary key walks without looking at the
    rows outside it (a range far in the past would otherwise be found by reading every
    newer event). The time conditions stay too, so the rows are exactly the range's.
    """
    return (
        select(AuditEvent.id)
        .where(AuditEvent.created_at >= moment)
        .order_by(AuditEvent.created_at, AuditEvent.id)
        .limit(1)
        .scalar_subquery()
    )
