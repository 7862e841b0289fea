"""The two writers of an export (COPY on PostgreSQL, Python elsewhere) give the same
bytes for the same rows: quoting, defusing, empty cells, numbers and zoned times."""

from __future__ import annotations

import io

import pytest
from werkzeug.datastructures import MultiDict

from portal.extensions import db
from portal.reports import csv_writer
from portal.reports.columns import defuse
from portal.reports.sources import SOURCES
from portal.tickets import incidents
from portal.tickets import services as tickets
from tests.factories import make_user


class Sink(io.BytesIO):
    pass


def _both(kind: str, viewer, query: dict[str, str], zone: str) -> tuple[bytes, bytes]:
    source = SOURCES[kind]
    plan = source.plan(source.read_filters(MultiDict(query)), viewer)
    python, copy = Sink(), Sink()
    n1 = csv_writer._python_rows(plan, python, __import__("zoneinfo").ZoneInfo(zone), print)
    n2 = csv_writer._copy_rows(plan, copy, zone, lambda done: None)
    assert n1 == n2
    return python.getvalue(), copy.getvalue()


def test_defuse_prefixes_only_formula_starts():
    assert defuse("=1+2") == "'=1+2"
    assert defuse("\tx") == "'\tx"
    assert defuse("a=b") == "a=b"
    assert defuse("") == ""


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/St_Johns", "Asia/Kolkata"])
def test_copy_and_python_write_the_same_bytes(ctx, zone):
    if db.session.get_bind().dialect.name != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    requester = make_user(role="requester", name='Pat "Quotes", O\'Brien')
    agent = make_user(role="agent", name="=cmd|' /C calc'!A0")
    for i, subject in enumerate(
        ["Plain", "=SUM(A1)", "+41 79", "-", "@x", "comma, inside", 'a "quoted" word', "é ü 漢字"]
    ):
        ticket = tickets.create_ticket(requester, subject, "d", priority="high" if i % 2 else None)
        if i % 3 == 0:
            tickets.assign(ticket, agent, agent)
            tickets.change_status(ticket, "in_progress", agent)
            tickets.add_reply(ticket, agent, 'Two lines,\nwith "quotes"', internal=i == 3)
    outage = tickets.create_ticket(requester, "Mail down", "d", type_="incident", priority="high")
    tickets.assign(outage, agent, agent)
    incidents.save_review(outage, agent, "10:00 alert", "-disk full")
    viewer = make_user(role="admin", timezone=zone)
    python, copy = _both("tickets", viewer, {}, zone)
    assert python.count(b"\n") == 9
    assert python == copy
    for kind in ("replies", "incidents"):
        python, copy = _both(kind, viewer, {}, zone)
        assert python == copy, kind
    python, copy = _both("users", viewer, {}, zone)
    assert python == copy
    python, copy = _both("changes", viewer, {}, zone)
    assert python == copy
