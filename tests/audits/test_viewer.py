"""The audit log viewer: filters, keyset paging both ways, one event's diff, who may
look, bad input, and the export that holds the viewer's rows."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from portal.audits import record
from portal.audits.models import AuditEvent
from portal.audits.queries import AuditFilters, Cursor, events_page
from portal.audits.services import allow_retention_in_this_transaction
from portal.changes import services as change_services
from portal.extensions import db
from portal.reports.sources import SOURCES
from portal.tickets import services as ticket_services
from portal.users import services as user_services
from tests.factories import make_user
from tests.reports.helpers import download, parsed, start, written

HX = {"HX-Request": "true"}
# A day's events, one an hour, from here on (ids and times rise together, as record() makes them).
START = datetime(2026, 3, 1, 0, 30)
ROW_ID = re.compile(r'<td><a href="/audits/(\d+)">')


def _all_events() -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())))


def _ids(html: str) -> list[int]:
    return [int(i) for i in ROW_ID.findall(html)]


def _link(html: str, name: str) -> str | None:
    found = re.search(rf'id="{name}" href="([^"]+)"', html)
    return found[1].replace("&amp;", "&") if found else None


@pytest.fixture
def log(ctx):
    """Events by two people and the system, on users and tickets, from two addresses,
    an hour apart from START."""
    ana, bob = make_user(role="admin", name="Ana"), make_user(role="agent", name="Bob")
    # Placing the events in time rewrites them: past the append-only trigger.
    allow_retention_in_this_transaction()
    made = []
    for i in range(30):
        actor = (ana, bob, None)[i % 3]
        action = ("user.role_changed", "ticket.status_changed", "auth.login_failed")[i % 3]
        target = ("user", bob.id) if i % 2 else ("ticket", 7)
        event = record(action, actor, target, before={"n": i}, after={"n": i + 1})
        event.ip = "10.0.0.1" if i % 4 else "2001:db8::1"
        event.created_at = START + timedelta(hours=i)
        made.append(event)
    db.session.commit()
    return ana, bob, made


def _listed(client, query: str) -> list[int]:
    """Every id the viewer lists under `query`, page after page (older links)."""
    ids, url = [], f"/audits/?{query}"
    while url:
        response = client.get(url, headers=HX)
        assert response.status_code == 200
        ids += _ids(response.text)
        url = _link(response.text, "older")
    return ids


# -- filters ---------------------------------------------------------------------------------


def test_each_filter_narrows_the_list(client, as_role, log):
    ana, bob, made = log
    as_role("auditor")
    everything = _all_events()
    cases = {
        f"actor={ana.id}": lambda e: e.actor_id == ana.id,
        f"actor={ana.email.upper()}": lambda e: e.actor_id == ana.id,
        "actor=system": lambda e: e.actor_id is None,
        "action=user.": lambda e: e.action.startswith("user."),
        "action=ticket.status_changed": lambda e: e.action == "ticket.status_changed",
        "type=ticket&id=7": lambda e: (e.target_type, e.target_id) == ("ticket", "7"),
        f"type=user&id={bob.id}": lambda e: (e.target_type, e.target_id) == ("user", str(bob.id)),
        "type=ticket": lambda e: e.target_type == "ticket",
        "ip=10.0.0.1": lambda e: e.ip == "10.0.0.1",
        "ip=2001:DB8:0::1": lambda e: e.ip == "2001:db8::1",
        f"actor={bob.id}&action=ticket.&ip=10.0.0.1": lambda e: (
            e.actor_id == bob.id and e.action.startswith("ticket.") and e.ip == "10.0.0.1"
        ),
    }
    for query, keep in cases.items():
        expected = [e.id for e in everything if keep(e)]
        assert expected, query
        assert _listed(client, query) == expected, query
    assert _listed(client, "actor=nobody@example.com") == []


def test_a_date_range_is_read_in_the_viewers_zone(client, as_role, log):
    as_role("auditor", timezone="Asia/Tokyo")  # UTC+9: a day starts at 15:00 UTC the day before
    tokyo = ZoneInfo("Asia/Tokyo")
    everything = [e for e in _all_events() if e.created_at >= START]

    def local_day(e: AuditEvent) -> str:
        return e.created_at.replace(tzinfo=ZoneInfo("UTC")).astimezone(tokyo).date().isoformat()

    for query, keep in {
        "from=2026-03-02": lambda d: d >= "2026-03-02",
        "to=2026-03-01": lambda d: d <= "2026-03-01",
        "from=2026-03-02&to=2026-03-02": lambda d: d == "2026-03-02",
    }.items():
        expected = [e.id for e in everything if keep(local_day(e))]
        assert expected, query
        assert [i for i in _listed(client, query) if i in {e.id for e in everything}] == expected
    assert _listed(client, "from=2030-01-01") == []


# -- keyset paging ---------------------------------------------------------------------------


def test_paging_walks_every_event_once_both_ways(client, as_role, ctx):
    for i in range(120):
        record("test.paged", None, ("thing", i))
    db.session.commit()
    as_role("auditor")
    expected = [e.id for e in _all_events() if e.action == "test.paged"]

    older, url, last = [], "/audits/?action=test.", None
    while url:
        html = client.get(url, headers=HX).text
        older.append(_ids(html))
        last, url = html, _link(html, "older")
    assert [i for page in older for i in page] == expected
    assert [len(page) for page in older] == [50, 50, 20]

    newer, url = [_ids(last)], _link(last, "newer")
    while url:
        html = client.get(url, headers=HX).text
        newer.append(_ids(html))
        url = _link(html, "newer")
    assert [i for page in reversed(newer) for i in page] == expected
    assert 'id="newer"' not in client.get("/audits/?action=test.", headers=HX).text


@pytest.mark.parametrize("per_page", [1, 7, 50])
def test_keyset_pages_by_any_size_cover_the_log_exactly(ctx, per_page):
    for i in range(23):
        record("test.sized", None, ("thing", i))
    db.session.commit()
    filters = AuditFilters.from_args(MultiDict({"action": "test.sized"}))
    expected = [e.id for e in _all_events() if e.action == "test.sized"]
    seen, cursor = [], Cursor()
    while True:
        page = events_page(filters, cursor, per_page)
        seen += [row.id for row in page.items]
        if page.older is None:
            break
        cursor = Cursor(before=page.older)
    assert seen == expected
    back, cursor = [], Cursor(after=expected[-1] - 1)
    while True:
        page = events_page(filters, cursor, per_page)
        back = [row.id for row in page.items] + back
        if page.newer is None:
            break
        cursor = Cursor(after=page.newer)
    assert back == expected


def test_the_page_runs_the_same_queries_whatever_its_length(client, as_role, ctx, count_queries):
    as_role("auditor")
    client.get("/audits/")  # the session's first request notes it was seen; later ones do not
    counts = []
    for n in (2, 80):
        for i in range(n):
            record("test.counted", None, ("thing", i), before={"n": i}, after={"n": i + 1})
        db.session.commit()
        with count_queries() as counter:
            response = client.get("/audits/?action=test.")
        assert response.status_code == 200
        counts.append(counter.count)
    assert counts[0] == counts[1]
    assert len(_ids(response.text)) == 50


def test_an_htmx_request_gets_only_the_results(client, as_role, log):
    as_role("auditor")
    full = client.get("/audits/")
    assert 'id="audit-filters"' in full.text and "<html" in full.text
    fragment = client.get("/audits/", headers=HX)
    assert fragment.status_code == 200
    assert 'id="audit-table"' in fragment.text
    assert 'id="audit-filters"' not in fragment.text and "<html" not in fragment.text


# -- one event -------------------------------------------------------------------------------


def test_the_event_page_shows_the_diff_hashes_and_links(client, as_role, ctx):
    admin = as_role("admin")
    person = make_user(role="requester", name="Pat")
    user_services.change_role(person, "agent", admin)
    event = _all_events()[0]
    assert event.action == "user.role_changed"
    html = client.get(f"/audits/{event.id}").text
    assert re.search(
        r"<th scope=\"row\">role</th>\s*<td><del>requester</del></td><td><ins>agent</ins>", html
    )
    assert event.hash in html and event.prev_hash in html
    assert f'href="/users/{person.id}" id="object-link"' in html
    assert f"/audits/?type=user&amp;id={person.id}" in html


def test_a_secret_shows_as_a_changed_fingerprint_never_in_clear(client, as_role, ctx):
    admin = as_role("admin")
    person = make_user(role="agent")
    temporary = user_services.admin_reset_password(person, admin)
    event = next(e for e in _all_events() if e.action == "user.password_reset_by_admin")
    html = client.get(f"/audits/{event.id}").text
    assert "secret changed" in html
    assert event.data["after"]["password"].startswith("hmac:")
    assert event.data["after"]["password"] in html
    assert temporary not in html
    assert temporary not in client.get("/audits/", headers=HX).text


def test_an_auditor_gets_no_link_to_pages_they_may_not_open(client, as_role, ctx):
    as_role("auditor")
    person = make_user()
    record("user.touched", None, person)
    db.session.commit()
    html = client.get(f"/audits/{_all_events()[0].id}").text
    assert 'id="object-link"' not in html and 'id="object-events"' in html


def test_missing_and_huge_event_ids_are_not_found(client, as_role, ctx):
    as_role("auditor")
    assert client.get("/audits/999999").status_code == 404
    assert client.get("/audits/99999999999999999999").status_code == 404


# -- who may look ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [("auditor", 200), ("admin", 200), ("agent", 403), ("approver", 403), ("requester", 403)],
)
def test_only_auditors_and_admins_read_the_log(client, as_role, log, role, status):
    as_role(role)
    assert client.get("/audits/").status_code == status
    assert client.get(f"/audits/{log[2][0].id}").status_code == status
    assert client.get("/audits/", headers=HX).status_code == status


def test_object_pages_link_to_their_events_for_readers_of_the_log(client, as_role, ctx):
    requester = make_user(role="requester")
    ticket = ticket_services.create_ticket(requester, "Printer", "jams")
    change = change_services.create_change(
        requester, "Renew", justification="x", implementation_plan="y", rollback_plan="z"
    )
    as_role("auditor")
    for url, link in [
        (f"/tickets/{ticket.id}", f"/audits/?type=ticket&amp;id={ticket.id}"),
        (f"/changes/{change.id}", f"/audits/?type=changerequest&amp;id={change.id}"),
    ]:
        assert link in client.get(url).text
    assert 'href="/audits/"' in client.get("/tickets/").text  # the nav item
    as_role("admin")
    assert f"/audits/?type=user&amp;id={requester.id}" in client.get(f"/users/{requester.id}").text
    as_role("agent")
    html = client.get(f"/tickets/{ticket.id}").text
    assert 'id="audit-link"' not in html and 'href="/audits/"' not in html


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-45", "is not a date"),
        ("to=yesterday", "is not a date"),
        ("from=0001-01-01", "must be a day between"),
        ("from=2026-03-10&to=2026-03-01", "end date is before the start date"),
        ("before=99999999999999999999", "is not an event number"),
        ("after=-5", "is not an event number"),
        ("actor=99999999999999", "is not a user id"),
        ("actor=%27%3B--", "is not a user id"),
        ("action=user.%25", "is not an action prefix"),
        ("action=%3Cscript%3E", "is not an action prefix"),
        ("type=User%20X", "is not an object type"),
        ("ip=999.1.1.1", "is not an IP address"),
    ],
)
def test_bad_input_gets_a_message_never_an_error(client, as_role, log, query, message):
    as_role("auditor")
    for headers in ({}, HX):
        response = client.get(f"/audits/?{query}", headers=headers)
        assert response.status_code == 200, query
        assert message in response.text, query
    assert "<script>" not in client.get(f"/audits/?{query}").text


def test_odd_but_harmless_values_are_just_searched(client, as_role, log):
    as_role("auditor")
    for query in ("id=" + "9" * 200, "id=%00x", "type=ticket&id=%27%20OR%201=1", "actor="):
        response = client.get(f"/audits/?{query}")
        assert response.status_code == 200
        assert "audit-problem" not in response.text


# -- export ----------------------------------------------------------------------------------


def test_the_export_holds_the_viewers_rows_for_a_filter(client, as_role, log):
    ana, bob, made = log
    as_role("auditor")
    query = f"actor={bob.id}&type=user"
    listed = _listed(client, query)
    assert listed
    assert 'name="kind" value="audit"' in client.get(f"/audits/?{query}").text
    rows = download(client, start(client, "audit", query))
    assert rows[0] == [
        "Id",
        "Time",
        "Actor",
        "Action",
        "Target type",
        "Target id",
        "IP",
        "User agent",
        "Data",
        "Hash",
    ]
    assert [int(r[0]) for r in rows[1:]] == listed
    first = db.session.get(AuditEvent, listed[0])
    assert rows[1][2] == bob.email and rows[1][8] == '{"after":{"n":26},"before":{"n":25}}'
    assert first.data == {"before": {"n": 25}, "after": {"n": 26}}
    assert rows[1][9] == first.hash


def test_only_readers_of_the_log_may_export_it(client, as_role, log):
    as_role("agent")
    response = client.post("/reports/exports", data={"kind": "audit", "query": ""})
    assert response.status_code == 403


def test_an_audit_export_defuses_and_zones_its_cells_on_both_writers(ctx, log):
    """A formula in an event's target is defused and times carry the reader's offset; on
    PostgreSQL the COPY writer gives the row-by-row writer's bytes (see written)."""
    record("auth.login_failed", None, ("email", "=cmd|' /C calc'!A0"), email="é漢字")
    db.session.commit()
    viewer = make_user(role="auditor", timezone="Asia/Kolkata")
    source = SOURCES["audit"]
    rows = parsed(written(source.plan(source.read_filters(MultiDict({})), viewer), "Asia/Kolkata"))
    newest = rows[0]
    assert newest[3] == "auth.login_failed" and newest[5] == "'=cmd|' /C calc'!A0"
    assert newest[1].endswith("+05:30") and json.loads(newest[8]) == {"email": "é漢字"}
