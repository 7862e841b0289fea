"""Tests that play someone with write access to the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from portal.audits.services import allow_retention_in_this_transaction
from portal.extensions import db


def as_intruder(sql: str, **params: Any) -> None:
    """Run `sql` on audit_events past the append-only trigger, as an intruder with
    database access could (setting the retention job's flag), and commit."""
    allow_retention_in_this_transaction()
    db.session.execute(text(sql), params)
    db.session.commit()
