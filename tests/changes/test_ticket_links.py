"""The ticket page lists the change requests linked to its ticket: number (a link to the
change), title and status, only those the viewer may see, in one query."""

import re

from portal.changes import approvals
from portal.extensions import db
from portal.tickets import services as ticket_services
from tests.changes.helpers import make_change
from tests.factories import make_user, sign_in_client


def _linked(html: str) -> list[tuple[str, str]]:
    """(change page address, number) of each change in the ticket page's panel."""
    if 'id="linked-changes"' not in html:
        return []
    panel = html.split('id="linked-changes"')[1].split("</ul>")[0]
    return re.findall(r'<a href="(/changes/\d+)">(CR-\d+)</a>', panel)


def test_the_ticket_page_lists_its_changes_with_number_title_and_status(ctx, client, as_role):
    as_role("agent")
    ticket = ticket_services.create_ticket(make_user(), "Checkout is slow", "Since Monday")
    draft = make_change(title="Add an index to orders", tickets=[ticket])
    submitted = make_change(title="Scale the checkout pods", tickets=[ticket])
    approvals.submit(submitted, submitted.requester)
    make_change(title="Unrelated change")

    page = client.get(f"/tickets/{ticket.id}").text
    assert _linked(page) == [
        (f"/changes/{draft.id}", draft.number),
        (f"/changes/{submitted.id}", submitted.number),
    ]
    panel = page.split('id="linked-changes"')[1].split("</ul>")[0]
    assert "Add an index to orders" in panel and "Scale the checkout pods" in panel
    assert 'data-status="draft">Draft<' in panel
    assert 'data-status="in_review">In review<' in panel
    assert "Unrelated change" not in page


def test_a_ticket_without_changes_shows_no_panel(ctx, client, as_role):
    as_role("agent")
    ticket = ticket_services.create_ticket(make_user(), "Printer jammed", "Tray 2")
    page = client.get(f"/tickets/{ticket.id}")
    assert page.status_code == 200 and 'id="linked-changes"' not in page.text


def test_a_requester_sees_only_the_changes_they_may_open(app, ctx):
    requester = make_user(role="requester")
    ticket = ticket_services.create_ticket(requester, "VPN drops", "Every hour")
    theirs = make_change(requester, title="My VPN tweak", tickets=[ticket])
    others = make_change(make_user(role="agent"), title="Replace the VPN concentrator")
    others.tickets.append(ticket)
    db.session.commit()
    client = app.test_client()
    sign_in_client(client, requester)

    page = client.get(f"/tickets/{ticket.id}").text
    assert _linked(page) == [(f"/changes/{theirs.id}", theirs.number)]
    assert "Replace the VPN concentrator" not in page
    assert client.get(f"/changes/{others.id}").status_code == 403

    # An agent, who sees every change, sees both on the same ticket.
    agent_client = app.test_client()
    sign_in_client(agent_client, make_user(role="agent"))
    agent_page = agent_client.get(f"/tickets/{ticket.id}").text
    assert [n for _, n in _linked(agent_page)] == [theirs.number, others.number]


def test_the_links_are_one_query_however_many(app, ctx, count_queries):
    requester = make_user(role="requester")
    ticket = ticket_services.create_ticket(requester, "Mail bounces", "To partners")
    client = app.test_client()
    sign_in_client(client, requester)

    def statements() -> list[str]:
        client.get(f"/tickets/{ticket.id}")  # shared parts (the incident banner) cached
        with count_queries() as counter:
            assert client.get(f"/tickets/{ticket.id}").status_code == 200
        return counter.statements

    none = statements()
    make_change(requester, title="First", tickets=[ticket])
    one = statements()
    for n in range(3):
        make_change(requester, title=f"More {n}", tickets=[ticket])
    many = statements()
    assert len(_linked(client.get(f"/tickets/{ticket.id}").text)) == 4
    assert len(none) == len(one) == len(many), many
    assert len([s for s in many if "change_tickets" in s]) == 1
