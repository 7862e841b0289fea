"""The change's PDF: asked for on the change page, built by a job (inline here, by a real
worker where Redis runs), polled while it builds, downloaded as a real PDF."""

from __future__ import annotations

import re

import pytest
from redis import Redis
from reportlab import rl_config
from rq import Queue
from rq.job import Job
from sqlalchemy import select

from portal import jobs, storage
from portal.audits.models import AuditEvent
from portal.changes import approvals, pdf
from portal.changes.models import ChangeRequest
from portal.extensions import db
from portal.job_records import JobRecord, new_record
from tests.changes.helpers import make_change
from tests.conftest import REDIS_URL, needs_redis, row_counts
from tests.factories import make_user


@pytest.fixture(autouse=True)
def _readable_pdfs(monkeypatch, settings, tmp_path):
    # Uncompressed content streams keep the PDF's text greppable (no extractor installed).
    monkeypatch.setattr(rl_config, "pageCompression", 0)
    settings(STORAGE_DIR=str(tmp_path / "storage"))


def voted_change(**fields) -> ChangeRequest:
    """A medium-risk change approved by two named approvers (medium needs two)."""
    change = make_change(impact=2, likelihood=2, **fields)
    approvals.submit(change, change.requester)
    approvals.vote(change, make_user(role="approver", name="Alice Approver"), "approve", "Fine")
    approvals.vote(change, make_user(role="approver", name="Bob Checker"), "approve", "Agreed")
    assert change.status == "approved" and change.risk == "medium"
    return change


def records_of(change: ChangeRequest) -> list[JobRecord]:
    return list(
        db.session.scalars(
            select(JobRecord).where(JobRecord.subject_id == change.id).order_by(JobRecord.id)
        )
    )


def audit_actions(change: ChangeRequest) -> list[str]:
    return list(
        db.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.target_type == "changerequest")
            .where(AuditEvent.target_id == str(change.id))
            .order_by(AuditEvent.id)
        )
    )


def stored_files(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "storage").rglob("*") if p.is_file())


def test_post_builds_the_pdf_inline_and_the_download_is_that_pdf(client, as_role):
    change = voted_change(title="Move <the> database & cache")
    viewer = as_role("agent")
    response = client.post(f"/changes/{change.id}/pdf")
    [row] = records_of(change)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/changes/{change.id}/pdf/{row.id}")
    db.session.refresh(row)
    assert (row.status, row.kind, row.requested_by_id) == ("done", "change_pdf", viewer.id)
    assert row.done == row.total > 0 and row.filename == f"{change.number}.pdf"
    assert row.finished_at is not None and row.error is None and row.job_id

    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    download_url = f"/changes/{change.id}/pdf/{row.id}/download"
    assert f'href="{download_url}"' in page.text and "every 1s" not in page.text

    download = client.get(download_url)
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "application/pdf"
    assert download.headers["Content-Disposition"] == (
        f"attachment; filename={change.number}.pdf; filename*=UTF-8''{change.number}.pdf"
    )
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    body = download.data
    assert body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF")
    text = body.decode("latin-1")
    assert change.number in text
    # ReportLab writes "(" and ")" escaped, and the title's mark-up as entities resolved to text.
    assert "Move <the> database & cache" in text.replace("\\(", "(").replace("\\)", ")")
    assert "Alice Approver" in text and "Bob Checker" in text
    assert "medium risk" in text and "Impact 2" in text
    assert "Install the new certificate" in text  # the implementation plan
    assert "change.submitted" in text or "submitted" in text  # the timeline
    assert audit_actions(change)[-2:] == ["change.pdf_requested", "change.pdf_downloaded"]


