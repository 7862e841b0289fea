"""Who is asking: the client address and browser of the current request, made safe to store."""

from __future__ import annotations

import re

from flask import has_request_context, request

# Control characters (NUL above all: PostgreSQL refuses it in text) never reach a row.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def client_ip() -> str | None:
    return request.remote_addr if has_request_context() else None


def client_user_agent() -> str | None:
    if not has_request_context():
        return None
    text = _CONTROL.sub("", request.user_agent.string or "")[:255]
    return text or None
