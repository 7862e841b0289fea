"""Blocked addresses: an address, a /24 and an IPv6 /64 are refused with 403 (and counted)
while their neighbours pass; a block ends at its expiry or when lifted; the admins' page
adds, lists and lifts blocks with audit events, refuses bad input at its field, and
never lets an admin block their own address."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from markupsafe import escape
from sqlalchemy import func, select, update

from portal import cache
from portal.audits import block_guard
from portal.audits.block_models import IpBlock
from portal.audits.blocks import add_block
from portal.audits.models import AuditEvent
from portal.extensions import db
from portal.timeutil import to_zone, utcnow
from tests.conftest import row_counts
from tests.factories import make_user

BLOCKED = "Requests from your address are blocked."


def get_from(client, address: str, url: str = "/login", **kwargs):  # type: ignore[no-untyped-def]
    return client.get(url, environ_base={"REMOTE_ADDR": address}, **kwargs)


def is_blocked(client, address: str, url: str = "/login") -> bool:  # type: ignore[no-untyped-def]
    response = get_from(client, address, url)
    if response.status_code == 403 and BLOCKED in response.text:
        return True
    assert BLOCKED not in response.text
    return False


@pytest.fixture
def admin(ctx):  # type: ignore[no-untyped-def]
    return make_user(role="admin", name="Blocking Admin")


def block(admin, network: str, hours: int = 1) -> IpBlock:  # type: ignore[no-untyped-def]
    return add_block(network, "Credential stuffing", utcnow() + timedelta(hours=hours), admin, None)


def events(action: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


# -- what is refused ---------------------------------------------------------------------------


def test_a_single_address_is_refused_and_its_neighbours_pass(client, admin):
    block(admin, "203.0.113.7")
    response = get_from(client, "203.0.113.7")
    assert response.status_code == 403
    assert BLOCKED in response.text
    assert not is_blocked(client, "203.0.113.8")
    assert not is_blocked(client, "203.0.113.6")
    assert get_from(client, "203.0.113.8").status_code == 200


def test_a_range_is_refused_whole_and_stored_normalised(client, admin):
    row = block(admin, "198.51.100.77/24")  # host bits are dropped, as strict=False reads it
    assert row.network == "198.51.100.0/24"
    assert is_blocked(client, "198.51.100.0")
    assert is_blocked(client, "198.51.100.1")
    assert is_blocked(client, "198.51.100.255")
    assert not is_blocked(client, "198.51.101.1")
    assert not is_blocked(client, "198.51.99.255")


def test_an_ipv6_slash_64_is_refused_and_the_next_one_passes(client, admin):
    row = block(admin, "2001:DB8:1:2::/64")
    assert row.network == "2001:db8:1:2::/64"
    assert is_blocked(client, "2001:db8:1:2::1")
    assert is_blocked(client, "2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert not is_blocked(client, "2001:db8:1:3::1")
    assert not is_blocked(client, "203.0.113.1")  # another family never matches


def test_an_ipv4_address_carried_in_ipv6_is_still_refused(client, admin):
    block(admin, "203.0.113.7/32")
    assert is_blocked(client, "::ffff:203.0.113.7")


def test_the_block_ends_at_its_expiry(client, admin):
    row = block(admin, "203.0.113.0/24", hours=2)
    assert is_blocked(client, "203.0.113.9")
    row.expires_at = utcnow() - timedelta(seconds=1)  # the clock moved past it
    db.session.commit()
    assert not is_blocked(client, "203.0.113.9")
    assert get_from(client, "203.0.113.9").status_code == 200


def test_blocked_requests_are_refused_before_csrf_the_rate_limit_and_sign_in(client, admin, csrf):
    block(admin, "203.0.113.7")
    ip = {"REMOTE_ADDR": "203.0.113.7"}
    before = row_counts()
    # No CSRF token: a 400 if anything ran before the block.
    login = client.post("/login", data={"email": "x@example.com"}, environ_base=ip)
    assert login.status_code == 403 and BLOCKED in login.text
    assert client.get("/static/app.css", environ_base=ip).status_code == 403
    assert client.get("/no-such-page", environ_base=ip).status_code == 403
    api = client.get("/api/health", environ_base=ip)
    assert api.status_code == 403
    assert api.get_json() == {"error": "Forbidden", "message": BLOCKED, "status": 403}
    # htmx would swap the page into a fragment: it reloads instead, and meets the block.
    hx = client.get("/tickets/", headers={"HX-Request": "true"}, environ_base=ip)
    assert hx.status_code == 403 and hx.headers["HX-Refresh"] == "true"
    # Nothing was written but the hit count (no failed sign-in, no session, no event).
    after = row_counts()
    assert after == before


def test_the_blocked_page_stands_alone(client, admin):
    """Its stylesheets would be refused too: the page links nothing of the portal's."""
    block(admin, "203.0.113.7")
    page = get_from(client, "203.0.113.7", "/")
    assert "/static/" not in page.text
    assert page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"


