"""Log lines as the runbooks read them: JSON with the request id, and the markers they
grep for (AUTH_FAILED, ADMIN_ACTION, RATE_LIMIT). The lines asserted on are the ones the
installed handler writes, formatted by the real formatter."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from portal import logs
from portal.audits import record
from portal.extensions import db
from portal.users import services as user_services
from tests.factories import PASSWORD, make_user


class Lines:
    def __init__(self, buffer: io.StringIO) -> None:
        self.buffer = buffer

    @property
    def raw(self) -> list[str]:
        return self.buffer.getvalue().splitlines()

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.raw]

    def grep(self, marker: str) -> list[dict[str, Any]]:
        """What `grep MARKER app.log` finds, each line read back as JSON."""
        return [json.loads(line) for line in self.raw if marker in line]


@pytest.fixture
def lines(app) -> Iterator[Lines]:  # type: ignore[no-untyped-def]
    handler = logs.json_handler()
    assert handler is not None, "create_app installs the JSON handler"
    buffer = io.StringIO()
    handler.setStream(buffer)
    try:
        yield Lines(buffer)
    finally:
        handler.setStream(None)  # type: ignore[arg-type]  (back to sys.stderr)


def test_a_failed_sign_in_writes_an_auth_failed_line(app, lines):
    make_user(email="someone@example.com")
    response = app.test_client().post(
        "/login",
        data={"email": "someone@example.com", "password": "hunter2-wrong-password"},
        environ_base={"REMOTE_ADDR": "192.0.2.44"},
    )
    assert response.status_code == 422
    [line] = lines.grep("AUTH_FAILED")
    assert line["message"] == "AUTH_FAILED sign-in refused for someone@example.com: wrong password"
    assert line["level"] == "WARNING" and line["logger"] == "portal.auth"
    assert line["marker"] == "AUTH_FAILED"
    assert line["email"] == "someone@example.com" and line["ip"] == "192.0.2.44"
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    assert "hunter2" not in "\n".join(lines.raw)  # the password never reaches a line


def test_every_line_is_one_json_object(app, lines):
    logging.getLogger("portal.test").info("two\nlines? %s", "no", extra={"count": 3})
    [line] = lines.raw
    parsed = json.loads(line)
    assert parsed["message"] == "two\nlines? no" and parsed["count"] == 3
    assert list(parsed)[:5] == ["time", "level", "logger", "message", "request_id"]
    assert parsed["request_id"] is None  # no request, no job


def test_fields_named_like_secrets_are_redacted(app, lines):
    logging.getLogger("portal.test").warning(
        "careful",
        extra={"password": "p4ss", "session_token": "abc", "headers": {"Cookie": "sid=1"}},
    )
    [line] = lines.all()
    assert line["password"] == line["session_token"] == "[redacted]"
    assert line["headers"] == {"Cookie": "[redacted]"}
    assert "p4ss" not in lines.raw[0] and "sid=1" not in lines.raw[0]


def test_an_admins_change_writes_an_admin_action_line_once_committed(app, client, as_role, lines):
    admin = as_role("admin", email="root@example.com")
    target = make_user(role="agent")
    response = client.post(f"/users/{target.id}/role", data={"role": "approver"})
    assert response.status_code in (200, 302)
    [line] = lines.grep("ADMIN_ACTION")
    assert line["message"] == (
        f"ADMIN_ACTION user.role_changed by root@example.com on user {target.id}"
    )
    assert line["logger"] == "portal.audit" and line["level"] == "INFO"
    assert line["actor_id"] == admin.id and line["action"] == "user.role_changed"
    assert line["target_type"] == "user" and line["target_id"] == str(target.id)
    assert line["request_id"] == response.headers["X-Request-ID"]


def test_no_admin_action_line_for_others_for_sign_ins_or_rollbacks(app, ctx, lines):
    admin, agent = make_user(role="admin"), make_user(role="agent")
    record("ticket.status_changed", agent, ("ticket", 1))
    record("auth.login", admin, admin)
    db.session.commit()
    record("user.role_changed", admin, agent)
    db.session.rollback()
    assert lines.grep("ADMIN_ACTION") == []

    user_services.change_role(agent, "approver", admin)
    assert len(lines.grep("ADMIN_ACTION")) == 1


def test_a_savepoint_rolled_back_does_not_drop_the_transactions_lines(app, ctx, lines):
    admin = make_user(role="admin")
    record("team.created", admin, ("team", 9))
    with pytest.raises(RuntimeError), db.session.begin_nested():
        raise RuntimeError("an inner step failed and was undone")
    db.session.commit()
    [line] = lines.grep("ADMIN_ACTION")
    assert line["action"] == "team.created"


def test_a_rate_limited_request_writes_a_rate_limit_line(app, settings, lines):
    settings(LOGIN_RATE_LIMIT="1 per minute")
    visitor = app.test_client()
    data = {"email": "x@example.com", "password": PASSWORD}
    environ = {"REMOTE_ADDR": "198.51.100.23"}
    assert visitor.post("/login", data=data, environ_base=environ).status_code == 422
    limited = visitor.post("/login", data=data, environ_base=environ)
    assert limited.status_code == 429
    [line] = lines.grep("RATE_LIMIT")
    assert line["message"].startswith("RATE_LIMIT /login refused for 198.51.100.23")
    assert line["ip"] == "198.51.100.23" and line["path"] == "/login"
    assert line["limit"] == "1 per 1 minute"
    assert line["request_id"] == limited.headers["X-Request-ID"]


@pytest.mark.parametrize(
    ("offered", "kept"),
    [
        ("lb-7f3a9c2e-0001", True),
        ("abc.DEF_123:xyz", True),
        ("", False),
        ("has space", False),
        ('quote"d', False),
        ("x" * 65, False),
        ("-starts-with-dash", False),
        ("<script>", False),
    ],
)
def test_request_id_is_echoed_and_only_a_safe_one_is_kept(client, offered, kept):
    headers = {"X-Request-ID": offered} if offered else {}
    response = client.get("/api/health", headers=headers)
    echoed = response.headers["X-Request-ID"]
    if kept:
        assert echoed == offered
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", echoed)


def test_each_request_gets_its_own_id(client):
    first = client.get("/api/health").headers["X-Request-ID"]
    second = client.get("/login").headers["X-Request-ID"]
    assert first != second
