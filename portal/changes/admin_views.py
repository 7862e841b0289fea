"""The change process's setup pages (admins): affected services, freeze periods and
pre-approved standard templates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, current_app, flash, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from ..errors import ServiceError
from ..extensions import db
from ..security import Permission, permission_required
from ..timeutil import to_zone, utcnow
from ..users.models import User
from ..web import redirect_to, render
from . import admin_services as admin
from .admin_forms import FreezeForm, ServiceEditForm, ServiceForm, TemplateForm
from .conflicts import window_to_utc
from .risk import risk_of
from .setup_models import FreezePeriod, Service, StandardTemplate

bp = Blueprint("change_admin", __name__, url_prefix="/changes/setup")
MANAGE = Permission.SETTINGS_MANAGE
# Past freezes only matter as a record; the newest are enough on the page.
PAST_FREEZES_SHOWN = 50
# window_to_utc names the fields of a change's window; a freeze calls them otherwise.
FREEZE_FIELDS = {"window_start": "starts_at", "window_end": "ends_at"}


def _get(model: type, row_id: int) -> Any:
    row = db.session.get(model, row_id)
    if row is None:
        abort(404)
    return row


def _done(endpoint: str, message: str, **values: Any) -> Response:
    flash(message, "success")
    return redirect_to(url_for(endpoint, **values))


def _attempt(form: Any, action: Callable[[], Any], fields: dict[str, str] | None = None) -> bool:
    """Run a service call, putting its refusal on the form; True when it went through."""
    try:
        action()
    except ServiceError as exc:
        field = (fields or {}).get(exc.field or "", exc.field)
        form.add_error(field, exc.message)
        return False
    return True


def _viewer_zone() -> str:
    """The zone the admin types and reads times in, as the `local_time` filter shows them."""
    return getattr(current_user, "timezone", None) or current_app.config["SETTINGS"].TIMEZONE


# -- services --------------------------------------------------------------------------------


def _owner_choices(form: ServiceForm) -> ServiceForm:
    people = db.session.scalars(
        select(User).where(User.is_active.is_(True)).order_by(User.name)
    ).all()
    form.owner.choices = [("", "Choose a person"), *[(str(p.id), p.name) for p in people]]
    return form


def _all_services() -> list[Service]:
    return list(db.session.scalars(select(Service).order_by(Service.name)))


@bp.route("/services", methods=["GET", "POST"])
@permission_required(MANAGE)
def services() -> Response:
    form = _owner_choices(ServiceForm())
    status = 200
    if request.method == "POST":
        if form.validate():
            owner = db.session.get(User, int(form.owner.data))
            if _attempt(
                form,
                lambda: admin.create_service(
                    form.name.data, owner, current_user, description=form.description.data or ""
                ),
            ):
                return _done("change_admin.services", f"Service {form.name.data.strip()} added.")
        status = 422
    return render("changes/admin/services.html", None, status, form=form, rows=_all_services())


@bp.route("/services/<int:service_id>", methods=["GET", "POST"])
@permission_required(MANAGE)
def service(service_id: int) -> Response:
    row: Service = _get(Service, service_id)
    if request.method == "POST":
        form = _owner_choices(ServiceEditForm())
        if form.validate():
            owner = db.session.get(User, int(form.owner.data))
            if _attempt(
                form,
                lambda: admin.update_service(
                    row,
                    current_user,
                    name=form.name.data,
                    owner=owner,
                    description=form.description.data or "",
                    is_active=bool(form.is_active.data),
                ),
            ):
                return _done("change_admin.services", f"Service {row.name} saved.")
        return render("changes/admin/service.html", None, 422, form=form, service=row)
    form = _owner_choices(
        ServiceEditForm(
            name=row.name,
            # A deactivated owner is no longer a choice: the select asks for a new one.
            owner=str(row.owner_id) if row.owner.is_active else "",
            description=row.description,
            is_active=row.is_active,
        )
    )
    return render("changes/admin/service.html", form=form, service=row)


# -- freeze periods --------------------------------------------------------------------------


def _freeze_lists() -> dict[str, Any]:
    now = utcnow()
    upcoming = db.session.scalars(
        select(FreezePeriod)
        .where(FreezePeriod.ends_at > now)
        .order_by(FreezePeriod.starts_at, FreezePeriod.id)
    ).all()
    past = db.session.scalars(
        select(FreezePeriod)
        .where(FreezePeriod.ends_at <= now)
        .order_by(FreezePeriod.starts_at.desc(), FreezePeriod.id.desc())
        .limit(PAST_FREEZES_SHOWN)
    ).all()
    return {"upcoming": upcoming, "past": past, "now": now, "zone": _viewer_zone()}


def _save_freeze(form: FreezeForm, freeze: FreezePeriod | None) -> bool:
    def save() -> None:
        starts_at, ends_at = window_to_utc(form.starts_at.data, form.ends_at.data, _viewer_zone())
        if freeze is None:
            admin.create_freeze(starts_at, ends_at, form.reason.data, current_user)
        else:
            admin.update_freeze(freeze, starts_at, ends_at, form.reason.data, current_user)

    return _attempt(form, save, FREEZE_FIELDS)


@bp.route("/freezes", methods=["GET", "POST"])
@permission_required(MANAGE)
def freezes() -> Response:
    form = FreezeForm()
    status = 200
    if request.method == "POST":
        if form.validate() and _save_freeze(form, None):
            return _done("change_admin.freezes", "Freeze period added.")
        status = 422
    return render("changes/admin/freezes.html", None, status, form=form, **_freeze_lists())


def _local(value: datetime) -> datetime | None:
    """A stored time as the naive wall-clock value a datetime-local input shows."""
    local = to_zone(value, _viewer_zone())
    return local.replace(tzinfo=None) if local else None


@bp.route("/freezes/<int:freeze_id>", methods=["GET", "POST"])
@permission_required(MANAGE)
def freeze(freeze_id: int) -> Response:
    row: FreezePeriod = _get(FreezePeriod, freeze_id)
    context = {"freeze": row, "zone": _viewer_zone()}
    if request.method == "POST":
        form = FreezeForm()
        if form.validate() and _save_freeze(form, row):
            return _done("change_admin.freezes", "Freeze period saved.")
        return render("changes/admin/freeze.html", None, 422, form=form, **context)
    form = FreezeForm(
        starts_at=_local(row.starts_at), ends_at=_local(row.ends_at), reason=row.reason
    )
    return render("changes/admin/freeze.html", form=form, **context)


@bp.route("/freezes/<int:freeze_id>/delete", methods=["POST"])
@permission_required(MANAGE)
def delete_freeze(freeze_id: int) -> Response:
    row: FreezePeriod = _get(FreezePeriod, freeze_id)
    admin.delete_freeze(row, current_user)
    return _done("change_admin.freezes", "Freeze period deleted.")


# -- standard templates ----------------------------------------------------------------------


def _service_choices(form: TemplateForm, template: StandardTemplate | None) -> TemplateForm:
    """Active services, plus any retired one the template still names (so saving it
    unchanged does not quietly drop that service)."""
    rows = {s.id: s for s in db.session.scalars(select(Service).where(Service.is_active.is_(True)))}
    for kept in template.services if template else []:
        rows.setdefault(kept.id, kept)
    ordered = sorted(rows.values(), key=lambda s: s.name.lower())
    form.services.choices = [
        (str(s.id), s.name if s.is_active else f"{s.name} (retired)") for s in ordered
    ]
    return form


def _save_template(form: TemplateForm, template: StandardTemplate | None) -> bool:
    ids = [int(value) for value in form.services.data or []]
    chosen = db.session.scalars(select(Service).where(Service.id.in_(ids))).all()
    return _attempt(
        form,
        lambda: admin.save_template(
            template,
            current_user,
            name=form.name.data,
            description=form.description.data or "",
            implementation_plan=form.implementation_plan.data,
            rollback_plan=form.rollback_plan.data,
            services=chosen,
            impact=form.impact.data,
            likelihood=form.likelihood.data,
            is_active=bool(form.is_active.data),
        ),
    )


def _all_templates() -> list[StandardTemplate]:
    return list(
        db.session.scalars(
            select(StandardTemplate)
            .options(selectinload(StandardTemplate.services))
            .order_by(StandardTemplate.name)
        )
    )


@bp.route("/templates", methods=["GET", "POST"])
@permission_required(MANAGE)
def templates() -> Response:
    form = _service_choices(TemplateForm(), None)
    status = 200
    if request.method == "POST":
        if form.validate() and _save_template(form, None):
            return _done("change_admin.templates", f"Template {form.name.data.strip()} added.")
        status = 422
    return render(
        "changes/admin/templates.html",
        None,
        status,
        form=form,
        rows=_all_templates(),
        risk_of=risk_of,
    )


@bp.route("/templates/<int:template_id>", methods=["GET", "POST"])
@permission_required(MANAGE)
def template(template_id: int) -> Response:
    row: StandardTemplate = _get(StandardTemplate, template_id)
    if request.method == "POST":
        form = _service_choices(TemplateForm(), row)
        if form.validate() and _save_template(form, row):
            return _done("change_admin.templates", f"Template {row.name} saved.")
        return render("changes/admin/template.html", None, 422, form=form, template=row)
    form = _service_choices(
        TemplateForm(
            name=row.name,
            description=row.description,
            implementation_plan=row.implementation_plan,
            rollback_plan=row.rollback_plan,
            services=[str(s.id) for s in row.services],
            impact=row.impact,
            likelihood=row.likelihood,
            is_active=row.is_active,
        ),
        row,
    )
    return render("changes/admin/template.html", form=form, template=row)
