"""Imports every model, so the metadata (and Alembic) knows every table."""

from .audits.models import AuditEvent
from .mail import OutboxMessage
from .users.models import Invitation, PasswordReset, User, UserSession

__all__ = ["AuditEvent", "Invitation", "OutboxMessage", "PasswordReset", "User", "UserSession"]
