"""Exports from the lists: what the list shows, all its pages, as a clean CSV, downloaded
only by the person who may, with every step on the audit trail."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.audits.models import AuditEvent
from portal.extensions import db
from portal.reports import services, tasks
from portal.reports.models import Export
from portal.tickets import services as tickets
from portal.tickets.models import Ticket
from portal.tickets.setup_models import Team
from portal.timeutil import utcnow
from tests.factories import make_user, sign_in_client
from tests.reports.helpers import download, start

_HX = {"HX-Request": "true"}


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _listed(client, query: str) -> list[str]:
    """Ticket numbers on every page of the list under `query`, in order."""
    numbers, page = [], 1
    while True:
        response = client.get(f"/tickets/?{query}&page={page}", headers=_HX)
        assert response.status_code == 200
        found = [int(i) for i in re.findall(r'<td><a href="/tickets/(\d+)">', response.text)]
        numbers += [f"T-{n:06d}" for n in found]
        if 'aria-label="Pages"' not in response.text or f"Page {page} of {page}<" in response.text:
            return numbers
        page += 1


@pytest.fixture
def people(ctx):
    rita = make_user(role="requester", name="Rita Requester")
    omar = make_user(role="requester", name="Omar Other")
    ana = make_user(role="agent", name="Ana Agent")
    return rita, omar, ana


@pytest.fixture
def desk(people):
    """Tickets across statuses, priorities, types, teams and requesters."""
    rita, omar, ana = people
    # Ranked first by a search for "printer" although it is the oldest: the export must
    # keep the list's ranked order, not the newest-first one.
    made = [tickets.create_ticket(rita, "Printer printer printer", "The printer, again")]
    for i in range(1, 30):
        requester = rita if i % 3 else omar
        ticket = tickets.create_ticket(
            requester,
            f"Printer {i} jams" if i % 2 else f"VPN drops {i}",
            "details",
            type_="incident" if i % 5 == 0 else "request",
            priority=("critical", "high", "medium", "low")[i % 4],
        )
        made.append(ticket)
    for ticket in made[:8]:
        tickets.assign(ticket, ana, ana)
    for ticket in made[:3]:
        tickets.change_status(ticket, "in_progress", ana)
    return made


def test_an_agent_exports_the_filtered_list_and_gets_exactly_its_rows(client, people, desk):
    rita, omar, ana = people
    sign_in_client(client, ana)
    export = start(client, "tickets", "priority=high&sort=oldest")
    assert export.status == "done"
    rows = download(client, export)
    header, body = rows[0], rows[1:]
    assert header[:3] == ["Number", "Type", "Subject"]
    assert "Business minutes to first response" in header
    assert [r[0] for r in body] == _listed(client, "priority=high&sort=oldest")
    assert {r[header.index("Priority")] for r in body} == {"high"}
    assert export.rows_done == len(body) == export.rows_total
    page = client.get(f"/reports/exports/{export.id}")
    assert f'<strong id="export-rows">{len(body)}</strong> rows' in page.text


FILTERS = [
    "",
    "status=open",
    "status=in_progress",
    "status=new&priority=low",
    "type=incident",
    "assignee=none",
    "mine=1",
    "sla=on_track",
    "q=printer",
    "q=vpn&sort=oldest",
    "sort=priority",
    "sort=updated",
    "sort=due",
    "priority=bogus&status=nope",
]


@pytest.mark.parametrize("query", FILTERS)
def test_list_and_export_agree_for_every_filter(client, people, desk, query):
    sign_in_client(client, people[2])
    export = start(client, "tickets", query)
    assert [r[0] for r in download(client, export)[1:]] == _listed(client, query)


def test_team_and_assignee_filters_agree_too(client, people, desk):
    ana = people[2]
    sign_in_client(client, ana)
    team_id = db.session.scalar(select(Team.id).order_by(Team.id).limit(1))
    for query in (f"team={team_id}", f"assignee={ana.id}"):
        export = start(client, "tickets", query)
        assert [r[0] for r in download(client, export)[1:]] == _listed(client, query)


def test_a_requesters_export_holds_only_their_own_tickets(client, people, desk):
    rita, omar, _ = people
    sign_in_client(client, omar)
    export = start(client, "tickets", "")
    numbers = [r[0] for r in download(client, export)[1:]]
    own = db.session.scalars(
        select(Ticket.id).where(Ticket.requester_id == omar.id).order_by(Ticket.id.desc())
    ).all()
    assert numbers == [f"T-{n:06d}" for n in own]
    assert numbers == _listed(client, "")
    # Asking for someone else's tickets by a filter changes nothing.
    export = start(client, "tickets", f"assignee={people[2].id}&q=printer")
    assert all(r[0] in numbers for r in download(client, export)[1:])


def test_a_formula_in_a_subject_is_defused(client, people):
    rita, _, ana = people
    tickets.create_ticket(rita, '=HYPERLINK("http://evil.example","x")', "d")
    tickets.create_ticket(rita, "+1 for the new laptop", "d")
    tickets.create_ticket(rita, "@here printer", "d")
    tickets.create_ticket(rita, "-5 degrees in the server room", "d")
    sign_in_client(client, ana)
    rows = download(client, start(client, "tickets", ""))
    subjects = {r[2] for r in rows[1:]}
    assert subjects == {
        '\'=HYPERLINK("http://evil.example","x")',
        "'+1 for the new laptop",
        "'@here printer",
        "'-5 degrees in the server room",
    }


def test_times_are_iso_8601_in_the_readers_zone_with_its_offset(client, people):
    rita, _, _ = people
    ticket = tickets.create_ticket(rita, "Clock check", "d")
    ticket.created_at = ticket.created_at.replace(month=1, day=15, hour=12, minute=0, second=5)
    db.session.commit()
    paris = make_user(role="agent", timezone="Europe/Paris")
    sign_in_client(client, paris)
    export = start(client, "tickets", "")
    rows = download(client, export)
    created = rows[1][rows[0].index("Created")]
    assert created == f"{ticket.created_at.year}-01-15T13:00:05+01:00"
    assert export.timezone == "Europe/Paris"


def test_an_export_of_no_rows_is_the_header_alone(client, people, desk):
    sign_in_client(client, people[2])
    export = start(client, "tickets", "q=nothingmatchesthis")
    rows = download(client, export)
    assert len(rows) == 1 and rows[0][0] == "Number"
    assert export.rows_done == 0
    assert (
        '<strong id="export-rows">0</strong> rows'
        in client.get(f"/reports/exports/{export.id}").text
    )


def test_the_ticket_list_has_an_export_button_with_its_filters(client, people, desk):
    sign_in_client(client, people[2])
    html = client.get("/tickets/?status=open&priority=high", headers=_HX).text
    assert '<option value="tickets" selected>Tickets</option>' in html
    assert '<option value="replies">Their replies</option>' in html
    assert 'name="query" value="status=open&amp;priority=high"' in html


def test_the_users_list_has_an_export_button_with_its_filters(client, people):
    sign_in_client(client, make_user(role="admin"))
    html = client.get("/users/?role=requester&q=o", headers=_HX).text
    assert 'name="kind" value="users"' in html
    assert 'name="query" value="role=requester&amp;q=o"' in html


def test_the_changes_list_has_an_export_button_with_its_filters(client, people):
    sign_in_client(client, people[2])
    html = client.get("/changes/?status=draft&mine=1", headers=_HX).text
    assert 'name="kind" value="changes"' in html
    assert 'name="query" value="status=draft&amp;mine=1"' in html


def test_changes_and_users_export_through_their_lists(client, people):
    admin = make_user(role="admin", name="Ada Admin", email="ada@example.com")
    sign_in_client(client, admin)
    rows = download(client, start(client, "users", "role=requester"))
    assert rows[0][:4] == ["Name", "Email", "Role", "Status"]
    assert sorted(r[0] for r in rows[1:]) == ["Omar Other", "Rita Requester"]
    rows = download(client, start(client, "changes", ""))
    assert rows[0][:2] == ["Number", "Title"] and len(rows) == 1


def test_exports_ask_for_the_lists_permission(client, people):
    sign_in_client(client, people[0])  # a requester may not see the users list
    response = client.post("/reports/exports", data={"kind": "users", "query": ""})
    assert response.status_code == 403
    response = client.post("/reports/exports", data={"kind": "passwords", "query": ""})
    assert response.status_code == 422
    assert db.session.scalar(select(Export.id)) is None


def test_each_step_is_audited(client, people, desk):
    sign_in_client(client, people[2])
    export = start(client, "tickets", "status=open")
    download(client, export)
    requested = _events("export.requested")
    assert [e.data["filters"] for e in requested] == ["status=open"]
    assert _events("export.completed")[0].data["rows"] == export.rows_done
    downloaded = _events("export.downloaded")
    assert downloaded[0].actor_id == people[2].id
    assert downloaded[0].data["sha256"] == export.sha256


# -- who may download ------------------------------------------------------------------------


def test_someone_elses_export_is_not_found_but_an_admin_may_download_it(client, people, desk):
    rita, omar, ana = people
    sign_in_client(client, ana)
    export = start(client, "tickets", "")
    sign_in_client(client, omar)
    assert client.get(f"/reports/exports/{export.id}").status_code == 404
    assert client.get(f"/reports/exports/{export.id}/download").status_code == 404
    sign_in_client(client, make_user(role="admin"))
    assert len(download(client, export)) == 31


def test_an_owner_whose_role_shrank_gets_nothing(client, people, desk):
    ana = people[2]
    sign_in_client(client, ana)
    export = start(client, "tickets", "")
    ana.role = "requester"
    db.session.commit()
    response = client.get(f"/reports/exports/{export.id}/download")
    assert response.status_code == 403
    assert not _events("export.downloaded")


def test_an_expired_export_answers_410_and_its_file_is_gone(app, client, people, desk):
    sign_in_client(client, people[2])
    export = start(client, "tickets", "")
    key = export.file_key
    export.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert "1 expired" in tasks.cleanup_exports()
    db.session.expire_all()
    assert export.status == "expired" and export.file_key is None
    from portal import storage

    assert not storage.exists(key)
    response = client.get(f"/reports/exports/{export.id}/download")
    assert response.status_code == 410
    assert "expired" in response.text
    assert _events("export.expired")


# -- cancel and retry ------------------------------------------------------------------------


def _queued(owner, kind="tickets", query="") -> Export:
    export = Export(
        job_id=f"job-{owner.id}-{kind}",
        kind=kind,
        requested_by_id=owner.id,
        query=query,
        scope="all",
        timezone="UTC",
    )
    db.session.add(export)
    db.session.commit()
    return export


def test_a_queued_export_can_be_cancelled_and_its_job_then_does_nothing(client, people, desk):
    ana = people[2]
    export = _queued(ana)
    sign_in_client(client, ana)
    response = client.post(f"/reports/exports/{export.id}/cancel")
    assert response.status_code == 302
    db.session.expire_all()
    assert export.status == "cancelled"
    assert tasks.build_export(export.id) == "not queued"
    assert export.file_key is None
    assert "was cancelled" in client.get(f"/reports/exports/{export.id}").text
    assert client.post(f"/reports/exports/{export.id}/cancel").status_code == 409


def test_a_running_export_stops_at_the_cancel_and_keeps_no_file(
    app, client, people, desk, monkeypatch
):
    from portal.reports import csv_writer

    ana = people[2]
    export = _queued(ana)
    monkeypatch.setattr(csv_writer, "REPORT_EVERY_SECONDS", 0)
    monkeypatch.setattr(csv_writer, "BATCH_ROWS", 5)
    from portal import storage

    folder = storage._root() / tasks.STORAGE_PREFIX
    before = set(folder.iterdir()) if folder.exists() else set()
    services.cancel_export(export, ana)
    export.status = "queued"  # as if the cancel reached the job only through its signal
    db.session.commit()
    assert tasks.build_export(export.id) == "cancelled"
    db.session.expire_all()
    assert export.status == "cancelled" and export.file_key is None
    assert set(folder.iterdir()) == before  # not even a partial file


def test_a_failed_export_shows_its_error_and_can_be_retried(client, people, desk, monkeypatch):
    ana = people[2]
    sign_in_client(client, ana)
    from portal.reports import csv_writer

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(csv_writer, "write_csv", broken)
    # The job fails (RQ records it); the request that asked still answers.
    export = start(client, "tickets", "")
    db.session.expire_all()
    assert export.status == "failed" and "disk full" in export.error
    page = client.get(f"/reports/exports/{export.id}")
    assert "The export failed: RuntimeError: disk full" in page.text
    assert client.get(f"/reports/exports/{export.id}/download").status_code == 404
    monkeypatch.undo()
    sign_in_client(client, ana)
    response = client.post(f"/reports/exports/{export.id}/retry")
    assert response.status_code == 302
    db.session.expire_all()
    assert export.status == "done"
    assert len(download(client, export)) == 31
    assert client.post(f"/reports/exports/{export.id}/retry").status_code == 409


def test_the_job_runs_once_even_when_delivered_twice(client, people, desk):
    sign_in_client(client, people[2])
    export = start(client, "tickets", "")
    key = export.file_key
    assert tasks.build_export(export.id) == "not queued"
    db.session.expire_all()
    assert export.file_key == key
    assert len(_events("export.completed")) == 1


def test_progress_is_shown_while_it_runs(client, people, desk):
    ana = people[2]
    export = _queued(ana)
    export.status, export.rows_total, export.rows_done = "running", 200, 50
    db.session.commit()
    sign_in_client(client, ana)
    html = client.get(f"/reports/exports/{export.id}", headers=_HX).text
    assert 'hx-trigger="every 1s"' in html
    assert "Writing rows: 50 of 200" in html
    assert 'value="25"' in html
    assert "<html" not in html


def test_my_exports_lists_mine_only(client, people, desk):
    rita, omar, ana = people
    sign_in_client(client, omar)
    assert 'id="no-exports"' in client.get("/reports/exports").text
    start(client, "tickets", "")
    sign_in_client(client, ana)
    mine = start(client, "tickets", "status=open")
    html = client.get("/reports/exports").text
    assert html.count('id="export-row-') == 1
    assert f'id="export-row-{mine.id}"' in html
    assert "status=open" in html


# -- bad input -------------------------------------------------------------------------------

from tests.test_bad_input import BAD_VALUES  # noqa: E402


@pytest.mark.parametrize(("value_id", "value"), BAD_VALUES, ids=[v[0] for v in BAD_VALUES])
def test_a_bad_export_form_gets_a_message_never_a_500(client, people, value_id, value):
    sign_in_client(client, people[2])
    response = client.post("/reports/exports", data={"kind": value, "query": ""})
    assert response.status_code == 422
    assert db.session.scalar(select(Export.id)) is None
    # A bad query string is a list filter like any other: dropped, the export still made.
    response = client.post("/reports/exports", data={"kind": "tickets", "query": value})
    assert response.status_code == 302
    assert db.session.scalar(select(Export.status)) == "done"
