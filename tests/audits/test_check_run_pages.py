"""The scheduled audits' pages: the runs list, a run with each check's passing share and
links to the failing objects, its PDF, a finding and what auditors and admins can do to
it (acknowledge, accept the risk, file a ticket: admins only)."""

from __future__ import annotations

import base64
import re
import zlib
from datetime import timedelta

from sqlalchemy import func, select

from portal.audits import check_services
from portal.audits.check_models import Finding
from portal.audits.models import AuditEvent
from portal.extensions import db
from portal.tickets.models import Ticket
from portal.timeutil import utcnow
from tests.conftest import row_counts
from tests.factories import make_user


def _dormant_run(app, how_many: int = 1, now=None):  # type: ignore[no-untyped-def]
    long_ago = utcnow() - timedelta(days=400)
    with app.test_request_context("/"):
        users = [
            make_user(role="agent", created_at=long_ago, last_login_at=long_ago)
            for _ in range(how_many)
        ]
        make_user(role="agent", created_at=long_ago, last_login_at=utcnow())  # passes
        run, _ = check_services.run_schedule("weekly", now=now)
        finding = db.session.scalar(
            select(Finding).where(Finding.subject_key == f"user:{users[0].id}")
        )
        return run.id, finding.id, users[0]


def _pdf_text(data: bytes) -> str:
    """The text drawn in a ReportLab PDF (content streams ASCII85-encoded, compressed)."""
    chunks = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", data, re.S):
        raw = stream.strip()
        if raw.endswith(b"~>"):
            raw = base64.a85decode(raw[:-2])
        try:
            chunks.append(zlib.decompress(raw).decode("latin-1"))
        except zlib.error:
            continue
    return "".join(chunks)


def _event(action: str) -> AuditEvent | None:
    return db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id.desc())
    )


def test_the_runs_list_says_when_no_audit_has_run(client, as_role) -> None:  # type: ignore[no-untyped-def]
    as_role("auditor")
    response = client.get("/audits/runs")
    assert response.status_code == 200
    assert "No audit has run yet" in response.text and "flask audits run daily" in response.text


def test_the_runs_list_shows_each_run_and_filters_by_schedule(app, client, as_role) -> None:  # type: ignore[no-untyped-def]
    run_id, _, _ = _dormant_run(app)
    as_role("auditor")
    page = client.get("/audits/runs")
    assert f"/audits/runs/{run_id}" in page.text and f"AR-{run_id:05d}" in page.text
    assert "check(s) with findings" in page.text
    other = client.get("/audits/runs?schedule=daily")
    assert f"AR-{run_id:05d}" not in other.text and "No daily audit has run yet" in other.text


def test_a_run_shows_each_check_s_passing_share_and_links_its_failing_objects(
    app, client, as_role
) -> None:  # type: ignore[no-untyped-def]
    run_id, finding_id, user = _dormant_run(app)
    as_role("admin")
    page = client.get(f"/audits/runs/{run_id}")
    assert page.status_code == 200
    assert "Active accounts without a sign-in for 90 days" in page.text
    # Two active accounts when it ran: the dormant one and one that passes.
    assert "50% (1 of 2 active accounts)" in page.text
    assert f'href="/users/{user.id}"' in page.text
    assert f"/audits/findings/{finding_id}" in page.text
    assert "The first run of its schedule" in page.text
    assert 'class="finding finding-new"' in page.text


def test_an_auditor_is_linked_to_the_object_s_events_instead(app, client, as_role) -> None:  # type: ignore[no-untyped-def]
    run_id, _, user = _dormant_run(app)
    as_role("auditor")
    page = client.get(f"/audits/runs/{run_id}")
    assert f'href="/users/{user.id}"' not in page.text  # auditors cannot open user pages
    assert f"/audits/?type=user&amp;id={user.id}" in page.text


def test_a_run_page_filters_by_check_and_serves_its_fragment(app, client, as_role) -> None:  # type: ignore[no-untyped-def]
    run_id, finding_id, _ = _dormant_run(app)
    as_role("auditor")
    fragment = client.get(
        f"/audits/runs/{run_id}?check=long_sessions", headers={"HX-Request": "true"}
    )
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "No finding for this check" in fragment.text
    dormant = client.get(f"/audits/runs/{run_id}?check=dormant_accounts")
    assert f"/audits/findings/{finding_id}" in dormant.text


