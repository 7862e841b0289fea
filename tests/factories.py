"""Factories: rows built through the models, fast (one password hash for all)."""

from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Any

from flask.testing import FlaskClient

from portal.extensions import db
from portal.users import auth
from portal.users.models import User
from portal.users.passwords import hash_password

PASSWORD = "correct-horse-battery-9"
_sequence = itertools.count(1)


@lru_cache(maxsize=1)
def _password_hash() -> str:
    return hash_password(PASSWORD)


def make_user(role: str = "requester", **fields: Any) -> User:
    n = next(_sequence)
    values: dict[str, Any] = {
        "email": f"user{n}@example.com",
        "name": f"Test User {n}",
        "role": role,
        "password_hash": _password_hash(),
    }
    values.update(fields)
    values["email"] = values["email"].lower()
    user = User(**values)
    db.session.add(user)
    db.session.commit()
    return user


def sign_in_client(client: FlaskClient, user: User) -> str:
    """Give `client` an open session for `user`, as a successful sign-in would."""
    token = auth._open_session(user, "127.0.0.1", "pytest")
    db.session.commit()
    with client.session_transaction() as session:
        session["sid"] = token
        session["_user_id"] = str(user.id)
        session["_fresh"] = True
    return token
