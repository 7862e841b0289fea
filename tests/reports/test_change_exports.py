"""The change list's export: the list's filters, the list's rows, with the votes."""

from __future__ import annotations

import re

import pytest

from portal.changes import approvals
from tests.changes.helpers import later, make_change, make_service, scheduled_change
from tests.factories import make_user, sign_in_client
from tests.reports.helpers import download, start

_HX = {"HX-Request": "true"}


def _listed(client, query: str) -> list[str]:
    html = client.get(f"/changes/?{query}", headers=_HX).text
    return [f"CR-{int(n):06d}" for n in re.findall(r'<td><a href="/changes/(\d+)"', html)]


@pytest.fixture
def board(ctx):
    mail = make_service("Mail")
    shop = make_service("Shop")
    requester = make_user(role="requester", name="Rhea Requester")
    approver = make_user(role="approver", name="Abe Approver")
    made = [make_change(requester, [mail], title=f"Draft {i}") for i in range(3)]
    made.append(make_change(requester, [shop], impact=3, likelihood=3, title="Big one"))
    approvals.submit(made[-1], requester)
    made.append(scheduled_change(later(3), later(3, 3), [shop], title="Scheduled one"))
    made.append(make_change(requester, [mail], type_="emergency", title="Urgent"))
    return requester, approver, mail, shop


FILTERS = ["", "status=draft", "type=emergency", "risk=high", "sort=oldest", "mine=1"]


@pytest.mark.parametrize("query", FILTERS)
def test_list_and_export_agree(client, board, query):
    requester, approver, mail, shop = board
    sign_in_client(client, requester)
    export = start(client, "changes", query)
    listed = _listed(client, query)
    assert listed  # every filter here matches something, so agreeing is not vacuous
    assert [r[0] for r in download(client, export)[1:]] == listed


def test_service_and_awaiting_filters_agree_and_votes_are_written(client, board):
    requester, approver, mail, shop = board
    sign_in_client(client, approver)
    for query in (f"service={shop.id}", "awaiting=me"):
        export = start(client, "changes", query)
        assert [r[0] for r in download(client, export)[1:]] == _listed(client, query)
    rows = download(client, start(client, "changes", "title=Scheduled"))
    header = rows[0]
    scheduled = next(r for r in rows[1:] if r[1] == "Scheduled one")
    assert re.fullmatch(r".+ \(approve, round 1\)", scheduled[header.index("Votes")])
    assert scheduled[header.index("Status")] == "Scheduled"
