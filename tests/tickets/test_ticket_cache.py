"""The list's status counts and the incident banner are shared until a ticket changes:
reused while nothing was written, asked again after any committed write to a ticket (one
by one or in bulk), never shared between people who see different tickets, and still
right when Redis is down."""

from __future__ import annotations

import re

import pytest
from redis import Redis
from sqlalchemy import update

from portal.extensions import db
from portal.tickets import services
from portal.tickets.models import Ticket
from tests.conftest import free_port
from tests.factories import make_user, sign_in_client


def _counts(html: str) -> dict[str, int]:
    return {s: int(n) for s, n in re.findall(r'data-status="(\w+)">(\d+)<', html)}


def _list(client, count_queries, url: str = "/tickets/") -> tuple[dict[str, int], int]:
    with count_queries() as counter:
        response = client.get(url)
    assert response.status_code == 200
    counted = sum("count(*)" in statement for statement in counter.statements)
    return _counts(response.text), counted


@pytest.fixture
def agent(ctx, client):
    user = make_user(role="agent")
    sign_in_client(client, user)
    return user


@pytest.fixture
def requester(ctx):
    return make_user(role="requester")


def test_counts_are_reused_until_a_ticket_changes(client, count_queries, agent, requester):
    tickets = [services.create_ticket(requester, f"Printer {i}", "jammed") for i in range(3)]
    first, asked = _list(client, count_queries)
    again, asked_again = _list(client, count_queries)
    assert first["new"] == 3 and again == first
    assert (asked, asked_again) == (1, 0)

    services.change_status(tickets[0], "in_progress", agent)
    after, asked_after = _list(client, count_queries)
    assert after["new"] == 2 and after["in_progress"] == 1
    assert asked_after == 1


def test_a_bulk_statement_drops_the_counts_too(client, count_queries, agent, requester):
    services.create_ticket(requester, "Laptop", "slow")
    assert _list(client, count_queries)[0]["new"] == 1
    db.session.execute(update(Ticket).values(status="closed"))
    db.session.commit()
    counts = _list(client, count_queries)[0]
    assert counts["new"] == 0 and counts["closed"] == 1


def test_a_rolled_back_write_keeps_the_counts(client, count_queries, agent, requester):
    services.create_ticket(requester, "Laptop", "slow")
    _list(client, count_queries)
    ticket = db.session.scalars(db.select(Ticket)).one()
    ticket.status = "closed"
    db.session.flush()
    db.session.rollback()
    assert _list(client, count_queries)[0]["new"] == 1


def test_each_filter_has_its_own_counts(client, count_queries, agent, requester):
    services.create_ticket(requester, "Invoice wrong", "billing", priority="high")
    services.create_ticket(requester, "Printer", "jammed", priority="low")
    assert _list(client, count_queries, "/tickets/?priority=high")[0]["new"] == 1
    assert _list(client, count_queries, "/tickets/?priority=low")[0]["new"] == 1
    assert _list(client, count_queries, "/tickets/")[0]["new"] == 2


def test_requesters_never_see_counts_cached_for_someone_else(app, client, count_queries, agent):
    rita, rob = make_user(role="requester"), make_user(role="requester")
    services.create_ticket(rita, "Rita's laptop", "slow")
    services.create_ticket(rita, "Rita's printer", "jammed")
    services.create_ticket(rob, "Rob's badge", "lost")
    assert _list(client, count_queries)[0]["new"] == 3  # the agent's, cached
    for person, expected in ((rita, 2), (rob, 1)):
        own = app.test_client()
        sign_in_client(own, person)
        assert _list(own, count_queries)[0]["new"] == expected
        assert _list(own, count_queries, "/tickets/?mine=1")[0]["new"] == expected


def test_a_search_keeps_its_counts_through_its_status_tabs(client, count_queries, agent, requester):
    services.create_ticket(requester, "Printer jammed", "paper")
    services.create_ticket(requester, "Laptop slow", "fan")
    first, asked = _list(client, count_queries, "/tickets/?q=printer")
    tab, asked_again = _list(client, count_queries, "/tickets/?q=printer&status=new")
    other, asked_other = _list(client, count_queries, "/tickets/?q=laptop")
    assert first == tab and first["new"] == 1 and other["new"] == 1
    assert (asked, asked_again, asked_other) == (1, 0, 1)


def test_zero_seconds_counts_every_time(client, count_queries, settings, agent, requester):
    settings(SHARED_CACHE_SECONDS=0)
    services.create_ticket(requester, "Printer", "jammed")
    assert _list(client, count_queries)[1] == _list(client, count_queries)[1] == 1


def test_without_redis_the_counts_are_counted(
    app, client, count_queries, monkeypatch, agent, requester
):
    services.create_ticket(requester, "Printer", "jammed")
    down = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)
    monkeypatch.setitem(app.extensions, "portal.redis", down)
    counts, asked = _list(client, count_queries)
    assert counts["new"] == 1
    assert _list(client, count_queries) == (counts, asked)


def _banner(client) -> list[str]:
    html = client.get("/tickets/").text
    return re.findall(r'class="incident-banner-item">.*?>(T-\d+)</a>', html, re.S)


def test_the_banner_follows_incidents_as_they_open_and_close(client, agent, requester):
    assert _banner(client) == []
    incident = services.create_ticket(requester, "Checkout down", "500s", "incident", "critical")
    assert _banner(client) == [incident.number]
    services.change_status(incident, "resolved", agent)
    assert _banner(client) == []


def test_a_requester_is_never_shown_the_desks_banner(app, client, agent, requester):
    other = make_user(role="requester")
    theirs = services.create_ticket(other, "Payroll down", "errors", "incident", "high")
    assert _banner(client) == [theirs.number]  # the agent's answer, now cached
    own = app.test_client()
    sign_in_client(own, requester)
    assert _banner(own) == []


def test_team_and_agent_choices_follow_their_tables(client, agent, requester):
    from portal.tickets.setup_models import Team

    colleague = make_user(role="agent", name="Carla Colleague")
    page = client.get("/tickets/").text
    assert "Carla Colleague" in page and ">Billing<" in page
    team = db.session.scalars(db.select(Team).where(Team.name == "Billing")).one()
    team.name = "Invoicing"
    colleague.is_active = False
    db.session.commit()
    page = client.get("/tickets/").text
    assert ">Invoicing<" in page and ">Billing<" not in page
    assert "Carla Colleague" not in page