# -- hits --------------------------------------------------------------------------------------


def test_hits_are_counted_without_a_row_write_per_request(client, admin, count_queries):
    row = block(admin, "203.0.113.7")
    assert is_blocked(client, "203.0.113.7")  # the first hit also writes what was counted
    db.session.refresh(row)
    assert row.hits == 1
    with count_queries() as counted:
        for _ in range(4):
            assert is_blocked(client, "203.0.113.7")
    writes = [s for s in counted.statements if s.lstrip().upper().startswith("UPDATE")]
    assert writes == []  # counted in Redis until the next flush is due
    db.session.refresh(row)
    assert row.hits == 1
    assert block_guard.pending_hits([row.id]) == {row.id: 4}

    assert block_guard.flush_hits() == 4
    db.session.refresh(row)
    assert row.hits == 5
    assert block_guard.pending_hits([row.id]) == {}


def test_the_list_shows_written_and_pending_hits_together(client, admin, as_role):
    row = block(admin, "203.0.113.7")
    for _ in range(3):
        assert is_blocked(client, "203.0.113.7")
    as_role("admin")
    page = client.get("/audits/blocks")
    line = re.search(rf'<tr id="block-{row.id}">(.*?)</tr>', page.text, re.S)
    assert line is not None
    assert '<td class="block-hits">3</td>' in line.group(1)


def test_the_narrowest_covering_block_gets_the_hit(client, admin):
    wide = block(admin, "203.0.113.0/24")
    narrow = block(admin, "203.0.113.7/32")
    assert is_blocked(client, "203.0.113.7")
    assert is_blocked(client, "203.0.113.8")
    block_guard.flush_hits()
    db.session.refresh(wide)
    db.session.refresh(narrow)
    assert (narrow.hits, wide.hits) == (1, 1)


# -- sharing the list --------------------------------------------------------------------------


def _block_reads(statements: list[str]) -> int:
    return sum("FROM ip_blocks" in s for s in statements)


def test_the_list_is_read_once_and_dropped_on_a_write(client, admin, count_queries):
    with count_queries() as first:
        assert not is_blocked(client, "203.0.113.7")
    with count_queries() as again:
        assert not is_blocked(client, "203.0.113.7")
    assert (_block_reads(first.statements), _block_reads(again.statements)) == (1, 0)
    block(admin, "203.0.113.7")  # the commit moves the generation on
    assert is_blocked(client, "203.0.113.7")
    with count_queries() as blocked:
        assert is_blocked(client, "203.0.113.7")
    # A refused request asks nothing of the database: not the list, not the session.
    assert blocked.statements == []


def test_the_list_survives_clearing_the_answers_cache(client, admin, count_queries):
    """Every request asks for it: clearing portal/cache.py's answers must not send them
    all to the database."""
    block(admin, "203.0.113.7")
    assert is_blocked(client, "203.0.113.7")
    cache.clear()
    with count_queries() as after:
        assert is_blocked(client, "203.0.113.7")
        assert not is_blocked(client, "203.0.113.8")
    assert _block_reads(after.statements) == 0


