"""Scheduled reports: subscribe with the report's filters, one report and one email per
subscription and period however often the job runs, a failed build run again, and an
unsubscribe link that works without signing in (but never on a GET)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from portal.audits.models import AuditEvent
from portal.extensions import db
from portal.mail import OutboxMessage
from portal.reports import subscriptions
from portal.reports.models import Export, ReportDelivery, ReportSubscription
from portal.tickets import services as tickets
from portal.tickets.setup_models import Team
from tests.factories import make_user, sign_in_client


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _age(subscription: ReportSubscription, days: int = 40) -> None:
    subscription.created_at -= timedelta(days=days)
    db.session.commit()


def test_last_period_is_the_last_whole_week_or_month():
    wednesday = date(2026, 11, 18)
    week = subscriptions.last_period("weekly", wednesday)
    assert (week.key, week.first, week.last) == ("2026-W46", date(2026, 11, 9), date(2026, 11, 15))
    month = subscriptions.last_period("monthly", date(2026, 1, 3))
    assert (month.key, month.first, month.last) == (
        "2025-12",
        date(2025, 12, 1),
        date(2025, 12, 31),
    )


def test_subscribing_from_the_report_keeps_its_filters(client, ctx):
    manager = make_user(role="approver")
    sign_in_client(client, manager)
    team = db.session.scalar(select(Team.id).order_by(Team.id))
    page = client.get(f"/reports/service-desk?team={team}&priority=high")
    assert 'id="subscribe-form"' in page.text
    response = client.post(
        "/reports/subscriptions",
        data={"report": "desk_report", "frequency": "weekly",
              "query": f"team={team}&priority=high&priority=bogus&period=last_month"},
    )  # fmt: skip
    assert response.status_code == 302
    subscription = db.session.scalar(select(ReportSubscription))
    assert subscription.filters == f"team={team}&priority=high"
    assert subscription.frequency == "weekly"
    mine = client.get("/reports/exports").text
    assert f'id="subscription-{subscription.id}"' in mine
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "report.subscribed"))
    assert event.data["frequency"] == "weekly"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"report": "secrets", "frequency": "weekly"}, 422),
        ({"report": "monthly_report", "frequency": "weekly"}, 422),
        ({"report": "desk_report", "frequency": "hourly"}, 422),
    ],
)
def test_bad_subscriptions_get_a_message(client, ctx, data, status):
    sign_in_client(client, make_user(role="agent"))
    assert client.post("/reports/subscriptions", data=data).status_code == status
    assert _count(ReportSubscription) == 0


def test_requesters_may_not_subscribe(client, ctx):
    sign_in_client(client, make_user(role="requester"))
    data = {"report": "desk_report", "frequency": "weekly"}
    assert client.post("/reports/subscriptions", data=data).status_code == 403


def test_one_report_and_one_email_per_period_however_often_the_job_runs(client, ctx):
    manager = make_user(role="approver", email="manager@example.com")
    requester = make_user(role="requester")
    tickets.create_ticket(requester, "Printer jams", "d")
    monthly = subscriptions.subscribe(manager, "monthly_report", "monthly", {})
    weekly = subscriptions.subscribe(manager, "desk_report", "weekly", {"priority": "high"})
    _age(monthly)
    _age(weekly)
    first = subscriptions.deliver_scheduled_reports()
    assert first.startswith("2 started, 2 emailed")
    second = subscriptions.deliver_scheduled_reports()
    assert second.startswith("0 started, 0 emailed")
    assert _count(ReportDelivery) == 2 and _count(Export) == 2
    mails = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.to == manager.email).order_by(OutboxMessage.id)
    ).all()
    assert len(mails) == 2
    body = mails[0].body
    link = re.search(r"http://portal\.test/reports/exports/(\d+)", body)
    assert link and "/reports/unsubscribe/" in body
    exports = db.session.scalars(select(Export).order_by(Export.id)).all()
    assert {e.kind for e in exports} == {"monthly_report", "desk_report"}
    assert all(e.status == "done" for e in exports)
    desk = next(e for e in exports if e.kind == "desk_report")
    assert "priority=high" in desk.query
    sign_in_client(client, manager)
    csv = client.get(f"/reports/exports/{desk.id}/download")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert "Tickets created and resolved" in csv.get_data(as_text=True)


def test_a_subscription_made_after_the_period_waits_for_the_next(ctx):
    manager = make_user(role="approver")
    subscriptions.subscribe(manager, "desk_report", "monthly", {})
    assert subscriptions.deliver_scheduled_reports().startswith("0 started")


def test_a_failed_build_is_run_again_under_the_same_delivery(ctx, monkeypatch):
    from portal.reports import sources

    manager = make_user(role="approver")
    _age(subscriptions.subscribe(manager, "desk_report", "weekly", {}))

    def broken(*args, **kwargs):
        raise RuntimeError("worker died")

    document = sources.DOCUMENTS["desk_report"]
    monkeypatch.setitem(
        sources.DOCUMENTS, "desk_report", type(document)(**{**document.__dict__, "build": broken})
    )
    monkeypatch.setitem(sources.KINDS, "desk_report", sources.DOCUMENTS["desk_report"])
    assert subscriptions.deliver_scheduled_reports().startswith("1 started, 0 emailed")
    assert db.session.scalar(select(Export.status)) == "failed"
    monkeypatch.undo()
    summary = subscriptions.deliver_scheduled_reports()
    assert "1 retried" in summary
    assert subscriptions.deliver_scheduled_reports().startswith("0 started, 1 emailed")
    assert _count(ReportDelivery) == 1 and _count(Export) == 1 and _count(OutboxMessage) == 1


def test_the_email_link_unsubscribes_after_asking(client, ctx):
    manager = make_user(role="approver")
    subscription = subscriptions.subscribe(manager, "desk_report", "weekly", {})
    url = f"/reports/unsubscribe/{subscription.token}"
    page = client.get(url)
    assert page.status_code == 200 and 'id="unsubscribe-button"' in page.text
    db.session.refresh(subscription)
    assert subscription.ended_at is None  # a GET (a mail scanner) changes nothing
    done = client.post(url)
    assert done.status_code == 200 and 'id="unsubscribed"' in done.text
    db.session.refresh(subscription)
    assert subscription.ended_at is not None
    assert client.get("/reports/unsubscribe/not-a-token").status_code == 404
    _age(subscription)
    assert subscriptions.deliver_scheduled_reports().startswith("0 started")


def test_someone_who_may_no_longer_run_reports_is_unsubscribed(ctx):
    manager = make_user(role="approver")
    subscription = subscriptions.subscribe(manager, "desk_report", "weekly", {})
    _age(subscription)
    manager.role = "requester"
    db.session.commit()
    assert subscriptions.deliver_scheduled_reports().endswith("1 ended")
    assert subscription.ended_at is not None
    assert _count(Export) == 0


def test_ending_from_my_exports_is_for_the_owner(client, ctx):
    manager = make_user(role="approver")
    subscription = subscriptions.subscribe(manager, "desk_report", "weekly", {})
    sign_in_client(client, make_user(role="agent"))
    assert client.post(f"/reports/subscriptions/{subscription.id}/end").status_code == 404
    sign_in_client(client, manager)
    assert client.post(f"/reports/subscriptions/{subscription.id}/end").status_code == 302
    assert client.post(f"/reports/subscriptions/{subscription.id}/end").status_code == 409