def test_the_run_page_runs_a_fixed_number_of_queries(app, client, as_role, count_queries) -> None:  # type: ignore[no-untyped-def]
    small_run, _, _ = _dormant_run(app, 1, now=utcnow() - timedelta(days=7))
    as_role("auditor")
    client.get("/audits/runs")  # the layout's own cached panels, loaded once
    with count_queries() as small:
        assert client.get(f"/audits/runs/{small_run}").status_code == 200
    large_run, _, _ = _dormant_run(app, 30)
    with count_queries() as large:
        assert client.get(f"/audits/runs/{large_run}").status_code == 200
    assert large.count == small.count


def test_a_run_downloads_as_a_pdf(app, client, as_role) -> None:  # type: ignore[no-untyped-def]
    run_id, finding_id, _ = _dormant_run(app)
    auditor = as_role("auditor")
    response = client.get(f"/audits/runs/{run_id}.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf" and response.data.startswith(b"%PDF")
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert f"AR-{run_id:05d}.pdf" in response.headers["Content-Disposition"]
    text = _pdf_text(response.data)
    assert f"AR-{run_id:05d}: weekly audit" in text
    assert "Admin role review" in text and "Long-lived sessions" in text
    assert f"F-{finding_id:06d}" in text and "has not signed in for 90 days" in text
    event = _event("audit.run_downloaded")
    assert event.actor_id == auditor.id and event.target_id == str(run_id)


def test_a_missing_run_or_finding_is_404(client, as_role) -> None:  # type: ignore[no-untyped-def]
    as_role("auditor")
    assert client.get("/audits/runs/999999").status_code == 404
    assert client.get("/audits/runs/999999.pdf").status_code == 404
    assert client.get("/audits/findings/999999").status_code == 404


def test_the_finding_page_shows_its_evidence_and_actions(app, client, as_role) -> None:  # type: ignore[no-untyped-def]
    _, finding_id, user = _dormant_run(app)
    as_role("auditor")
    page = client.get(f"/audits/findings/{finding_id}")
    assert page.status_code == 200
    assert user.email in page.text and "Deactivate accounts nobody uses" in page.text
    assert "Acknowledge" in page.text and "Accept the risk" in page.text
    assert "Create a ticket" not in page.text  # auditors file no tickets


def test_acknowledging_a_finding(app, client, as_role) -> None:  # type: ignore[no-untyped-def]
    _, finding_id, _ = _dormant_run(app)
    auditor = as_role("auditor")
    response = client.post(f"/audits/findings/{finding_id}/acknowledge")
    assert response.status_code == 302
    finding = db.session.get(Finding, finding_id)
    assert finding.state == "acknowledged" and finding.acknowledged_by_id == auditor.id
    event = _event("finding.acknowledged")
    assert event.actor_id == auditor.id and event.target_id == str(finding_id)
    assert event.data["after"] == {"state": "acknowledged"}
    again = client.post(f"/audits/findings/{finding_id}/acknowledge")
    assert again.status_code == 409


def test_accepting_a_risk_needs_a_reason_and_a_future_expiry(app, client, as_role) -> None:  # type: ignore[no-untyped-def]
    _, finding_id, _ = _dormant_run(app)
    as_role("auditor")
    before = row_counts()
    short = client.post(
        f"/audits/findings/{finding_id}/accept", data={"reason": "ok", "until": "2099-01-01"}
    )
    assert short.status_code == 422 and "at least 10 characters" in short.text
    past = client.post(
        f"/audits/findings/{finding_id}/accept",
        data={"reason": "A break-glass account.", "until": "2020-01-01"},
    )
    assert past.status_code == 422 and "must end after today" in past.text
    assert row_counts() == before and db.session.get(Finding, finding_id).state == "new"


def test_accepting_a_risk(app, client, as_role) -> None:  # type: ignore[no-untyped-def]
    _, finding_id, _ = _dormant_run(app)
    auditor = as_role("auditor")
    until = (utcnow() + timedelta(days=60)).date()
    response = client.post(
        f"/audits/findings/{finding_id}/accept",
        data={"reason": "A break-glass account kept on purpose.", "until": until.isoformat()},
    )
    assert response.status_code == 302
    finding = db.session.get(Finding, finding_id)
    assert finding.state == "accepted" and finding.accepted_by_id == auditor.id
    assert finding.accepted_until.date() in (until, until + timedelta(days=1))
    event = _event("finding.accepted")
    assert event.data["after"]["reason"] == "A break-glass account kept on purpose."
    page = client.get(f"/audits/findings/{finding_id}")
    assert "Risk accepted" in page.text and "break-glass" in page.text


def test_an_admin_files_a_finding_as_a_ticket(app, client, as_role) -> None:  # type: ignore[no-untyped-def]
    _, finding_id, _ = _dormant_run(app)
    admin = as_role("admin")
    response = client.post(f"/audits/findings/{finding_id}/ticket")
    assert response.status_code == 302
    finding = db.session.get(Finding, finding_id)
    ticket = db.session.get(Ticket, finding.ticket_id)
    assert ticket.requester_id == admin.id and ticket.subject.startswith(f"[F-{finding_id:06d}]")
    assert finding.state == "acknowledged"
    assert _event("finding.ticketed").data["ticket_id"] == ticket.id
    page = client.get(f"/audits/findings/{finding_id}")
    assert f"/tickets/{ticket.id}" in page.text and "Create a ticket" not in page.text
    assert client.post(f"/audits/findings/{finding_id}/ticket").status_code == 409


def test_an_auditor_cannot_file_a_ticket(app, client, as_role) -> None:  # type: ignore[no-untyped-def]
    _, finding_id, _ = _dormant_run(app)
    as_role("auditor")
    tickets = db.session.scalar(select(func.count()).select_from(Ticket))
    assert client.post(f"/audits/findings/{finding_id}/ticket").status_code == 403
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == tickets
    assert db.session.get(Finding, finding_id).ticket_id is None


def test_other_roles_cannot_see_the_audits(app, client, as_role) -> None:  # type: ignore[no-untyped-def]
    run_id, finding_id, _ = _dormant_run(app)
    as_role("agent")
    assert client.get("/audits/runs").status_code == 403
    assert client.get(f"/audits/runs/{run_id}").status_code == 403
    assert client.post(f"/audits/findings/{finding_id}/acknowledge").status_code == 403


def test_the_permission_audit_names_who_holds_the_powerful_roles(app, client, as_role) -> None:  # type: ignore[no-untyped-def]
    with app.test_request_context("/"):
        admin = make_user(role="admin")
        make_user(role="agent")
        run, _ = check_services.run_schedule("monthly")
        run_id = run.id
    as_role("auditor")
    page = client.get(f"/audits/runs/{run_id}")
    assert 'id="who-holds-what"' in page.text and admin.email in page.text
    assert "counted, not named" in page.text  # the agent


BAD_VALUES = [
    "",
    "  \t ",
    "x" * 10_000,
    "ab\x00cd",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "9" * 25,
    "😀🔥",
]


def test_bad_values_in_the_accept_form_are_refused_at_their_field(app, client, as_role) -> None:  # type: ignore[no-untyped-def]
    _, finding_id, _ = _dormant_run(app)
    as_role("auditor")
    in_a_month = (utcnow() + timedelta(days=30)).date().isoformat()
    valid = {"reason": "A break-glass account.", "until": in_a_month}
    # A reason is free text: markup, SQL or digits are fair; too short, too long or with
    # control characters it is not.
    refused_reasons = ["", "  \t ", "x" * 10_000, "ab\x00cd long enough", "😀🔥"]
    cases = [("reason", v) for v in refused_reasons] + [("until", v) for v in BAD_VALUES]
    cases.append(("until", "2020-01-01"))  # over already
    cases.append(("until", (utcnow() + timedelta(days=400)).date().isoformat()))  # too far
    before = row_counts()
    for name, value in cases:
        response = client.post(f"/audits/findings/{finding_id}/accept", data={**valid, name: value})
        assert response.status_code == 422, (name, value[:20], response.status_code)
        assert "<script>alert(1)</script>" not in response.text
        assert f'id="{name}-error"' in response.text, (name, value[:20])
    assert row_counts() == before


def test_a_reason_with_markup_is_kept_as_text(app, client, as_role) -> None:  # type: ignore[no-untyped-def]
    _, finding_id, _ = _dormant_run(app)
    as_role("auditor")
    in_a_month = (utcnow() + timedelta(days=30)).date().isoformat()
    response = client.post(
        f"/audits/findings/{finding_id}/accept",
        data={"reason": "<script>alert(1)</script>", "until": in_a_month},
    )
    assert response.status_code == 302
    page = client.get(f"/audits/findings/{finding_id}").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_bad_values_in_the_lists_query_strings_fall_back_to_defaults(app, client, as_role) -> None:  # type: ignore[no-untyped-def]
    run_id, _, _ = _dormant_run(app)
    as_role("auditor")
    for value in BAD_VALUES:
        for url, param in (
            ("/audits/runs", "schedule"),
            ("/audits/runs", "page"),
            (f"/audits/runs/{run_id}", "check"),
            (f"/audits/runs/{run_id}", "page"),
        ):
            for headers in ({}, {"HX-Request": "true"}):
                response = client.get(url, query_string={param: value}, headers=headers)
                assert response.status_code == 200, (url, param, value[:20])
                assert "<script>alert(1)</script>" not in response.text
