"""Roles, permissions and the decorators every route uses to name its access.

The role table below is the only place that says who may do what (DESIGN §3).
Every view carries an `access` attribute set by one of the decorators here, so
the route-map test can check that no route was left unguarded.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, request
from flask_login import current_user

F = TypeVar("F", bound=Callable[..., Any])


class Role(enum.StrEnum):
    ADMIN = "admin"
    APPROVER = "approver"
    AGENT = "agent"
    REQUESTER = "requester"
    AUDITOR = "auditor"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Permission(enum.StrEnum):
    USERS_MANAGE = "users:manage"
    # The help desk's setup: teams, categories, routing rules, SLA policies and calendars.
    SETTINGS_MANAGE = "settings:manage"
    TICKETS_CREATE = "tickets:create"
    # Opening the tickets area at all; without TICKETS_READ_ALL only one's own tickets.
    TICKETS_READ = "tickets:read"
    TICKETS_READ_ALL = "tickets:read_all"
    TICKETS_WORK = "tickets:work"
    CHANGES_CREATE = "changes:create"
    CHANGES_READ = "changes:read"
    CHANGES_APPROVE = "changes:approve"
    REPORTS_RUN = "reports:run"
    AUDITS_READ = "audits:read"


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.APPROVER: frozenset(
        {
            P.TICKETS_CREATE,
            P.TICKETS_READ,
            P.TICKETS_READ_ALL,
            P.CHANGES_CREATE,
            P.CHANGES_READ,
            P.CHANGES_APPROVE,
            P.REPORTS_RUN,
        }
    ),
    Role.AGENT: frozenset(
        {
            P.TICKETS_CREATE,
            P.TICKETS_READ,
            P.TICKETS_READ_ALL,
            P.TICKETS_WORK,
            P.CHANGES_CREATE,
            P.CHANGES_READ,
            P.REPORTS_RUN,
        }
    ),
    Role.REQUESTER: frozenset({P.TICKETS_CREATE, P.TICKETS_READ, P.CHANGES_CREATE}),
    Role.AUDITOR: frozenset(
        {P.TICKETS_READ, P.TICKETS_READ_ALL, P.CHANGES_READ, P.REPORTS_RUN, P.AUDITS_READ}
    ),
}


# The same table keyed by the role's text, as the users table stores it: every page asks
# a dozen times, and looking the text up directly spares building a Role each time.
_PERMISSIONS_BY_NAME: dict[str, frozenset[Permission]] = {
    role.value: permissions for role, permissions in ROLE_PERMISSIONS.items()
}


def role_has(role: str | Role, permission: Permission) -> bool:
    permissions = _PERMISSIONS_BY_NAME.get(role)
    return permissions is not None and permission in permissions


def can(permission: Permission) -> bool:
    """Whether the signed-in user holds `permission` (False when signed out)."""
    user = current_user._get_current_object()  # type: ignore[attr-defined]
    return bool(user.is_authenticated and role_has(user.role, permission))


# The access a route declares: a Permission, or one of these two markers.
PUBLIC = "public"
SIGNED_IN = "signed-in"


def _mark(view: Callable[..., Any], access: str | Permission) -> None:
    view.access = access  # type: ignore[attr-defined]


def public(view: F) -> F:
    """Anyone, signed in or not (sign-in page, health check, invitation links)."""
    _mark(view, PUBLIC)
    return view


def _require_signed_in() -> None:
    if not current_user.is_authenticated:
        from .extensions import login_manager

        abort(login_manager.unauthorized())
    if current_user.must_change_password and request.endpoint not in PASSWORD_CHANGE_ENDPOINTS:
        from flask import redirect, url_for

        abort(redirect(url_for("users.change_password")))


# While a temporary password is in force only these pages are open.
PASSWORD_CHANGE_ENDPOINTS = {"users.change_password", "users.logout", "static"}


def login_required(view: F) -> F:
    """Any signed-in user; no particular permission."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        _require_signed_in()
        return view(*args, **kwargs)

    _mark(wrapped, SIGNED_IN)
    return wrapped  # type: ignore[return-value]


def permission_required(permission: Permission) -> Callable[[F], F]:
    """Signed in and holding `permission`; otherwise 401 (signed out) or 403."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            _require_signed_in()
            if not role_has(current_user.role, permission):
                abort(403)
            return view(*args, **kwargs)

        _mark(wrapped, permission)
        return wrapped  # type: ignore[return-value]

    return decorator