def test_htmx_post_answers_with_the_status_fragment(client, as_role):
    change = voted_change()
    as_role("approver")
    response = client.post(f"/changes/{change.id}/pdf", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text
    [row] = records_of(change)
    assert f'id="pdf-record-{row.id}"' in response.text
    assert f"/changes/{change.id}/pdf/{row.id}/download" in response.text


def test_a_building_pdf_polls_and_shows_its_progress(app, client, as_role):
    change = voted_change()
    viewer = as_role("auditor")
    with app.test_request_context("/"):
        row = new_record(pdf.KIND, pdf.SUBJECT, change.id, viewer)
        row.status, row.done, row.total = "running", 3, 9
        db.session.commit()
    url = f"/changes/{change.id}/pdf/{row.id}"
    fragment = client.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'hx-trigger="every 1s"' in fragment.text and f'hx-get="{url}"' in fragment.text
    assert re.search(r'<progress[^>]*value="33"', fragment.text)
    assert "3 of 9 parts" in fragment.text
    page = client.get(url)
    assert "<html" in page.text and 'hx-trigger="every 1s"' in page.text
    assert client.get(url + "/download").status_code == 404  # not ready


def test_the_detail_page_fragment_offers_the_button_and_the_latest_pdf(app, client, as_role):
    change = voted_change()
    as_role("approver")
    client.post(f"/changes/{change.id}/pdf")
    [row] = records_of(change)
    with app.test_request_context("/"):
        from flask import render_template

        html = render_template("changes/_record.html", change=change)
    assert f'hx-post="/changes/{change.id}/pdf"' in html and "Download PDF" in html
    assert f"/changes/{change.id}/pdf/{row.id}/download" in html


def test_a_requester_gets_pdfs_of_their_own_changes_only(client, as_role):
    theirs = voted_change()
    me = as_role("requester")
    mine = voted_change(requester=me)
    assert client.post(f"/changes/{mine.id}/pdf").status_code == 302
    [row] = records_of(mine)
    assert client.get(f"/changes/{mine.id}/pdf/{row.id}/download").status_code == 200
    before = row_counts()
    assert client.post(f"/changes/{theirs.id}/pdf").status_code == 403
    assert row_counts() == before


def test_another_requester_cannot_reach_someone_elses_pdf(app, client, as_role):
    owner = make_user(role="requester")
    change = voted_change(requester=owner)
    with app.test_request_context("/"):
        row = pdf.request_pdf(change, owner)
    as_role("requester")
    for url in (
        f"/changes/{change.id}/pdf/{row.id}",
        f"/changes/{change.id}/pdf/{row.id}/download",
    ):
        assert client.get(url).status_code == 403


def test_a_record_of_another_change_is_not_found(app, client, as_role):
    first, second = voted_change(), voted_change(title="Another")
    viewer = as_role("admin")
    with app.test_request_context("/"):
        row = pdf.request_pdf(first, viewer)
    for suffix in ("", "/download"):
        assert client.get(f"/changes/{second.id}/pdf/{row.id}{suffix}").status_code == 404
        assert client.get(f"/changes/{first.id}/pdf/999999{suffix}").status_code == 404
        assert client.get(f"/changes/{first.id}/pdf/99999999999{suffix}").status_code == 404
    assert client.post("/changes/999999/pdf").status_code == 404


def test_running_the_job_twice_builds_once(app, ctx, tmp_path):
    change = voted_change()
    row = pdf.request_pdf(change, make_user(role="agent"))
    assert row.status == "done"
    key, files = row.file_key, stored_files(tmp_path)
    assert len(files) == 1
    assert pdf.build_change_pdf(row.id) == "already built"
    db.session.refresh(row)
    assert row.file_key == key and stored_files(tmp_path) == files
    # The file lost: the next run makes it again and keeps one file.
    storage.delete(key)
    assert pdf.build_change_pdf(row.id) == "built"
    db.session.refresh(row)
    assert row.status == "done" and storage.exists(row.file_key)
    assert len(stored_files(tmp_path)) == 1
    # Another run holding the row: this one leaves it alone.
    row.status = "running"
    db.session.commit()
    assert pdf.build_change_pdf(row.id) == "taken"
    assert pdf.build_change_pdf(123456789) == "missing"


def test_a_failing_build_ends_failed_with_its_error(app, client, as_role, monkeypatch):
    change = voted_change()
    as_role("approver")

    def broken(*args, **kwargs):
        raise RuntimeError("the font cache is corrupt")

    monkeypatch.setattr(pdf, "render_pdf", broken)
    response = client.post(f"/changes/{change.id}/pdf")
    assert response.status_code == 302
    [row] = records_of(change)
    db.session.refresh(row)
    assert row.status == "failed" and "the font cache is corrupt" in row.error
    assert row.file_key is None and row.finished_at is not None
    page = client.get(response.headers["Location"])
    assert "could not be built" in page.text and "the font cache is corrupt" in page.text
    assert "Try again" in page.text and "every 1s" not in page.text
    # Called directly, the job re-raises after recording the failure (RQ sees it fail).
    with app.test_request_context("/"):
        row.status = "queued"
        db.session.commit()
        with pytest.raises(RuntimeError):
            pdf.build_change_pdf(row.id)
        db.session.refresh(row)
        assert row.status == "failed"
    # The retry asks for a new PDF, which now builds.
    monkeypatch.undo()
    monkeypatch.setattr(rl_config, "pageCompression", 0)
    assert client.post(f"/changes/{change.id}/pdf").status_code == 302
    assert records_of(change)[-1].status == "done"


def test_posting_without_a_csrf_token_is_refused(client, as_role, csrf):
    change = voted_change()
    as_role("approver")
    before = row_counts()
    assert client.post(f"/changes/{change.id}/pdf").status_code == 400
    assert row_counts() == before
    assert client.get(f"/changes/{change.id}/pdf").status_code == 405


def test_a_redis_outage_ends_the_record_failed_not_queued(app, ctx, settings, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    change = voted_change()

    def down(*args, **kwargs):
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(jobs, "enqueue", down)
    row = pdf.request_pdf(change, make_user(role="agent"))
    assert row.status == "failed" and "queue is unavailable" in row.error


@needs_redis
def test_a_real_worker_builds_it_from_redis(app, ctx, settings, tmp_path):
    settings(REDIS_URL=REDIS_URL)
    app.extensions.pop("portal.redis", None)
    Redis.from_url(REDIS_URL).flushdb()  # the test Redis database is ours alone
    try:
        change = voted_change()
        row = pdf.request_pdf(change, make_user(role="approver"))
        assert row.status == "queued"
        connection = jobs.connection(app)
        assert Queue("exports", connection=connection).job_ids == [row.job_id]

        jobs.make_worker(app, ["exports"], simple=True).work(burst=True)
        db.session.expire_all()
        row = db.session.get(JobRecord, row.id)
        assert row.status == "done" and storage.exists(row.file_key)
        assert row.done == row.total > 0
        job = Job.fetch(row.job_id, connection=connection)
        assert job.meta == {"done": row.total, "total": row.total}
        assert job.return_value() == "built"
        with storage.open(row.file_key) as stream:
            assert b"Alice Approver" in stream.read()
    finally:
        Redis.from_url(REDIS_URL).flushdb()
        app.extensions.pop("portal.redis", None)


ROLE_ANSWERS = {
    # A change someone else asked for: requesters see only their own changes (403).
    "admin": 200,
    "approver": 200,
    "agent": 200,
    "auditor": 200,
    "requester": 403,
}


@pytest.mark.parametrize("role", [*ROLE_ANSWERS, "anonymous"])
def test_every_role_meets_the_pdf_routes_as_the_change_page_does(app, client, as_role, role):
    owner = make_user(role="requester")
    change = voted_change(requester=owner)
    with app.test_request_context("/"):
        row = pdf.request_pdf(change, owner)
    if role != "anonymous":
        as_role(role)
    base = f"/changes/{change.id}/pdf"
    answers = [
        client.get(f"{base}/{row.id}").status_code,
        client.get(f"{base}/{row.id}/download").status_code,
        client.post(base, data={}).status_code,
    ]
    if role == "anonymous":
        assert answers == [302, 302, 302]
    else:
        expected = ROLE_ANSWERS[role]
        assert answers == [expected, expected, 302 if expected == 200 else 403]
