"""`flask reports export` and `flask reports cleanup`: the same writer and filters as the
pages, from the shell, on the audit trail."""

from __future__ import annotations

import csv

from sqlalchemy import select

from portal.audits.models import AuditEvent
from portal.extensions import db
from portal.reports.cli import reports_cli
from portal.tickets import services as tickets
from tests.factories import make_user


def _rows(path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def test_export_writes_the_filtered_list_to_a_file(app, ctx, tmp_path):
    rita = make_user(role="requester")
    agent = make_user(role="agent")
    first = tickets.create_ticket(rita, "Printer jams", "d", priority="high")
    tickets.create_ticket(rita, "VPN drops", "d", priority="low")
    tickets.assign(first, agent, agent)
    out = tmp_path / "open.csv"
    runner = app.test_cli_runner()
    result = runner.invoke(
        reports_cli, ["export", "tickets", "--priority", "high", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Wrote 1 rows" in result.output
    rows = _rows(out)
    assert rows[0][0] == "Number" and [r[0] for r in rows[1:]] == [first.number]
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "export.written_by_command")
    )
    assert event.data["filters"] == {"priority": "high"} and event.data["rows"] == 1


def test_export_as_a_requester_holds_their_own_tickets_only(app, ctx, tmp_path):
    rita = make_user(role="requester", email="rita@example.com")
    omar = make_user(role="requester")
    mine = tickets.create_ticket(rita, "Mine", "d")
    tickets.create_ticket(omar, "Not mine", "d")
    out = tmp_path / "mine.csv"
    result = app.test_cli_runner().invoke(
        reports_cli, ["export", "tickets", "--as", "rita@example.com", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert [r[0] for r in _rows(out)[1:]] == [mine.number]


def test_export_refuses_unknown_lists_people_and_options(app, ctx, tmp_path):
    make_user(role="requester", email="rita@example.com")
    runner = app.test_cli_runner()
    out = str(tmp_path / "x.csv")
    assert runner.invoke(reports_cli, ["export", "secrets", "-o", out]).exit_code == 2
    result = runner.invoke(reports_cli, ["export", "users", "--as", "rita@example.com", "-o", out])
    assert result.exit_code == 1 and "may not export users" in result.output
    result = runner.invoke(reports_cli, ["export", "tickets", "stray", "-o", out])
    assert result.exit_code == 2


def test_cleanup_reports_what_it_did(app, ctx):
    result = app.test_cli_runner().invoke(reports_cli, ["cleanup"])
    assert result.exit_code == 0
    assert "0 expired, 0 failed as lost, 0 partial files removed" in result.output
