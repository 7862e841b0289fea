"""Demo accounts for `make run` on an empty database."""

from __future__ import annotations

import secrets

from ..security import Role
from ..users.services import create_user

DEMO_ADMIN_EMAIL = "admin@example.com"
DEMO_USERS = (
    ("approver@example.com", "Alex Approver", Role.APPROVER),
    ("agent@example.com", "Ana Agent", Role.AGENT),
    ("requester@example.com", "Riley Requester", Role.REQUESTER),
    ("auditor@example.com", "Aude Auditor", Role.AUDITOR),
)


def seed_demo() -> str:
    """Create the demo admin and users; returns the admin's generated password."""
    password = "demo-" + secrets.token_urlsafe(12)
    create_user(DEMO_ADMIN_EMAIL, "Dana Admin", Role.ADMIN, password, actor=None)
    for email, name, role in DEMO_USERS:
        create_user(email, name, role, "demo-" + secrets.token_urlsafe(12), actor=None)
    return password
