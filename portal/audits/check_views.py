"""The scheduled audits' pages, on the audits blueprint: the runs, one run (each check's
share of objects passing, its findings compared with the previous run, links to the
failing objects), the run as a PDF, one finding, and what can be done to it.

Who may do what: everything here is audit work (audits:read: auditors and admins),
except filing a finding as a ticket, which also needs tickets:create — admins, since an
auditor's role reads tickets but files none. That second check comes before the finding
is even loaded, so it reads like the route's own permission.

The PDF is built in the request, not by a job: a run holds a handful of checks and at
most PDF_FINDINGS findings with a few evidence rows each (well under a second to lay
out), a GET may not start a job (DESIGN §4), and building it on demand shows the
findings' states as they are now (acknowledged, accepted) with nothing stored to expire.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, make_response, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from .. import jobs
from ..downloads import DOWNLOAD_CSP, content_disposition
from ..errors import ServiceError
from ..query_args import pick, positive_int
from ..security import Permission, can, permission_required
from ..web import error_response, redirect_to, render
from . import check_services, record
from .check_forms import AcceptRiskForm
from .check_models import ACTIONABLE
from .check_pdf import render_run_pdf
from .check_queries import (
    check_rows,
    findings_page,
    get_finding_or_404,
    get_run_or_404,
    previous_run,
    runs_page,
)
from .checks import BY_KEY, SCHEDULES, checks_for
from .views import _viewer_zone, bp

READ = Permission.AUDITS_READ
EVIDENCE_LINKS = {
    "user_id": "user",
    "ticket_id": "ticket",
    "change_id": "change",
    "invitation_id": "invitation",
    "finding_id": "finding",
    "event_id": "event",
}


def _page_number() -> int:
    return min(positive_int(request.args.get("page")) or 1, 100_000)


def subject_url(kind: str, value: str) -> str | None:
    """The page of a failing object the viewer may open, else its events in the log."""
    if not value.isdigit() and kind not in ("ip", "email"):
        return None
    if kind == "user":
        if can(Permission.USERS_MANAGE):
            return url_for("users.user_detail", user_id=int(value))
        return url_for("audits.index", type="user", id=value)
    if kind == "ticket":
        return url_for("tickets.detail", ticket_id=int(value))
    if kind == "change":
        return url_for("changes.detail", change_id=int(value))
    if kind == "invitation":
        if can(Permission.USERS_MANAGE):
            return url_for("users.invitations")
        return url_for("audits.index", type="invitation", id=value)
    if kind == "finding":
        return url_for("audits.finding_detail", finding_id=int(value))
    if kind == "event":
        return url_for("audits.detail", event_id=int(value))
    if kind == "ip":
        return url_for("audits.index", ip=value, action="auth.login_failed")
    if kind == "email":
        return url_for("audits.index", type="email", id=value)
    return None


@bp.app_template_global()
def finding_subject_url(finding: Any) -> str | None:
    """Where a finding's subject is: `user:42` → the user's page, and so on."""
    kind, _, rest = finding.subject_key.partition(":")
    if kind == "session":  # a session has no page: its account's
        rows = (finding.evidence or {}).get("rows") or [{}]
        return subject_url("user", str(rows[0].get("user_id", "")))
    if kind == "audit-chain":
        return url_for("audits.index")
    value = rest if kind in ("ip", "email") else rest.partition(":")[0]
    if not value or (kind not in ("ip", "email") and not (value.isdigit() and int(value) < 2**31)):
        return None
    return subject_url(kind, value)


@bp.app_template_global()
def evidence_url(key: str, value: Any) -> str | None:
    kind = EVIDENCE_LINKS.get(key)
    if kind is None or value is None or not str(value).isdigit() or int(value) >= 2**31:
        return None
    return subject_url(kind, str(value))


@bp.route("/runs")
@permission_required(READ)
def check_runs() -> Response:
    schedule = pick(request.args, "schedule", SCHEDULES)
    return render(
        "audits/runs.html",
        "runs",
        page=runs_page(schedule, _page_number()),
        schedule=schedule,
        schedules=SCHEDULES,
    )


@bp.route("/runs/<int:check_run_id>")
@permission_required(READ)
def check_run_detail(check_run_id: int) -> Response:
    run = get_run_or_404(check_run_id)
    keys = tuple(c.key for c in checks_for(run.schedule))
    check_key = pick(request.args, "check", keys)
    return render(
        "audits/runs_detail.html",
        "findings",
        run=run,
        rows=check_rows(run),
        previous=previous_run(run),
        check_key=check_key,
        page=findings_page(run, check_key, _page_number()),
        checks=BY_KEY,
    )


@bp.route("/runs/<int:check_run_id>.pdf")
@permission_required(READ)
def check_run_pdf(check_run_id: int) -> Response:
    run = get_run_or_404(check_run_id)
    zone = _viewer_zone()
    content = render_run_pdf(run, zone)
    filename = f"audit-{run.schedule}-{run.period_start:%Y-%m-%d}-{run.number}.pdf"
    record("audit.run_downloaded", current_user, ("audit_check_run", run.id), filename=filename)
    jobs.commit()
    response = make_response(content)
    response.mimetype = "application/pdf"
    # The same headers as every stored download (portal/downloads.py).
    response.headers.set("Content-Disposition", "attachment", **content_disposition(filename))
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    return response


def _finding_page(finding: Any, form: AcceptRiskForm | None = None, status: int = 200) -> Response:
    return render(
        "audits/runs_finding.html",
        None,
        status,
        finding=finding,
        check=BY_KEY.get(finding.check_key),
        form=form or AcceptRiskForm(formdata=None),
        actionable=finding.state in ACTIONABLE,
        acceptable=finding.state in (*ACTIONABLE, "acknowledged"),
        may_ticket=can(Permission.TICKETS_CREATE)
        and finding.ticket_id is None
        and finding.state != "resolved",
    )


@bp.route("/findings/<int:finding_id>")
@permission_required(READ)
def finding_detail(finding_id: int) -> Response:
    return _finding_page(get_finding_or_404(finding_id))


def _refused(exc: ServiceError) -> Response:
    return error_response(exc.status, "Not done", exc.message)


@bp.route("/findings/<int:finding_id>/acknowledge", methods=["POST"])
@permission_required(READ)
def acknowledge_finding(finding_id: int) -> Response:
    finding = get_finding_or_404(finding_id)
    try:
        check_services.acknowledge(finding, current_user)
    except ServiceError as exc:
        return _refused(exc)
    flash(f"{finding.number} is acknowledged.", "success")
    return redirect_to(url_for("audits.finding_detail", finding_id=finding.id))


@bp.route("/findings/<int:finding_id>/accept", methods=["POST"])
@permission_required(READ)
def accept_finding(finding_id: int) -> Response:
    finding = get_finding_or_404(finding_id)
    form = AcceptRiskForm()
    if not form.validate():
        return _finding_page(finding, form, 422)
    try:
        check_services.accept_risk(finding, current_user, form.reason.data or "", form.until.data)
    except ServiceError as exc:
        if exc.field and exc.status == 422:
            form.add_error(exc.field, exc.message)
            return _finding_page(finding, form, 422)
        return _refused(exc)
    flash(f"The risk of {finding.number} is accepted until {form.until.data}.", "success")
    return redirect_to(url_for("audits.finding_detail", finding_id=finding.id))


@bp.route("/findings/<int:finding_id>/ticket", methods=["POST"])
@permission_required(READ)
def finding_to_ticket(finding_id: int) -> Response:
    if not can(Permission.TICKETS_CREATE):
        abort(403)
    finding = get_finding_or_404(finding_id)
    try:
        ticket = check_services.to_ticket(finding, current_user)
    except ServiceError as exc:
        return _refused(exc)
    flash(f"{finding.number} is filed as {ticket.number}.", "success")
    return redirect_to(url_for("audits.finding_detail", finding_id=finding.id))
