"""On PostgreSQL a trigger keeps audit_events append-only: UPDATE, DELETE and TRUNCATE
are refused, even to the portal's own code, unless the transaction set the retention
job's flag. SQLite has no such trigger; the helper does nothing there."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DBAPIError

from portal import create_app
from portal.audits import record
from portal.audits.models import AuditEvent
from portal.audits.services import allow_retention_in_this_transaction, verify
from portal.extensions import db
from tests.conftest import _database_url, fresh_database_url, settings_for_tests

on_postgres = pytest.mark.skipif(
    not _database_url().startswith("postgresql"), reason="the trigger is PostgreSQL's"
)


def _events(n: int) -> list[int]:
    ids = [record("test.append_only", None, ("thing", i), i=i).id for i in range(n)]
    db.session.commit()
    return ids


@on_postgres
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor_label = 'someone-else' WHERE id = :id",
        "DELETE FROM audit_events WHERE id = :id",
        "TRUNCATE audit_events",
    ],
    ids=["update", "delete", "truncate"],
)
def test_changing_history_is_refused(ctx, statement):
    ids = _events(3)
    with pytest.raises(DBAPIError, match="audit_events is append-only"):
        db.session.execute(text(statement), {"id": ids[1]})
    db.session.rollback()
    assert (
        db.session.scalar(select(AuditEvent.actor_label).where(AuditEvent.id == ids[1])) == "system"
    )
    assert verify().ok


@on_postgres
def test_the_orm_is_refused_too(ctx):
    ids = _events(2)
    event = db.session.get(AuditEvent, ids[0])
    event.action = "test.rewritten"
    with pytest.raises(DBAPIError, match="UPDATE refused"):
        db.session.commit()
    db.session.rollback()


@on_postgres
def test_the_flag_lets_one_transaction_delete_and_ends_with_it():
    """Real commits, on a database of its own: the flag is the transaction's alone."""
    url = fresh_database_url("trigger")
    app = create_app(settings_for_tests(DATABASE_URL=url))
    try:
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            ids = _events(4)

            allow_retention_in_this_transaction()
            db.session.execute(text("DELETE FROM audit_events WHERE id <= :id"), {"id": ids[1]})
            db.session.commit()
            assert db.session.scalar(select(func.min(AuditEvent.id))) == ids[2]

            # A new transaction has no flag: refused again.
            with pytest.raises(DBAPIError, match="DELETE refused"):
                db.session.execute(text("DELETE FROM audit_events"))
            db.session.rollback()
            assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 2
            db.session.remove()
            db.engine.dispose()
        # Nor does another connection that never set it.
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn, pytest.raises(DBAPIError, match="UPDATE refused"):
            conn.execute(text("UPDATE audit_events SET ip = '1.2.3.4'"))
        engine.dispose()
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_the_helper_is_harmless_where_there_is_no_trigger(ctx):
    ids = _events(2)
    allow_retention_in_this_transaction()  # SQLite: nothing to set; PostgreSQL: the flag
    db.session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": ids[1]})
    db.session.commit()
    assert db.session.get(AuditEvent, ids[1]) is None
