"""Test harness (DESIGN §8).

The schema is built once per session by the real migrations; each test runs
inside a transaction on one connection, and every commit the code makes
releases a savepoint of it, so the whole test is rolled back at the end.

`TEST_DATABASE_URL` picks the database (default: a fresh SQLite file);
`TEST_REDIS_URL` enables the tests that need a real Redis.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, func, select, text

from portal import cache, create_app
from portal.extensions import db, limiter

from .factories import make_user, sign_in_client

TMP = Path(tempfile.mkdtemp(prefix="portal-tests-"))


def _database_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "")
    return url or f"sqlite:///{TMP / 'test.db'}"


def _reset_postgres(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def fresh_database_url(name: str) -> str:
    """An empty database of its own, for a test that needs real commits (a worker
    process, concurrent writers, migrations from scratch). Named after the suite's
    database, so two suites on one server never share it."""
    base = _database_url()
    if not base.startswith("postgresql"):
        path = TMP / f"{name}.db"
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}"
    server, suite_database = base.rsplit("/", 1)
    database = f"{suite_database}_{name}"
    admin = create_engine(
        base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    return f"{server}/{database}"


def settings_for_tests(**extra: Any) -> dict[str, Any]:
    return {
        "PORTAL_ENV": "testing",
        "SECRET_KEY": "test-secret-key-" + "x" * 32,
        "DATABASE_URL": _database_url(),
        "STORAGE_DIR": str(TMP / "storage"),
        # Checkpoint files stay out of the checkout, one folder per test run.
        "AUDIT_CHECKPOINT_DIR": str(TMP / "checkpoints"),
        "ARCHIVE_DIR": str(TMP / "archive"),
        "REDIS_URL": "",
        # One process: its in-process stand-in for Redis is shared by every request.
        "SHARED_CACHE_SECONDS": 60,
        "MAIL_SERVER": "",
        "BASE_URL": "http://portal.test",
        "WTF_CSRF_ENABLED": False,
        # Flask-Limiter keeps one storage per process, whichever app set it last: every
        # app a test builds keeps its limits in memory, never in the REDIS_URL it may name.
        "RATELIMIT_STORAGE_URI": "memory://",
        **extra,
    }


class IsolatedClient(FlaskClient):
    """Each request gets its own app context (fresh `g` and session), as in production,
    even while the test itself holds one open."""

    def open(self, *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture(scope="session")
def app() -> Iterator[Flask]:
    url = _database_url()
    if url.startswith("postgresql"):
        _reset_postgres(url)
    app = create_app(settings_for_tests())
    app.test_client_class = IsolatedClient
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.session.remove()
        # A commit in the code under test releases a savepoint; the test's transaction stays.
        db.session.configure(join_transaction_mode="create_savepoint")
    yield app


@pytest.fixture(autouse=True)
def _transaction(app: Flask) -> Iterator[None]:
    """Run the test in an outer transaction that is rolled back at the end."""
    with app.app_context():
        engines = db._app_engines[app]  # type: ignore[attr-defined]
        engine = engines[None]
        connection = engine.connect()
        outer = connection.begin()
        engines[None] = connection  # every session of this test joins the transaction
        db.session.remove()
        limiter.reset()
        cache.clear()  # values cached by the last test describe rows rolled back since
        try:
            yield
        finally:
            db.session.remove()
            engines[None] = engine
            outer.rollback()
            connection.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    """An app context for tests that call services directly."""
    with app.test_request_context("/"):
        yield


@pytest.fixture
def settings(app: Flask, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Change settings for one test: settings(MAIL_SERVER="127.0.0.1")."""

    def change(**values: Any) -> None:
        monkeypatch.setitem(app.config, "SETTINGS", replace(app.config["SETTINGS"], **values))

    return change


@pytest.fixture
def csrf(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """CSRF protection on, as in production."""
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)


@pytest.fixture
def as_role(app: Flask, client: FlaskClient):  # type: ignore[no-untyped-def]
    """as_role("agent") → a client signed in as a new user with that role."""

    def sign_in(role: str, **user_fields: Any):  # type: ignore[no-untyped-def]
        with app.test_request_context("/"):
            user = make_user(role=role, **user_fields)
            sign_in_client(client, user)
            return user

    return sign_in


@pytest.fixture
def count_queries(app: Flask):  # type: ignore[no-untyped-def]
    """with count_queries() as n: ...; n.count → statements sent to the database."""
    from contextlib import contextmanager

    @contextmanager
    def counting():  # type: ignore[no-untyped-def]
        class Counter:
            count = 0
            statements: list[str] = []

        counter = Counter()
        engine = db._app_engines[app][None]  # type: ignore[attr-defined]
        target = engine.engine if hasattr(engine, "engine") else engine

        def before(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            if not re.match(r"\s*(SAVEPOINT|RELEASE|ROLLBACK|BEGIN)", statement, re.I):
                counter.count += 1
                counter.statements.append(statement)

        event.listen(target, "before_cursor_execute", before)
        try:
            yield counter
        finally:
            event.remove(target, "before_cursor_execute", before)

    return counting


def row_counts() -> dict[str, int]:
    """Rows in every table of the schema: a request that must write nothing leaves these
    exactly as they were (a new table is covered the day it is added).

    Except one thing: a refused request (403) is itself recorded, as an `auth.forbidden`
    audit event written after its own writes were rolled back. Those events are left out
    of the count, so "refused, and nothing changed" still reads as equal counts; tests of
    the refusal record look for the event itself (tests/audits/test_security_page.py)."""
    from portal.audits.models import AuditEvent

    counts = {
        table.name: db.session.scalar(select(func.count()).select_from(table)) or 0
        for table in db.metadata.sorted_tables
    }
    counts["audit_events"] -= (
        db.session.scalar(select(func.count()).where(AuditEvent.action == "auth.forbidden")) or 0
    )
    return counts


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    """A real SMTP server on loopback that keeps what it receives in `.messages`."""
    from email import message_from_bytes

    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self) -> None:
            self.messages: list[Any] = []

        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
            self.messages.append(message_from_bytes(envelope.content))
            return "250 OK"

    inbox = Inbox()
    inbox.port = free_port()  # type: ignore[attr-defined]
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)  # type: ignore[attr-defined]
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="TEST_REDIS_URL is not set")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
