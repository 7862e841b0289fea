"""The ticket list's other exports: the replies of its tickets (internal notes only for
those who may read them) and its incidents with their reviews."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.extensions import db
from portal.tickets import incidents
from portal.tickets import services as tickets
from portal.timeutil import utcnow
from tests.factories import make_user, sign_in_client
from tests.reports.helpers import download, start


@pytest.fixture
def desk(ctx):
    rita = make_user(role="requester", name="Rita Requester")
    omar = make_user(role="requester", name="Omar Other")
    ana = make_user(role="agent", name="Ana Agent")
    mine = tickets.create_ticket(rita, "Printer jams", "d")
    tickets.add_reply(mine, ana, "Which floor?\nAnd which tray?")
    tickets.add_reply(mine, ana, "Looks like the fuser again", internal=True)
    tickets.add_reply(mine, rita, "=2+2 floor")
    other = tickets.create_ticket(omar, "VPN drops", "d")
    tickets.add_reply(other, ana, "Try the new client")
    outage = tickets.create_ticket(rita, "Mail is down", "d", type_="incident", priority="high")
    tickets.assign(outage, ana, ana)
    incidents.save_review(outage, ana, "10:00 alert; 10:20 failover", "Disk full on mx1")
    incidents.add_action_item(
        outage, ana, "Alert on disk at 80 %", ana, utcnow().date() + timedelta(days=3)
    )
    late = incidents.add_action_item(outage, ana, "Rotate logs", ana, utcnow().date())
    late.due_on -= timedelta(days=1)  # the service refuses a past date: time has passed since
    db.session.commit()
    tickets.create_ticket(omar, "Chat is down", "d", type_="incident", priority="critical")
    return rita, omar, ana, mine, other, outage


def _by_header(rows: list[list[str]]) -> list[dict[str, str]]:
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def test_an_agent_exports_every_reply_including_internal_notes(client, desk):
    rita, omar, ana, mine, other, outage = desk
    sign_in_client(client, ana)
    rows = _by_header(download(client, start(client, "replies", "sort=oldest")))
    assert [(r["Ticket"], r["Text"], r["Internal note"]) for r in rows] == [
        (mine.number, "Which floor?\nAnd which tray?", "no"),
        (mine.number, "Looks like the fuser again", "yes"),
        (mine.number, "'=2+2 floor", "no"),
        (other.number, "Try the new client", "no"),
    ]
    assert rows[0]["Author"] == "Ana Agent"


def test_a_requester_exports_the_public_replies_of_their_own_tickets(client, desk):
    rita, omar, ana, mine, other, outage = desk
    sign_in_client(client, rita)
    export = start(client, "replies", "")
    rows = _by_header(download(client, export))
    assert [r["Text"] for r in rows] == ["Which floor?\nAnd which tray?", "'=2+2 floor"]
    assert export.scope == f"own:{rita.id}"
    # The same filters as the list: another status, no replies.
    assert len(download(client, start(client, "replies", "status=closed"))) == 1


def test_the_incident_export_holds_the_lists_incidents_with_their_reviews(client, desk):
    rita, omar, ana, mine, other, outage = desk
    sign_in_client(client, ana)
    rows = _by_header(download(client, start(client, "incidents", "sort=oldest")))
    assert [r["Subject"] for r in rows] == ["Mail is down", "Chat is down"]
    mail, chat = rows
    assert mail["Severity"] == "P1" and chat["Severity"] == "P0"
    assert mail["Review written"] == "yes" and mail["Root cause"] == "Disk full on mx1"
    assert (mail["Action items"], mail["Action items open"], mail["Action items overdue"]) == (
        "2",
        "2",
        "1",
    )
    assert chat["Review written"] == "no" and chat["Action items"] == ""
    # A filter the list has narrows it: only the critical one.
    rows = _by_header(download(client, start(client, "incidents", "priority=critical")))
    assert [r["Subject"] for r in rows] == ["Chat is down"]
