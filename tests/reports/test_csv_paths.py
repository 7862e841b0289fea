"""The two writers of an export (COPY on PostgreSQL, Python elsewhere) give the same
bytes for the same rows: quoting, defusing, empty cells, numbers and zoned times."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from portal.reports.columns import defuse
from portal.reports.sources import SOURCES
from portal.tickets import incidents
from portal.tickets import services as tickets
from tests.factories import make_user
from tests.reports.helpers import parsed, written


def _written(kind: str, viewer, zone: str) -> list[list[str]]:
    source = SOURCES[kind]
    return parsed(written(source.plan(source.read_filters(MultiDict({})), viewer), zone))


def test_defuse_prefixes_only_formula_starts():
    assert defuse("=1+2") == "'=1+2"
    assert defuse("\tx") == "'\tx"
    assert defuse("a=b") == "a=b"
    assert defuse("") == ""


@pytest.mark.parametrize(
    ("zone", "offset"),
    [("UTC", "+00:00"), ("Europe/Paris", "+01:00"), ("America/St_Johns", "-03:30"),
     ("Asia/Kolkata", "+05:30")],
)  # fmt: skip
def test_every_export_writes_its_cells_the_same_on_both_writers(ctx, zone, offset):
    """What a reader opens: formulas defused, quotes and commas kept, times in their zone.
    On PostgreSQL the COPY writer is held to the row-by-row writer's bytes (see written)."""
    requester = make_user(role="requester", name='Pat "Quotes", O\'Brien')
    agent = make_user(role="agent", name="=cmd|' /C calc'!A0")
    subjects = [
        "Plain",
        "=SUM(A1)",
        "+41 79",
        "-",
        "@x",
        "comma, inside",
        'a "quoted" word',
        "é ü 漢字",
    ]
    for i, subject in enumerate(subjects):
        ticket = tickets.create_ticket(requester, subject, "d", priority="high" if i % 2 else None)
        if i % 3 == 0:
            tickets.assign(ticket, agent, agent)
            tickets.change_status(ticket, "in_progress", agent)
            tickets.add_reply(ticket, agent, 'Two lines,\nwith "quotes"', internal=i == 3)
    outage = tickets.create_ticket(requester, "Mail down", "d", type_="incident", priority="high")
    tickets.assign(outage, agent, agent)
    incidents.save_review(outage, agent, "10:00 alert", "-disk full")
    viewer = make_user(role="admin", timezone=zone)

    rows = _written("tickets", viewer, zone)
    assert len(rows) == 9
    assert sorted(r[2] for r in rows) == sorted(
        ["Plain", "'=SUM(A1)", "'+41 79", "'-", "'@x", "comma, inside", 'a "quoted" word',
         "é ü 漢字", "Mail down"]
    )  # fmt: skip
    assert {r[9] for r in rows} == {'Pat "Quotes", O\'Brien'}
    assert all(r[12].endswith(offset) and r[12][10] == "T" for r in rows)
    replies = _written("replies", viewer, zone)
    assert [r[7] for r in replies] == ['Two lines,\nwith "quotes"'] * 3
    assert {r[4] for r in replies} == {"'=cmd|' /C calc'!A0"}
    [incident] = _written("incidents", viewer, zone)
    assert incident[16] == "'-disk full"
    assert len(_written("users", viewer, zone)) == 3
    assert _written("changes", viewer, zone) == []
