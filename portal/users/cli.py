"""`flask users …`: account administration from the shell, through the same services."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup
from sqlalchemy import select

from ..errors import ServiceError
from ..extensions import db
from ..security import Role
from . import services
from .auth import find_user_by_email
from .models import User

users_cli = AppGroup("users", help="Manage accounts.")


def _user_or_fail(email: str) -> User:
    user = find_user_by_email(email)
    if user is None:
        raise click.ClickException(f"No account for {email}.")
    return user


@users_cli.command("create-admin")
@click.option("--email", required=True)
@click.option("--name", default="", help="Display name (defaults to the email).")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create_admin(email: str, name: str, password: str) -> None:
    """Create an active admin account."""
    try:
        user = services.create_user(email, name or email, Role.ADMIN, password, actor=None)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Created admin {user.email} (id {user.id}).")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", default="", help="Display name (defaults to the email).")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create(email: str, name: str, role: str, password: str) -> None:
    """Create an active account with any role (the UI invites people instead)."""
    try:
        user = services.create_user(email, name or email, role, password, actor=None)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Created {user.role} {user.email} (id {user.id}).")


@users_cli.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def list_users(fmt: str) -> None:
    """List every account."""
    users = db.session.scalars(select(User).order_by(User.email)).all()
    rows = [
        {
            "id": u.id,
            "email": u.email,
            "name": u.name,
            "role": u.role,
            "status": u.status,
            "last_login_at": u.last_login_at.isoformat() + "Z" if u.last_login_at else None,
        }
        for u in users
    ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'ID':>5}  {'EMAIL':<36} {'ROLE':<10} {'STATUS':<12} NAME")
    for r in rows:
        click.echo(f"{r['id']:>5}  {r['email']:<36} {r['role']:<10} {r['status']:<12} {r['name']}")


@users_cli.command("deactivate")
@click.argument("email")
def deactivate(email: str) -> None:
    """Deactivate an account and end its sessions."""
    user = _user_or_fail(email)
    try:
        services.deactivate(user, actor=_system_actor())
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Deactivated {user.email}.")


@users_cli.command("unlock")
@click.argument("email")
def unlock(email: str) -> None:
    """Lift a sign-in lockout."""
    user = _user_or_fail(email)
    try:
        services.unlock(user, actor=None)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Unlocked {user.email}.")


class _System:
    """The actor of a command run from the shell (no account; audited as `system`)."""

    id = None
    email = "system"


def _system_actor() -> User:
    return _System()  # type: ignore[return-value]
