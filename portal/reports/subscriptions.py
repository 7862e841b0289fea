"""Scheduled reports: a person subscribes to a report, weekly or monthly, with its
filters; the periodic job builds each period's report once the period is over, as an
export of its own, and emails a link to it with a link to unsubscribe.

Exactly one report per subscription and period: the delivery row is unique per
(subscription, period) and is written in the same transaction as its export, so a job
that runs twice finds it; the email is queued in the same transaction that marks the
delivery emailed, so it goes once. A build that failed (a worker died) is run again by
the next pass, under the same delivery.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from flask import render_template
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import jobs, mail
from ..audits import record
from ..errors import Conflict, ServiceError
from ..extensions import db
from ..timeutil import utcnow
from ..users.models import User
from ..web import external_url
from . import services
from .models import FREQUENCIES, ReportDelivery, ReportSubscription
from .sources import DOCUMENTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subscribable:
    document: str  # a key of sources.DOCUMENTS
    label: str
    frequencies: tuple[str, ...]
    filters: tuple[str, ...]  # the report's filters a subscription keeps


REPORTS: dict[str, Subscribable] = {
    "desk_report": Subscribable(
        "desk_report", "Service-desk report (CSV)", FREQUENCIES, ("team", "priority", "type")
    ),
    "monthly_report": Subscribable(
        "monthly_report", "Monthly operations report (PDF)", ("monthly",), ()
    ),
}


@dataclass(frozen=True)
class Period:
    key: str  # 2026-10 or 2026-W47
    first: date
    last: date


def last_period(frequency: str, today: date) -> Period:
    """The last whole week (Monday to Sunday) or month before `today`."""
    if frequency == "weekly":
        monday = today - timedelta(days=today.weekday() + 7)
        year, week, _ = monday.isocalendar()
        return Period(f"{year}-W{week:02d}", monday, monday + timedelta(days=6))
    last = today.replace(day=1) - timedelta(days=1)
    return Period(f"{last:%Y-%m}", last.replace(day=1), last)


def _kept_filters(report: Subscribable, args: Any) -> dict[str, str]:
    """The report's filters as its page reads them (unknown values dropped)."""
    from ..tickets.setup_models import Team
    from .period import ReportPeriod

    teams = dict(db.session.execute(select(Team.id, Team.name)).all())
    period = ReportPeriod.from_args(args, "UTC", teams)
    kept = {name: str(getattr(period, name) or "") for name in report.filters}
    return {name: value for name, value in kept.items() if value}


def subscribe(user: User, report_key: str, frequency: str, args: Any) -> ReportSubscription:
    report = REPORTS.get(report_key)
    if report is None:
        raise ServiceError("Choose one of the reports offered.", field="report")
    if not DOCUMENTS[report.document].allows(user):
        raise services.NotAllowed("You may not run reports.")
    if frequency not in report.frequencies:
        raise ServiceError(
            f"{report.label} comes {' or '.join(report.frequencies)}.", field="frequency"
        )
    subscription = ReportSubscription(
        user_id=user.id,
        report=report_key,
        frequency=frequency,
        filters=urlencode(_kept_filters(report, args)),
        token=secrets.token_urlsafe(32),
    )
    db.session.add(subscription)
    db.session.flush()
    record(
        "report.subscribed",
        user,
        subscription,
        report=report_key,
        frequency=frequency,
        filters=subscription.filters,
    )
    jobs.commit()
    return subscription


def unsubscribe(subscription: ReportSubscription, actor: User | None, how: str) -> None:
    """End it (by its owner, an admin, or the email's link: `how` says which)."""
    if subscription.ended_at is not None:
        raise Conflict("This subscription has already ended.")
    subscription.ended_at = utcnow()
    record("report.unsubscribed", actor, subscription, report=subscription.report, how=how)
    jobs.commit()


def by_token(token: str) -> ReportSubscription | None:
    if not token or len(token) > 64:
        return None
    return db.session.scalar(select(ReportSubscription).where(ReportSubscription.token == token))


def active_for(user: User) -> list[ReportSubscription]:
    return list(
        db.session.scalars(
            select(ReportSubscription)
            .where(ReportSubscription.user_id == user.id, ReportSubscription.ended_at.is_(None))
            .order_by(ReportSubscription.created_at)
        )
    )


# -- the periodic job -------------------------------------------------------------------------


def _document_args(subscription: ReportSubscription, period: Period) -> dict[str, str]:
    if subscription.report == "monthly_report":
        return {"month": f"{period.first:%Y-%m}"}
    args = {"start": period.first.isoformat(), "end": period.last.isoformat()}
    return {**args, **dict(parse_qsl(subscription.filters))}


def _start_delivery(subscription: ReportSubscription, now: datetime) -> bool:
    """This period's delivery and its export, written together; False when it exists."""
    owner = subscription.user
    zone = services.zone_of(owner)
    today = now.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(zone)).date()
    period = last_period(subscription.frequency, today)
    if subscription.created_at.date() > period.last:
        return False  # subscribed after that period ended: the first report is the next one
    document = DOCUMENTS[REPORTS[subscription.report].document]
    try:
        with db.session.begin_nested():
            delivery = ReportDelivery(subscription_id=subscription.id, period=period.key)
            db.session.add(delivery)
            db.session.flush()
    except IntegrityError:
        return False
    export = services.new_document(document, _document_args(subscription, period), owner)
    delivery.export_id = export.id
    jobs.commit()
    return True


def _end_if_not_allowed(subscription: ReportSubscription) -> bool:
    owner = subscription.user
    document = DOCUMENTS[REPORTS[subscription.report].document]
    if document.allows(owner):
        return False
    subscription.ended_at = utcnow()
    record("report.unsubscribed", None, subscription, report=subscription.report, how="access")
    jobs.commit()
    return True


def _email(delivery: ReportDelivery) -> None:
    subscription, export = delivery.subscription, delivery.export
    assert export is not None
    body = render_template(
        "reports/email/scheduled.txt",
        subscription=subscription,
        report=REPORTS[subscription.report],
        delivery=delivery,
        export=export,
        link=external_url("reports.export_status", export_id=export.id),
        unsubscribe=external_url("reports.unsubscribe", token=subscription.token),
    )
    label = REPORTS[subscription.report].label
    mail.send(subscription.user.email, f"{label}, {delivery.period}", body)
    delivery.emailed_at = utcnow()
    jobs.commit()


@jobs.job
def deliver_scheduled_reports() -> str:
    """Start each subscription's report for the period just over, email those built, and
    run again the builds that failed. Safe to run twice, or at the same time."""
    now = utcnow()
    started = ended = emailed = retried = 0
    active = db.session.scalars(
        select(ReportSubscription).where(ReportSubscription.ended_at.is_(None))
    ).all()
    for subscription in active:
        if _end_if_not_allowed(subscription):
            ended += 1
        elif _start_delivery(subscription, now):
            started += 1
    pending = db.session.scalars(
        select(ReportDelivery).where(ReportDelivery.emailed_at.is_(None))
    ).all()
    for delivery in pending:
        export = delivery.export
        if export is None or delivery.subscription.ended_at is not None:
            continue
        db.session.refresh(export)
        if export.status == "done":
            _email(delivery)
            emailed += 1
        elif export.status == "failed":
            try:
                services.retry_export(export, export.requested_by)
                retried += 1
            except ServiceError as exc:
                log.warning("scheduled report %s not retried: %s", delivery.id, exc.message)
    return f"{started} started, {emailed} emailed, {retried} retried, {ended} ended"
