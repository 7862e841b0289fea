"""Signed, expiring, single-use links (invitations and password resets).

The signature proves the portal made the link and carries its age; the row it
names holds a nonce that changes on resend and a used/revoked time, which is
what makes a link work once.
"""

from __future__ import annotations

import secrets

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..errors import LinkInvalid


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"portal.{purpose}")


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def make_token(purpose: str, row_id: int, nonce: str) -> str:
    return _serializer(purpose).dumps({"id": row_id, "n": nonce})


def read_token(purpose: str, token: str, max_age_seconds: int) -> tuple[int, str]:
    """The (row id, nonce) a token names; LinkInvalid when it is forged or too old."""
    try:
        data = _serializer(purpose).loads(token, max_age=max_age_seconds)
    except SignatureExpired:
        raise LinkInvalid("This link has expired. Ask for a new one.") from None
    except BadSignature:
        raise LinkInvalid("This link is not valid. Check that it was copied whole.") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("id"), int)
        or not isinstance(data.get("n"), str)
    ):
        raise LinkInvalid("This link is not valid. Check that it was copied whole.")
    return data["id"], data["n"]


def nonce_matches(expected: str, given: str) -> bool:
    return secrets.compare_digest(expected.encode(), given.encode())
