"""Engine set-up that depends on the dialect."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine

from .extensions import db


def init_database(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)


def _configure_sqlite(engine: Engine) -> None:
    """Real transactions and savepoints on SQLite (pysqlite's own BEGIN handling is
    lazy and breaks SAVEPOINT), foreign keys on, and a wait instead of 'database is locked'."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN")


def libpq_url(url: URL) -> str:
    """An engine's URL as libpq takes it (no `+psycopg` driver part), for work that opens
    connections of its own outside the pool (other processes, other snapshots)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
