"""The monthly operations report: asked for on its page, built by the exports job into
an Export row, downloaded like an export, and written by `flask reports monthly`.

The data set is a small known October 2026 and September 2026 (viewer in UTC). Driving
the services through two months of simulated time is impractical, so ticket rows are
written directly with set creation, due and resolution times and set SLA columns
(state, business seconds), change requests with a set status and finish time, and the
access events through `audits.record`, then moved into October by an UPDATE of their
time (the test's transaction is rolled back, so the hash chain is never checked on
them). Every figure below is worked out by hand from those rows.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from reportlab import rl_config
from sqlalchemy import func, select, update

from portal import create_app, jobs, storage
from portal.audits import record
from portal.audits.models import AuditEvent
from portal.audits.services import allow_retention_in_this_transaction
from portal.changes.models import ChangeHistory, ChangeRequest
from portal.extensions import db
from portal.reports import monthly_pdf, services, tasks
from portal.reports.cli import reports_cli
from portal.reports.models import Export
from portal.tickets.models import Ticket
from tests.conftest import REDIS_URL, fresh_database_url, needs_redis, settings_for_tests
from tests.factories import make_user, sign_in_client

MONTH = "2026-10"
OCTOBER = datetime(2026, 10, 20, 12, 0)


@pytest.fixture(autouse=True)
def _readable_pdfs(monkeypatch, settings, tmp_path):
    # Uncompressed content streams keep the PDF's text readable (no extractor installed).
    monkeypatch.setattr(rl_config, "pageCompression", 0)
    settings(STORAGE_DIR=str(tmp_path / "storage"))


def pdf_strings(data: bytes) -> list[str]:
    """The text a PDF shows, one string per drawn run, in drawing order."""
    found = re.findall(rb"\(((?:[^()\\]|\\.)*)\)\s*Tj", data)
    return [re.sub(rb"\\([()\\])", rb"\1", s).decode("latin-1") for s in found]


def has_row(strings: list[str], *cells: str) -> bool:
    n = len(cells)
    return any(tuple(strings[i : i + n]) == cells for i in range(len(strings) - n + 1))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def ticket(requester, created, **fields) -> Ticket:  # noqa: ANN001
    row = Ticket(
        subject=fields.pop("subject", f"Ticket of {created:%m-%d}"),
        requester_id=requester.id,
        created_at=created,
        updated_at=created,
        status_changed_at=created,
        **fields,
    )
    db.session.add(row)
    return row


def change(requester, status, finished, type_="normal", risk="low", failed_first=False):  # noqa: ANN001,ANN201
    row = ChangeRequest(
        title=f"{type_} {risk} {status}",
        requester_id=requester.id,
        type=type_,
        risk=risk,
        status=status,
        finished_at=finished,
    )
    db.session.add(row)
    db.session.flush()
    if failed_first:
        db.session.add(
            ChangeHistory(change_id=row.id, field="status", old_value="validating",
                          new_value="failed", created_at=finished)
        )  # fmt: skip
    return row


@pytest.fixture
def month_data(ctx):  # noqa: ANN001,ANN201
    rita = make_user(role="requester", name="Rita Requester", email="rita@example.com")
    met = {"response_state": "met", "resolution_state": "met"}
    # September: E resolved within the month; F still open at its end, resolved 2 Oct.
    ticket(rita, at("2026-09-10 10:00"), status="resolved", resolved_at=at("2026-09-11 10:00"),
           response_seconds=300, resolution_seconds=7200, **met)  # fmt: skip
    ticket(rita, at("2026-09-25 10:00"), status="resolved", resolved_at=at("2026-10-02 10:00"),
           response_seconds=600, resolution_seconds=3600, **met)  # fmt: skip
    # October: A met both; B answered in time but resolved 8 days after its due time;
    # C a P1 incident never answered, open and breached; D a P3 incident, on track.
    ticket(rita, at("2026-10-05 10:00"), status="resolved", resolved_at=at("2026-10-06 10:00"),
           response_seconds=600, resolution_seconds=14400, **met)  # fmt: skip
    ticket(rita, at("2026-10-10 10:00"), subject="Slow VPN", status="resolved",
           resolved_at=at("2026-10-20 10:00"), resolution_due_at=at("2026-10-12 10:00"),
           response_state="met", resolution_state="breached", response_seconds=1200,
           resolution_seconds=72000)  # fmt: skip
    ticket(rita, at("2026-10-15 10:00"), subject="Payments down", type="incident",
           priority="high", status="in_progress", resolution_due_at=at("2026-10-16 12:00"),
           response_state="breached", resolution_state="breached")  # fmt: skip
    ticket(rita, at("2026-10-30 10:00"), subject="Typo on a page", type="incident",
           priority="low", status="new", response_state="on_track")  # fmt: skip
    # Changes: September one completed; October one completed, one failed, and one
    # closed after failing (its history says so).
    change(rita, "completed", at("2026-09-15 10:00"))
    change(rita, "completed", at("2026-10-03 10:00"))
    change(rita, "failed", at("2026-10-08 10:00"), type_="emergency", risk="high")
    change(rita, "closed", at("2026-10-09 10:00"), risk="medium", failed_first=True)
    # Access: one invitation, one role change, one deactivation, all in October.
    admin = make_user(role="admin", name="Ada Admin")
    omar = make_user(role="agent", name="Omar Agent", email="omar@example.com")
    first = db.session.scalar(select(func.max(AuditEvent.id))) or 0
    record("invitation.sent", admin, ("invitation", 99), email="new@example.com", role="agent")
    record("user.role_changed", admin, omar, before={"role": "agent"}, after={"role": "approver"})
    record("user.deactivated", admin, rita, before={"status": "active"},
           after={"status": "deactivated"})  # fmt: skip
    db.session.flush()
    # Moving the events into October rewrites them: past the append-only trigger.
    allow_retention_in_this_transaction()
    db.session.execute(update(AuditEvent).where(AuditEvent.id > first).values(created_at=OCTOBER))
    db.session.commit()
    return {"admin": admin}


def _export_of(response) -> Export:  # noqa: ANN001
    assert response.status_code == 302, response.text
    export_id = int(re.search(r"/reports/exports/(\d+)$", response.headers["Location"])[1])
    db.session.expire_all()
    return db.session.get(Export, export_id)


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_the_pdf_holds_the_months_figures_against_the_month_before(client, month_data):
    viewer = make_user(role="agent", name="Val Viewer", timezone="UTC")
    sign_in_client(client, viewer)
    page = client.get("/reports/monthly")
    assert page.status_code == 200 and 'value="2026-10"' in page.text  # last month

    export = _export_of(client.post("/reports/monthly", data={"month": MONTH}))
    assert (export.kind, export.query, export.status) == (
        "monthly_report",
        "month=2026-10",
        "done",
    ), export.error
    assert export.rows_done == export.rows_total > 1  # pages
    status = client.get(f"/reports/exports/{export.id}")
    pages = f'<strong id="export-pages">{export.rows_done}</strong> pages'
    assert f"The file has {pages}" in status.text

    response = client.get(f"/reports/exports/{export.id}/download")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert "operations-report-2026-10.pdf" in response.headers["Content-Disposition"]
    data = response.get_data()
    assert data.startswith(b"%PDF")
    strings = pdf_strings(data)
    assert "October 2026" in strings
    assert f"Prepared for: Val Viewer <{viewer.email}>" in "".join(strings)
    for row in [
        ("Tickets created", "4", "2", "+2 (+100.0 %)"),
        ("Tickets resolved", "3", "1", "+2 (+200.0 %)"),
        ("Backlog at month end", "2", "1", "+1 (+100.0 %)"),
        ("Response SLA met", "66.7%", "100%", "-33.3 pts"),
        ("Resolution SLA met", "66.7%", "100%", "-33.3 pts"),
        ("Median business time to first response", "15 min", "7.5 min", "+7.5 min"),
        ("Median business time to resolution", "240 min", "120 min", "+120 min"),
        ("Incidents", "2", "0", "+2"),
        ("Changes completed", "1", "1", "0 (0.0 %)"),
        ("Changes failed", "2", "0", "+2"),
    ]:
        assert has_row(strings, *row), row
    # Breached: C (open since its due time on 16 October) overran longer than B (8 days).
    first_c, first_b = strings.index("Payments down"), strings.index("Slow VPN")
    assert first_c < first_b and "8 d 0 h 0 min" in strings
    assert has_row(strings, "P1", "Payments down", "In progress") and "missing" in strings
    assert "not needed" in strings  # the P3 incident needs no review
    assert has_row(strings, "emergency", "high", "0", "1")
    assert has_row(strings, "normal", "medium", "0", "1")
    assert has_row(strings, "All", "1", "2")
    assert has_row(strings, "Invited", "1") and has_row(strings, "Deactivated", "1")
    assert has_row(strings, "Role changed", "omar@example.com", "agent to approver")
    downloaded = _events("export.downloaded")
    assert [e.target_id for e in downloaded] == [str(export.id)]
    assert downloaded[0].data["kind"] == "monthly_report"


def test_the_job_runs_once_even_if_delivered_twice(client, month_data, tmp_path):
    sign_in_client(client, make_user(role="approver"))
    export = _export_of(client.post("/reports/monthly", data={"month": MONTH}))
    key = export.file_key
    assert tasks.build_export(export.id) == "not queued"
    db.session.expire_all()
    again = db.session.get(Export, export.id)
    assert (again.status, again.file_key) == ("done", key)
    assert len(_events("export.completed")) == 1
    assert len(list((tmp_path / "storage").rglob("*.*"))) == 0  # no stray partial file
    assert len([p for p in (tmp_path / "storage").rglob("*") if p.is_file()]) == 1


def test_a_requester_may_not_ask(client, month_data):
    sign_in_client(client, make_user(role="requester"))
    assert client.get("/reports/monthly").status_code == 403
    assert client.post("/reports/monthly", data={"month": MONTH}).status_code == 403
    # Nor through the exports' button, whoever asks.
    response = client.post("/reports/exports", data={"kind": "monthly_report", "query": ""})
    assert response.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(Export)) == 0


@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("2026-13", "There is no month 13"),
        ("October", "is not a month in the form YYYY-MM"),
        ("0000-01", "The year must fall between"),
        ("2999-01", "has not started yet"),
        ("", "Choose a month."),
    ],
)
def test_a_bad_month_is_a_message(client, ctx, month, message):
    sign_in_client(client, make_user(role="agent"))
    response = client.post("/reports/monthly", data={"month": month})
    assert response.status_code == 422
    assert message in response.text
    htmx = client.post("/reports/monthly", data={"month": month}, headers={"HX-Request": "true"})
    assert htmx.status_code == 422 and message in htmx.text and "<html" not in htmx.text
    assert db.session.scalar(select(func.count()).select_from(Export)) == 0


def test_the_download_follows_the_owner_as_they_are_now(client, month_data):
    agent = make_user(role="agent")
    sign_in_client(client, agent)
    export = _export_of(client.post("/reports/monthly", data={"month": MONTH}))
    listed = client.get("/reports/exports")
    assert "Monthly operations report" in listed.text and "pages" in listed.text
    agent.role = "requester"
    db.session.commit()
    assert client.get(f"/reports/exports/{export.id}/download").status_code == 403
    assert _events("export.downloaded") == []


def test_the_command_writes_the_file(app, month_data, tmp_path):
    out = tmp_path / "october.pdf"
    result = app.test_cli_runner().invoke(
        reports_cli, ["monthly", "--month", MONTH, "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Wrote the 2026-10 report" in result.output
    strings = pdf_strings(out.read_bytes())
    assert has_row(strings, "Tickets created", "4", "2", "+2 (+100.0 %)")
    event = _events("export.written_by_command")[-1]
    assert event.data["kind"] == "monthly_report" and event.data["month"] == MONTH
    bad = app.test_cli_runner().invoke(
        reports_cli, ["monthly", "--month", "2026-13", "--output", str(out)]
    )
    assert bad.exit_code == 2 and "There is no month 13" in bad.output


def test_progress_follows_each_part(ctx, month_data):
    import io

    seen = []
    pages = monthly_pdf.build_monthly_pdf(
        datetime(2026, 10, 1).date(),
        "UTC",
        "someone",
        io.BytesIO(),
        lambda d, t: seen.append((d, t)),
    )
    total = monthly_pdf.TOTAL_STEPS
    assert pages > 1 and seen == [(d, total) for d in range(1, total + 1)]


@needs_redis
def test_a_worker_process_builds_it_once_when_the_job_is_delivered_twice(tmp_path):
    """A real `flask worker` out of the request; the same job sent a second time finds
    the row already claimed and writes nothing."""
    from redis import Redis

    overrides = {
        "DATABASE_URL": fresh_database_url("monthly"),
        "REDIS_URL": REDIS_URL,
        "STORAGE_DIR": str(tmp_path / "worker-storage"),
    }
    app = create_app(settings_for_tests(**overrides))
    Redis.from_url(REDIS_URL).flushdb()  # the test Redis database is ours alone
    with app.test_request_context("/"):
        from flask_migrate import upgrade

        upgrade()
        export = services.request_monthly_report(MONTH, make_user(role="agent"))
        assert export.status == "queued"
        jobs.enqueue(tasks.build_export, export.id, queue="exports")
        export_id = export.id
    env = {**os.environ, "PORTAL_ENV": "testing", "SECRET_KEY": app.config["SECRET_KEY"]}
    env.update({k: str(v) for k, v in overrides.items()})
    flask = str(Path(sys.executable).parent / "flask")
    worker = subprocess.run(
        [flask, "--app", "portal", "worker", "--burst", "--queue", "exports"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr[-2000:]
    with app.test_request_context("/"):
        export = db.session.get(Export, export_id)
        assert export.status == "done" and export.rows_done > 1, export.error
        with storage.open(export.file_key) as stored:
            assert stored.read(5) == b"%PDF-"
        assert len(_events("export.completed")) == 1
        files = [p for p in (tmp_path / "worker-storage").rglob("*") if p.is_file()]
        assert len(files) == 1
        db.session.remove()
        db.engine.dispose()


def test_a_running_report_shows_its_parts_not_rows(client, month_data):
    sign_in_client(client, make_user(role="agent"))
    export = _export_of(client.post("/reports/monthly", data={"month": MONTH}))
    export.status = "running"
    db.session.commit()
    response = client.get(f"/reports/exports/{export.id}", headers={"HX-Request": "true"})
    assert response.status_code == 200
    # The inline job left its last count in the (in-process) job data; a real one its own.
    assert re.search(r"Building part \d+ of \d+|Starting…", response.text)
    assert "rows" not in response.text
    assert 'id="export-progress"' in response.text and "every 1s" in response.text