def test_a_write_the_orm_makes_in_bulk_moves_the_generation_too(client, admin):
    row = block(admin, "203.0.113.7")
    assert is_blocked(client, "203.0.113.7")
    db.session.execute(update(IpBlock).where(IpBlock.id == row.id).values(lifted_at=utcnow()))
    db.session.commit()
    assert not is_blocked(client, "203.0.113.7")


def test_a_rolled_back_write_keeps_the_list(client, admin):
    row = block(admin, "203.0.113.7")
    assert is_blocked(client, "203.0.113.7")
    row.lifted_at = utcnow()
    db.session.flush()
    db.session.rollback()
    assert is_blocked(client, "203.0.113.7")


def test_without_a_shared_cache_every_request_reads_the_rows(
    client, admin, settings, count_queries
):
    # SHARED_CACHE_SECONDS=0, the default without Redis: processes could not tell each
    # other of a new block, so each request reads the active rows.
    settings(SHARED_CACHE_SECONDS=0)
    with count_queries() as first:
        assert not is_blocked(client, "203.0.113.7")
    with count_queries() as again:
        assert not is_blocked(client, "203.0.113.7")
    assert _block_reads(first.statements) == _block_reads(again.statements) == 1


# -- the page ----------------------------------------------------------------------------------


def _form(**values: str) -> dict[str, str]:
    data = {"network": "203.0.113.0/24", "reason": "Password spraying", "duration": "24"}
    data["unit"] = "hours"
    data.update(values)
    return data


def test_an_admin_blocks_a_range_from_the_page(client, as_role):
    me = as_role("admin")
    response = client.post("/audits/blocks", data=_form())
    assert response.status_code == 302
    page = client.get(response.headers["Location"])
    assert "Requests from 203.0.113.0/24 are blocked." in page.text
    assert "Password spraying" in page.text
    row = db.session.scalars(select(IpBlock)).one()
    assert row.created_by_id == me.id
    assert timedelta(hours=23, minutes=59) < row.expires_at - utcnow() <= timedelta(hours=24)
    (event,) = events("ip.blocked")
    assert event.actor_id == me.id
    assert (event.target_type, event.target_id) == ("ipblock", str(row.id))
    assert event.data["network"] == "203.0.113.0/24"
    assert event.data["reason"] == "Password spraying"
    assert is_blocked(client, "203.0.113.200")


def test_a_duration_in_days(client, as_role):
    as_role("admin")
    assert client.post("/audits/blocks", data=_form(duration="7", unit="days")).status_code == 302
    row = db.session.scalars(select(IpBlock)).one()
    assert timedelta(days=6, hours=23) < row.expires_at - utcnow() <= timedelta(days=7)


def test_an_end_time_is_read_in_the_admins_zone(client, as_role):
    as_role("admin", timezone="America/New_York")
    end_utc = (utcnow() + timedelta(days=3)).replace(second=0, microsecond=0)
    local = to_zone(end_utc, "America/New_York")
    data = _form(duration="", until=local.strftime("%Y-%m-%dT%H:%M"))
    assert client.post("/audits/blocks", data=data).status_code == 302
    row = db.session.scalars(select(IpBlock)).one()
    assert row.expires_at == end_utc


def test_an_admin_cannot_block_their_own_address(client, as_role):
    as_role("admin")
    mine = {"REMOTE_ADDR": "203.0.113.50"}
    before = row_counts()
    response = client.post("/audits/blocks", data=_form(), environ_base=mine)
    assert response.status_code == 422
    message = (
        "203.0.113.0/24 includes your own address (203.0.113.50): you would lock yourself out."
    )
    assert message in response.text
    assert re.search(r'id="network-error">[^<]*includes your own address', response.text)
    assert row_counts() == before
    # One's own address alone, written another way, is refused as well.
    alone = client.post("/audits/blocks", data=_form(network="203.0.113.50/32"), environ_base=mine)
    assert alone.status_code == 422
    # A range that leaves the admin out goes through.
    other = client.post("/audits/blocks", data=_form(network="198.51.100.0/24"), environ_base=mine)
    assert other.status_code == 302
    assert client.get("/audits/blocks", environ_base=mine).status_code == 200


