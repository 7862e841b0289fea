"""Builders for change requests: rows made through the services, as people would make them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from portal.changes import approvals, lifecycle, services
from portal.changes.models import ChangeRequest
from portal.changes.setup_models import FreezePeriod, Service
from portal.extensions import db
from portal.mail import OutboxMessage
from portal.timeutil import utcnow
from portal.users.models import User
from tests.factories import make_user

HOUR = timedelta(hours=1)


def make_service(name: str, owner: User | None = None) -> Service:
    service = Service(name=name, owner_id=(owner or make_user(role="agent")).id)
    db.session.add(service)
    db.session.commit()
    return service


def make_change(
    requester: User | None = None,
    services_: list[Service] | None = None,
    impact: int = 1,
    likelihood: int = 1,
    **fields: Any,
) -> ChangeRequest:
    values: dict[str, Any] = {
        "justification": "The certificate expires on Friday.",
        "implementation_plan": "Install the new certificate and reload nginx.",
        "rollback_plan": "Restore the previous certificate from the vault.",
        "success_criteria": "The site answers with the new certificate.",
    }
    values.update(fields)
    return services.create_change(
        requester or make_user(role="requester"),
        values.pop("title", "Renew the TLS certificate"),
        values.pop("type_", "normal"),
        impact=impact,
        likelihood=likelihood,
        services=services_ if services_ is not None else [make_service_once()],
        **values,
    )


def make_service_once() -> Service:
    existing = db.session.scalar(db.select(Service).where(Service.name == "Web shop"))
    return existing or make_service("Web shop")


def approved_change(services_: list[Service] | None = None, **fields: Any) -> ChangeRequest:
    """A low-risk change, submitted and approved by one approver."""
    change = make_change(services_=services_, **fields)
    approvals.submit(change, change.requester)
    approvals.vote(change, make_user(role="approver"), "approve", "Looks fine")
    assert change.status == "approved"
    return change


def scheduled_change(
    start: datetime, end: datetime, services_: list[Service] | None = None, **fields: Any
) -> ChangeRequest:
    change = approved_change(services_, **fields)
    lifecycle.schedule(change, change.requester, (start, end), acknowledge_conflicts=True)
    return change


def make_freeze(start: datetime, end: datetime, reason: str = "Year-end trading") -> FreezePeriod:
    freeze = FreezePeriod(
        starts_at=start, ends_at=end, reason=reason, created_by_id=make_user(role="admin").id
    )
    db.session.add(freeze)
    db.session.commit()
    return freeze


def later(days: int = 2, hour: int = 1) -> datetime:
    """A whole hour `days` from now, in UTC."""
    return (utcnow() + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)


def mail_to(user: User) -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            db.select(OutboxMessage)
            .where(OutboxMessage.to == user.email)
            .order_by(OutboxMessage.id)
        )
    )
