"""Structured logs: one JSON object per line, each with the request id, in the words the
runbooks grep for.

A line is `{"time", "level", "logger", "message", "request_id", ...extra fields}`. The
security markers open the message, so `grep AUTH_FAILED` finds the line whatever the
field order, and are repeated in the `marker` field for log tools:

- `AUTH_FAILED` (logger `portal.auth`): a sign-in refused;
- `ADMIN_ACTION` (logger `portal.audit`): an admin's change, once it has committed;
- `RATE_LIMIT` (logger `portal.web`): a request refused with 429.

The request id is the caller's `X-Request-ID` when that is a short safe token (a proxy's
id then follows the request through), else a fresh one; every response echoes it.
Secrets never reach a line: extra fields whose names say secret are replaced, and the
callers here pass no password, token or cookie.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import IO, Any

from flask import Flask, g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction
from werkzeug.wrappers import Response

REQUEST_ID_HEADER = "X-Request-ID"
# A proxy's id is kept only if it is this: no spaces, quotes or control characters that
# could forge a second line or a field.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
HANDLER_NAME = "portal-json-lines"
SECRET_FIELD = re.compile(r"pass|secret|token|cookie|authori[sz]ation|csrf|session|api_?key", re.I)
REDACTED = "[redacted]"

AUTH_FAILED = "AUTH_FAILED"
ADMIN_ACTION = "ADMIN_ACTION"
RATE_LIMIT = "RATE_LIMIT"

auth_log = logging.getLogger("portal.auth")
audit_log = logging.getLogger("portal.audit")
web_log = logging.getLogger("portal.web")

# What every LogRecord carries; anything else on a record is a field the caller added.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def request_id() -> str | None:
    """This request's id (chosen on first use), the RQ job's id in a worker, else None."""
    if has_request_context():
        current: str | None = g.get("request_id")
        if current is None:
            offered = request.headers.get(REQUEST_ID_HEADER, "")
            current = offered if SAFE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
            g.request_id = current
        return current
    try:
        from rq import get_current_job

        job = get_current_job()
    except Exception:  # noqa: BLE001 - a log line never fails for want of an id
        return None
    return f"job:{job.id}" if job is not None else None


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {
            str(k): REDACTED if SECRET_FIELD.search(str(k)) else _plain(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    return str(value)


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            # A line written after its request (an admin action at commit) carries its own.
            "request_id": getattr(record, "request_id", None) or request_id(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_") and name not in line:
                line[name] = REDACTED if SECRET_FIELD.search(name) else _plain(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii: any control character in a value is escaped, so a line stays one line.
        return json.dumps(line, default=str)


class JsonLinesHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the stream it was given, else to whatever `sys.stderr` is at the time
    (a test runner or a supervisor may swap it after the app was built)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        logging.Handler.__init__(self)
        self._stream = stream
        self.set_name(HANDLER_NAME)
        self.setFormatter(JsonFormatter())

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return self._stream if self._stream is not None else sys.stderr

    @stream.setter
    def stream(self, value: IO[str] | None) -> None:
        self._stream = value


def json_handler() -> JsonLinesHandler | None:
    """The handler `init_app` installed on the `portal` logger, if it did."""
    for handler in logging.getLogger("portal").handlers:
        if isinstance(handler, JsonLinesHandler):
            return handler
    return None


def _echo_request_id(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = request_id() or ""
    return response


def init_app(app: Flask) -> None:
    """JSON lines for the portal's loggers (once per process, whatever the number of
    apps), their INFO lines let through, and the request id echoed on every response.

    The handler sits on the `portal` logger rather than the root: a logging set-up run
    later in the process (Alembic's, when migrations run in-process) replaces the root's
    handlers and would silently drop it. Records still propagate, so a host's own root
    handler (or a test's log capture) sees them too; a host that wants every library's
    lines as JSON puts `JsonFormatter` on its root handler.
    """
    portal = logging.getLogger("portal")
    if json_handler() is None:
        portal.addHandler(JsonLinesHandler())
    if portal.level == logging.NOTSET:
        portal.setLevel(logging.INFO)
    app.after_request(_echo_request_id)
    if not event.contains(Session, "after_commit", _emit_committed):
        event.listen(Session, "after_commit", _emit_committed)
        event.listen(Session, "after_soft_rollback", _drop_uncommitted)


# -- the markers -----------------------------------------------------------------------------


def auth_failed(email: str, reason: str, ip: str | None) -> None:
    """A refused sign-in: the address typed and why (never the password)."""
    auth_log.warning(
        "%s sign-in refused for %s: %s",
        AUTH_FAILED,
        email,
        reason,
        extra={"marker": AUTH_FAILED, "email": email, "reason": reason, "ip": ip},
    )


def rate_limited(ip: str | None, path: str, limit: str) -> None:
    web_log.warning(
        "%s %s refused for %s (limit %s)",
        RATE_LIMIT,
        path,
        ip,
        limit,
        extra={"marker": RATE_LIMIT, "ip": ip, "path": path, "limit": limit},
    )


# Actions that change nothing: signing in (or being refused) and reading a file.
def is_change(action: str) -> bool:
    return not action.startswith("auth.") and not action.endswith(".downloaded")


_PENDING = "portal.logs.admin_actions"


def audit_recorded(event: Any, actor: Any) -> None:
    """Called by `audits.record()`: an admin's change is logged as `ADMIN_ACTION` once its
    transaction commits (a rolled-back change is not one the runbooks should find)."""
    if getattr(actor, "role", None) != "admin" or not is_change(event.action):
        return
    from .extensions import db

    fields = {
        "marker": ADMIN_ACTION,
        "action": event.action,
        "actor_id": event.actor_id,
        "actor": event.actor_label,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "event_id": event.id,
        "ip": event.ip,
        # The request that made the change, which may be over when the line is written.
        "request_id": request_id(),
    }
    db.session.info.setdefault(_PENDING, []).append(fields)


def _emit_committed(session: Session) -> None:
    for fields in session.info.pop(_PENDING, []):
        target = f"{fields['target_type']} {fields['target_id']}" if fields["target_type"] else "-"
        audit_log.info(
            "%s %s by %s on %s",
            ADMIN_ACTION,
            fields["action"],
            fields["actor"],
            target,
            extra=fields,
        )


def _drop_uncommitted(session: Session, previous: SessionTransaction) -> None:
    """The whole transaction rolled back: its changes never happened. (A savepoint rolled
    back inside it leaves the transaction's own changes to commit, so the lines stay.)"""
    if previous.parent is None:
        session.info.pop(_PENDING, None)