def test_a_range_already_blocked_is_refused_at_its_field(client, as_role):
    as_role("admin")
    assert client.post("/audits/blocks", data=_form()).status_code == 302
    again = client.post("/audits/blocks", data=_form(network="203.0.113.9/24"))
    assert again.status_code == 409
    assert re.search(r'id="network-error">203\.0\.113\.0/24 is already blocked', again.text)
    assert db.session.scalar(select(func.count()).select_from(IpBlock)) == 1


BAD_INPUT = [
    ("network", {"network": ""}, "Give an IP address or a CIDR range."),
    ("network", {"network": "   "}, "Give an IP address or a CIDR range."),
    ("network", {"network": "not-an-address"}, "Give an IP address or a CIDR range, like"),
    ("network", {"network": "300.1.2.3"}, "Give an IP address or a CIDR range, like"),
    ("network", {"network": "10.0.0.0/33"}, "Give an IP address or a CIDR range, like"),
    ("network", {"network": "2001:db8::/129"}, "Give an IP address or a CIDR range, like"),
    ("network", {"network": "1" * 60}, "Use at most 43 characters."),
    ("network", {"network": "203.0.113.0\x00/24"}, "Contains characters that are not allowed."),
    ("reason", {"reason": ""}, "Say why the address is blocked."),
    ("reason", {"reason": "x" * 201}, "Use at most 200 characters."),
    ("duration", {"duration": ""}, "Give how long the block lasts, or the time it ends."),
    ("duration", {"duration": "soon"}, "Give a whole number of hours or days, like 24."),
    ("duration", {"duration": "-3"}, "Give a whole number of hours or days, like 24."),
    ("duration", {"duration": "9" * 25}, "Give a whole number of hours or days, like 24."),
    ("duration", {"duration": "٣"}, "Give a whole number of hours or days, like 24."),
    ("duration", {"duration": "0"}, "A block lasts from one hour to 365 days."),
    ("duration", {"duration": "366", "unit": "days"}, "A block lasts from one hour to 365 days."),
    ("unit", {"unit": "weeks"}, "Choose hours or days."),
    ("until", {"duration": "", "until": "tomorrow"}, "Give a date and a time, like"),
    ("until", {"duration": "", "until": "9999-01-01T00:00"}, "Give a date between 2000 and"),
    ("until", {"duration": "", "until": "2020-01-01T00:00"}, "The block must end in the future."),
    ("until", {"duration": "", "until": "2199-01-01T00:00"}, "A block lasts at most 365 days."),
    ("until", {"until": "2199-01-01T00:00"}, "Give a duration or an end time, not both."),
]


@pytest.mark.parametrize(
    ("field", "values", "message"),
    [pytest.param(*case, id=f"{case[0]}-{i}") for i, case in enumerate(BAD_INPUT)],
)
def test_bad_input_is_refused_at_its_field(client, as_role, field, values, message):
    as_role("admin")
    before = row_counts()
    response = client.post("/audits/blocks", data=_form(**values))
    assert response.status_code == 422, response.text
    at_field = re.search(rf'id="{field}-error">([^<]*)<', response.text)
    assert at_field is not None, f"no message at {field}"
    assert str(escape(message)) in at_field.group(1)
    assert row_counts() == before


def test_the_until_field_in_the_skipped_hour_is_refused(client, as_role):
    as_role("admin", timezone="Europe/Paris")
    # The last Sunday of March 2027, 02:30 in Paris, does not exist (clocks go 02:00→03:00).
    response = client.post("/audits/blocks", data=_form(duration="", until="2027-03-28T02:30"))
    assert response.status_code == 422
    assert re.search(r'id="until-error">[^<]*the clocks skip that hour', response.text)


# -- lifting -----------------------------------------------------------------------------------


