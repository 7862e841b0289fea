"""The change pages as people use them: the list and its filters, filing and editing,
who sees which change."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.audits.models import AuditEvent
from portal.changes import approvals
from portal.changes.models import ChangeRequest
from portal.changes.setup_models import StandardTemplate
from portal.extensions import db
from portal.tickets import services as ticket_services
from tests.changes.helpers import approved_change, later, make_change, make_service
from tests.factories import make_user, sign_in_client

HX = {"HX-Request": "true"}


def listed(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<td><a href="/changes/(\d+)">CR-', html)]


def newest_change() -> ChangeRequest:
    db.session.expire_all()
    return db.session.scalars(select(ChangeRequest).order_by(ChangeRequest.id.desc())).first()


def valid_form(**extra: str) -> dict[str, str]:
    return {
        "type": "normal",
        "title": "Upgrade PostgreSQL to 16",
        "description": "Minor **downtime**.",
        "justification": "Version 12 is out of support.",
        "success_criteria": "The shop answers.",
        "impact": "2",
        "likelihood": "2",
        "implementation_plan": "pg_upgrade on the replica, then fail over.",
        "rollback_plan": "Fail back to the old primary.",
        "implementer": "",
        "window_start": "",
        "window_end": "",
        "tickets": "",
        **extra,
    }


# -- the list -------------------------------------------------------------------------------


def test_the_list_filters_in_the_query_string_and_pages(ctx, client, as_role):
    shop, mail = make_service("Web shop"), make_service("Mail")
    agent = as_role("agent")
    low = make_change(services_=[shop], title="Low on shop")
    high = make_change(services_=[mail], impact=3, likelihood=3, title="High on mail")
    emergency = make_change(services_=[mail], type_="emergency", title="Hotfix", requester=agent)

    page = client.get("/changes/")
    assert page.status_code == 200
    assert listed(page.text) == [emergency.id, high.id, low.id]
    assert 'hx-push-url="true"' in page.text and 'id="change-filters"' in page.text
    assert f"CR-{low.id:06d}" in page.text

    assert listed(client.get("/changes/?risk=high", headers=HX).text) == [high.id]
    assert listed(client.get(f"/changes/?service={shop.id}", headers=HX).text) == [low.id]
    assert listed(client.get("/changes/?type=emergency", headers=HX).text) == [emergency.id]
    assert listed(client.get("/changes/?mine=1", headers=HX).text) == [emergency.id]
    assert listed(client.get("/changes/?status=in_review", headers=HX).text) == []
    fragment = client.get("/changes/?status=closed", headers=HX).text
    assert 'id="no-results"' in fragment and "<html" not in fragment


def test_the_window_filter_uses_the_viewers_days(ctx, client, as_role):
    as_role("agent")
    early = approved_change(title="Early")
    from portal.changes import lifecycle

    start = later(days=3, hour=1)
    lifecycle.schedule(early, early.requester, (start, start.replace(hour=2)))
    late = approved_change(title="Late")
    start2 = later(days=10, hour=1)
    lifecycle.schedule(late, late.requester, (start2, start2.replace(hour=2)))
    day = start.date().isoformat()
    assert listed(client.get(f"/changes/?window_from={day}&window_to={day}").text) == [early.id]
    assert listed(client.get(f"/changes/?window_from={start2.date()}").text) == [late.id]
    assert listed(client.get("/changes/?sort=window").text)[:2] == [early.id, late.id]


def test_the_list_pages_and_asks_the_same_number_of_queries(
    ctx, client, as_role, count_queries, settings
):
    settings(SHARED_CACHE_SECONDS=0)  # the worst case: the total counted every time
    as_role("auditor")
    service = make_service("Web shop")
    requester, implementer = make_user(), make_user(role="agent")
    for i in range(3):
        make_change(requester, [service], title=f"Change {i}", implementer=implementer)
    client.get("/changes/")  # the incident banner is cached after the first page
    with count_queries() as few:
        assert client.get("/changes/").status_code == 200
    for i in range(27):
        make_change(make_user(), [service], title=f"More {i}", implementer=make_user(role="agent"))
    with count_queries() as many:
        page = client.get("/changes/")
    assert len(listed(page.text)) == 25
    assert few.count == many.count, many.statements
    second = client.get("/changes/?page=2", headers=HX).text
    assert len(listed(second)) == 5 and "Page 2 of 2" in second


def test_the_list_total_is_counted_again_only_after_a_change(ctx, client, as_role, count_queries):
    as_role("auditor")
    for i in range(3):
        make_change(title=f"Change {i}")

    def total_and_counts() -> tuple[str, int]:
        with count_queries() as counter:
            page = client.get("/changes/?type=normal").text
        counted = sum("count(*)" in s.lower() for s in counter.statements)
        return page.split('id="changes-table"')[0].rsplit("of ", 1)[1].split("<")[0], counted

    assert total_and_counts() == ("3", 1)
    assert total_and_counts() == ("3", 0)
    make_change(title="One more")
    assert total_and_counts() == ("4", 1)


def test_awaiting_me_lists_what_waits_for_my_vote(ctx, client, as_role):
    me = as_role("approver")
    waiting = make_change(impact=2, likelihood=2, title="Waiting")
    approvals.submit(waiting, waiting.requester)
    voted = make_change(impact=2, likelihood=2, title="Voted")
    approvals.submit(voted, voted.requester)
    approvals.vote(voted, me, "approve", "ok")
    mine = make_change(me, impact=2, likelihood=2, title="Mine")
    approvals.submit(mine, me)
    make_change(title="Draft")
    assert listed(client.get("/changes/?awaiting=me").text) == [waiting.id]
    # The same answer as the rule in approvals.waiting_on.
    for change in (waiting, voted, mine):
        expected = any(u.id == me.id for u in approvals.waiting_on(change))
        assert expected == (change is waiting)


def test_a_requester_sees_only_their_own_changes(app, ctx, client, as_role):
    me = as_role("requester")
    mine = make_change(me, title="Mine")
    theirs = make_change(make_user(), title="Theirs")
    html = client.get("/changes/").text
    assert listed(html) == [mine.id]
    assert client.get(f"/changes/{mine.id}").status_code == 200
    assert client.get(f"/changes/{theirs.id}").status_code == 403
    assert client.get("/changes/999999").status_code == 404
    assert client.post(f"/changes/{theirs.id}/submit").status_code == 403
    assert client.get("/changes/inbox").status_code == 403


# -- filing and editing ---------------------------------------------------------------------


def test_filing_a_change_with_services_window_and_tickets(ctx, client, as_role):
    me = as_role("requester", timezone="Europe/Berlin")
    shop = make_service("Web shop")
    ticket = ticket_services.create_ticket(me, "Shop slow", "Very")
    implementer = make_user(role="agent", name="Ivan Implementer")
    data = valid_form(
        services=str(shop.id),
        implementer=str(implementer.id),
        window_start="2030-07-01T02:00",
        window_end="2030-07-01T03:30",
        tickets=ticket.number.lower(),
    )
    response = client.post("/changes/new", data=data)
    assert response.status_code == 302, response.text
    change = newest_change()
    assert response.headers["Location"] == f"/changes/{change.id}"
    assert (change.status, change.risk, change.requester_id) == ("draft", "medium", me.id)
    # Berlin in July is UTC+2.
    assert (change.window_start.hour, change.window_end.hour) == (0, 1)
    assert [s.name for s in change.services] == ["Web shop"]
    assert [t.id for t in change.tickets] == [ticket.id]
    assert change.implementer_id == implementer.id
    page = client.get(f"/changes/{change.id}").text
    assert change.number in page and "<strong>downtime</strong>" in page
    assert "2030-07-01 02:00" in page  # shown back in Berlin time
    assert "Add" not in page.split('id="next-steps"')[1].split("</ul>")[0]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("title", "", "Say in a few words what will change."),
        ("impact", "7", "Not a valid choice"),
        ("window_end", "", "start and its end, or neither."),
        ("window_end", "2030-06-30T01:00", "The window must end after it starts."),
        ("tickets", "T-999999", "T-999999 is not a ticket you can see."),
        ("tickets", "printer", "is not a ticket number"),
    ],
)
def test_filing_with_bad_input_is_422_with_the_message_at_the_field(
    ctx, client, as_role, field, value, message
):
    as_role("requester")
    data = valid_form(window_start="2030-07-01T02:00", window_end="2030-07-01T03:00")
    data[field] = value
    before = db.session.scalar(select(db.func.count(ChangeRequest.id)))
    response = client.post("/changes/new", data=data)
    assert response.status_code == 422
    assert f'id="{field}-error"' in response.text and message in response.text
    fragment = client.post("/changes/new", data=data, headers=HX)
    assert fragment.status_code == 422 and "<html" not in fragment.text
    assert db.session.scalar(select(db.func.count(ChangeRequest.id))) == before


def test_someone_elses_ticket_cannot_be_linked(ctx, client, as_role):
    as_role("requester")
    other = ticket_services.create_ticket(make_user(), "Private", "x")
    response = client.post("/changes/new", data=valid_form(tickets=other.number))
    assert response.status_code == 422 and "is not a ticket you can see" in response.text


def test_a_change_starts_from_a_standard_template(ctx, client, as_role):
    me = as_role("agent")
    shop = make_service("Web shop")
    template = StandardTemplate(
        name="Restart the cache",
        implementation_plan="Restart redis.",
        rollback_plan="Nothing to roll back.",
        created_by_id=make_user(role="admin").id,
    )
    template.services = [shop]
    db.session.add(template)
    db.session.commit()
    assert "Restart the cache" in client.get("/changes/new").text
    page = client.get(f"/changes/new?template={template.id}")
    assert page.status_code == 200 and 'id="from-template"' in page.text
    response = client.post(
        f"/changes/new?template={template.id}", data={"title": "Weekly cache restart"}
    )
    assert response.status_code == 302, response.text
    change = newest_change()
    assert (change.type, change.template_id, change.requester_id) == (
        "standard",
        template.id,
        me.id,
    )
    assert change.implementation_plan == "Restart redis." and change.services == [shop]
    assert client.get("/changes/new?template=999999").status_code == 404


def test_editing_a_draft_then_refused_once_submitted(ctx, client, as_role):
    me = as_role("requester")
    change = make_change(me)
    form = client.get(f"/changes/{change.id}/edit")
    assert form.status_code == 200 and change.title in form.text
    data = valid_form(title="Renew the TLS certificate today", services=str(change.services[0].id))
    response = client.post(f"/changes/{change.id}/edit", data=data)
    assert response.status_code == 302, response.text
    db.session.expire_all()
    assert change.title == "Renew the TLS certificate today" and change.risk == "medium"
    updated = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "change.updated"))
    assert updated.data["after"]["title"] == "Renew the TLS certificate today"

    approvals.submit(change, me)
    refused = client.get(f"/changes/{change.id}/edit")
    assert refused.status_code == 409 and "cannot be edited" in refused.text
    assert client.post(f"/changes/{change.id}/edit", data=data).status_code == 409
    other = make_user(role="approver")
    sign_in_client(client, other)
    assert client.get(f"/changes/{change.id}/edit").status_code == 403
