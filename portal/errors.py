"""Errors a service raises for a request it refuses; views turn them into messages."""

from __future__ import annotations


class ServiceError(Exception):
    """A refused action, with a message fit to show the person who asked."""

    status = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Conflict(ServiceError):
    """The object is not in a state that allows the action (HTTP 409)."""

    status = 409


class LinkInvalid(ServiceError):
    """A signed link that is malformed, expired, revoked or already used."""

    status = 410


class Forbidden(ServiceError):
    """The person may see the object but not do this to it (HTTP 403)."""

    status = 403
