"""Running change management's setup: services and their owners, freeze periods and the
pre-approved standard templates. Admins only; every change is audited."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select

from .. import jobs
from ..audits import diff, record
from ..errors import Conflict, Forbidden, ServiceError
from ..extensions import db
from ..security import Permission, role_has
from ..users.models import User
from . import risk
from .conflicts import check_window
from .setup_models import FreezePeriod, Service, StandardTemplate


def _require_admin(actor: User) -> None:
    if not role_has(actor.role, Permission.SETTINGS_MANAGE):
        raise Forbidden("Only admins manage change settings.")


def _name_free(model: type, name: str, current_id: int | None = None) -> str:
    name = " ".join(name.split())
    if not name:
        raise ServiceError("Give it a name.", field="name")
    clash = db.session.scalar(select(model).where(func.lower(model.name) == name.lower()))
    if clash is not None and clash.id != current_id:
        raise Conflict(f"“{name}” exists already.", field="name")
    return name


def _check_owner(owner: User | None) -> User:
    if owner is None or not owner.is_active:
        raise ServiceError("Choose an active person as the owner.", field="owner")
    return owner


# -- services --------------------------------------------------------------------------------


def create_service(name: str, owner: User, actor: User, description: str = "") -> Service:
    _require_admin(actor)
    service = Service(
        name=_name_free(Service, name),
        owner_id=_check_owner(owner).id,
        description=description.strip(),
    )
    db.session.add(service)
    db.session.flush()
    record(
        "change_service.created",
        actor,
        service,
        after={"name": service.name, "owner": owner.email},
    )
    jobs.commit()
    return service


def update_service(
    service: Service,
    actor: User,
    *,
    name: str | None = None,
    owner: User | None = None,
    description: str | None = None,
    is_active: bool | None = None,
) -> None:
    """Rename, hand over, describe, retire or bring back a service; None leaves a field."""
    _require_admin(actor)
    before = {
        "name": service.name,
        "owner": service.owner.email,
        "description": service.description,
        "is_active": service.is_active,
    }
    if name is not None:
        service.name = _name_free(Service, name, service.id)
    if owner is not None:
        service.owner = _check_owner(owner)
    if description is not None:
        service.description = description.strip()
    if is_active is not None:
        service.is_active = is_active
    after = {
        "name": service.name,
        "owner": service.owner.email,
        "description": service.description,
        "is_active": service.is_active,
    }
    if before != after:
        record("change_service.updated", actor, service, **diff(before, after))
    jobs.commit()


# -- freeze periods --------------------------------------------------------------------------


def _check_freeze(starts_at: datetime, ends_at: datetime, reason: str) -> str:
    check_window(starts_at, ends_at)
    reason = reason.strip()
    if not reason:
        raise ServiceError("Say why changes are frozen.", field="reason")
    if len(reason) > 500:
        raise ServiceError("Use at most 500 characters.", field="reason")
    return reason


def create_freeze(starts_at: datetime, ends_at: datetime, reason: str, actor: User) -> FreezePeriod:
    """A freeze over [starts_at, ends_at), naive UTC (see conflicts.window_to_utc)."""
    _require_admin(actor)
    freeze = FreezePeriod(
        starts_at=starts_at,
        ends_at=ends_at,
        reason=_check_freeze(starts_at, ends_at, reason),
        created_by_id=actor.id,
    )
    db.session.add(freeze)
    db.session.flush()
    record(
        "freeze.created",
        actor,
        freeze,
        after={"starts_at": starts_at, "ends_at": ends_at, "reason": freeze.reason},
    )
    jobs.commit()
    return freeze


def update_freeze(
    freeze: FreezePeriod, starts_at: datetime, ends_at: datetime, reason: str, actor: User
) -> None:
    """Changes already scheduled in the new period stay as they are: the freeze is checked
    when a change is scheduled."""
    _require_admin(actor)
    reason = _check_freeze(starts_at, ends_at, reason)
    before = {"starts_at": freeze.starts_at, "ends_at": freeze.ends_at, "reason": freeze.reason}
    freeze.starts_at, freeze.ends_at, freeze.reason = starts_at, ends_at, reason
    after = {"starts_at": starts_at, "ends_at": ends_at, "reason": reason}
    if before != after:
        record("freeze.updated", actor, freeze, **diff(before, after))
    jobs.commit()


def delete_freeze(freeze: FreezePeriod, actor: User) -> None:
    _require_admin(actor)
    record(
        "freeze.deleted",
        actor,
        freeze,
        before={"starts_at": freeze.starts_at, "ends_at": freeze.ends_at, "reason": freeze.reason},
    )
    db.session.delete(freeze)
    jobs.commit()


# -- standard templates ----------------------------------------------------------------------


def _template_values(template: StandardTemplate) -> dict[str, object]:
    return {
        "name": template.name,
        "description": template.description,
        "implementation_plan": template.implementation_plan,
        "rollback_plan": template.rollback_plan,
        "impact": template.impact,
        "likelihood": template.likelihood,
        "services": [s.name for s in template.services],
        "is_active": template.is_active,
    }


def save_template(
    template: StandardTemplate | None,
    actor: User,
    *,
    name: str,
    description: str,
    implementation_plan: str,
    rollback_plan: str,
    services: Iterable[Service],
    impact: int = 1,
    likelihood: int = 1,
    is_active: bool = True,
) -> StandardTemplate:
    """Create (template None) or rewrite a pre-approved template. Changes made from it
    earlier keep the plans they were made with."""
    _require_admin(actor)
    implementation_plan, rollback_plan = implementation_plan.strip(), rollback_plan.strip()
    if not implementation_plan:
        raise ServiceError(
            "A standard change needs its implementation plan.", field="implementation_plan"
        )
    if not rollback_plan:
        raise ServiceError("A standard change needs its rollback plan.", field="rollback_plan")
    chosen = sorted({s.id: s for s in services}.values(), key=lambda s: s.name)
    if not chosen:
        raise ServiceError("Choose at least one service.", field="services")
    for field, value in (("impact", impact), ("likelihood", likelihood)):
        if value not in risk.LEVELS:
            raise ServiceError("Rate it from 1 (low) to 3 (high).", field=field)
    name = _name_free(StandardTemplate, name, template.id if template else None)
    created = template is None
    if template is None:
        template = StandardTemplate(created_by_id=actor.id)
        db.session.add(template)
        before: dict[str, object] = {}
    else:
        before = _template_values(template)
    template.name = name
    template.description = description.strip()
    template.implementation_plan, template.rollback_plan = implementation_plan, rollback_plan
    template.impact, template.likelihood = impact, likelihood
    template.services = chosen
    template.is_active = is_active
    db.session.flush()
    after = _template_values(template)
    if created:
        record("standard_template.created", actor, template, after=after)
    elif before != after:
        record("standard_template.updated", actor, template, **diff(before, after))
    jobs.commit()
    return template