def test_lifting_ends_the_block_and_is_audited(client, admin, as_role):
    row = block(admin, "203.0.113.0/24")
    assert is_blocked(client, "203.0.113.9")
    me = as_role("admin")
    response = client.post(f"/audits/blocks/{row.id}/lift")
    assert response.status_code == 302
    assert "The block on 203.0.113.0/24 is lifted." in client.get("/audits/blocks").text
    assert not is_blocked(client, "203.0.113.9")
    db.session.refresh(row)
    assert row.lifted_at is not None and row.lifted_by_id == me.id
    (event,) = events("ip.unblocked")
    assert event.actor_id == me.id and event.data["network"] == "203.0.113.0/24"
    again = client.post(f"/audits/blocks/{row.id}/lift")
    assert again.status_code == 409
    assert "already lifted" in again.text
    assert client.post("/audits/blocks/999999/lift").status_code == 404


def test_the_lift_button_asks_first(client, admin, as_role):
    row = block(admin, "203.0.113.0/24")
    as_role("admin")
    page = client.get("/audits/blocks").text
    assert f'action="/audits/blocks/{row.id}/lift"' in page
    assert 'data-confirm="Lift the block on 203.0.113.0/24?' in page


def test_an_expired_block_cannot_be_lifted(client, admin, as_role):
    row = block(admin, "203.0.113.0/24")
    row.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    as_role("admin")
    response = client.post(f"/audits/blocks/{row.id}/lift")
    assert response.status_code == 409


# -- the list ----------------------------------------------------------------------------------


def test_the_empty_list_says_so(client, as_role):
    as_role("admin")
    page = client.get("/audits/blocks")
    assert page.status_code == 200
    assert "No address has been blocked." in page.text


def test_active_blocks_come_first_then_ended_ones(client, admin, as_role):
    expired = block(admin, "198.51.100.1")
    expired.expires_at = utcnow() - timedelta(hours=1)
    lifted = block(admin, "198.51.100.2")
    lifted.lifted_at, lifted.lifted_by_id = utcnow(), admin.id
    db.session.commit()
    later = block(admin, "198.51.100.3", hours=48)
    sooner = block(admin, "198.51.100.4", hours=2)
    as_role("admin")
    page = client.get("/audits/blocks").text
    order = [int(i) for i in re.findall(r'<tr id="block-(\d+)">', page)]
    assert order[:2] == [sooner.id, later.id]
    assert set(order[2:]) == {expired.id, lifted.id}
    assert page.count(">Lift</button>") == 2


def test_the_list_pages(client, admin, as_role):
    for n in range(30):
        block(admin, f"198.51.100.{n + 1}")
    as_role("admin")
    first = client.get("/audits/blocks").text
    assert len(re.findall(r'<tr id="block-', first)) == 25
    assert "Page 1 of 2" in first
    second = client.get("/audits/blocks?page=2", headers={"HX-Request": "true"})
    assert second.status_code == 200
    assert "<html" not in second.text  # the fragment that htmx swaps
    assert len(re.findall(r'<tr id="block-', second.text)) == 5
    for odd in ("0", "-1", "abc", "9" * 30):
        assert client.get(f"/audits/blocks?page={odd}").status_code == 200


def test_only_admins_see_the_blocks(client, as_role):
    as_role("auditor")
    assert client.get("/audits/blocks").status_code == 403
    assert client.post("/audits/blocks", data=_form()).status_code == 403
    assert db.session.scalar(select(func.count()).select_from(IpBlock)) == 0


def test_a_link_can_fill_in_the_address(client, as_role):
    as_role("admin")
    page = client.get("/audits/blocks?network=203.0.113.66").text
    assert re.search(r'<input[^>]*id="network"[^>]*value="203\.0\.113\.66"', page)
    assert db.session.scalar(select(func.count()).select_from(IpBlock)) == 0
    odd = client.get('/audits/blocks?network="><script>x</script>' + "9" * 100)
    assert odd.status_code == 200 and "<script>x" not in odd.text
