"""A report's figures are counted once for everyone asking the same question, and again
as soon as a ticket is written."""

from __future__ import annotations

from portal.tickets import services as tickets
from tests.factories import make_user, sign_in_client

_HX = {"HX-Request": "true"}


def test_the_same_report_is_counted_once_and_again_after_a_write(client, ctx, count_queries):
    sign_in_client(client, make_user(role="admin"))
    requester = make_user(role="requester")
    tickets.create_ticket(requester, "Printer jams", "d")
    with count_queries() as first:
        page = client.get("/reports/service-desk", headers=_HX)
    with count_queries() as second:
        again = client.get("/reports/service-desk", headers=_HX)
    assert page.status_code == again.status_code == 200
    assert again.text == page.text
    # Only the session, the user and the team choices: no figure is counted again.
    assert second.count <= first.count - 7
    tickets.create_ticket(requester, "VPN drops", "d")
    with count_queries() as third:
        after = client.get("/reports/service-desk", headers=_HX)
    assert third.count == first.count
    assert after.text != page.text
