"""Scheduled reports' pages: subscribing from a report, ending a subscription from My
exports, and the email's unsubscribe link (routes on the reports blueprint)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from flask import abort, flash, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from ..errors import ServiceError
from ..extensions import db
from ..security import Permission, login_required, permission_required, public
from ..web import error_response, redirect_to, render
from . import subscriptions
from .models import ReportSubscription
from .views import bp


@bp.app_template_global()
def my_subscriptions() -> list[ReportSubscription]:
    return subscriptions.active_for(current_user)


@bp.app_template_global()
def subscribable(key: str) -> subscriptions.Subscribable:
    return subscriptions.REPORTS[key]


@bp.route("/subscriptions", methods=["POST"])
@permission_required(Permission.REPORTS_RUN)
def subscribe() -> Response:
    args = MultiDict(parse_qsl(request.form.get("query", "")[:2000]))
    try:
        subscription = subscriptions.subscribe(
            current_user, request.form.get("report", ""), request.form.get("frequency", ""), args
        )
    except ServiceError as exc:
        return error_response(exc.status, "Not subscribed", exc.message)
    report = subscriptions.REPORTS[subscription.report]
    flash(
        f"Subscribed: the {subscription.frequency} {report.label} will be emailed to you "
        "after each period ends.",
        "success",
    )
    return redirect_to(url_for("reports.my_exports"))


@bp.route("/subscriptions/<int:subscription_id>/end", methods=["POST"])
@login_required
def end_subscription(subscription_id: int) -> Response:
    subscription = db.session.scalar(
        select(ReportSubscription).where(ReportSubscription.id == subscription_id)
    )
    if subscription is None or not (
        subscription.user_id == current_user.id or current_user.role == "admin"
    ):
        abort(404)
    try:
        subscriptions.unsubscribe(subscription, current_user, "portal")
    except ServiceError as exc:
        return error_response(exc.status, "Not ended", exc.message)
    flash("The subscription has ended; no more of these reports will be emailed.", "success")
    return redirect_to(url_for("reports.my_exports"))


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@public
def unsubscribe(token: str) -> Response:
    """The email's link: a page that asks, and the POST that ends it (never a GET)."""
    subscription = subscriptions.by_token(token)
    if subscription is None:
        abort(404, "This unsubscribe link is not valid.")
    report = subscriptions.REPORTS[subscription.report]
    if request.method == "POST" and subscription.ended_at is None:
        subscriptions.unsubscribe(subscription, None, "email link")
    return render("reports/unsubscribe.html", None, subscription=subscription, report=report)
