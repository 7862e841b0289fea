"""Files on tickets, as the people involved see them: who may add and fetch which
file, what comes back (bytes and headers), and what is kept on disk and in the trail."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.audits.models import AuditEvent
from portal.extensions import db
from portal.tickets import services
from portal.tickets.attachments import clean_filename
from portal.tickets.extra_models import TicketAttachment
from portal.tickets.models import Ticket
from portal.users.models import User
from tests.conftest import csrf_token_from
from tests.factories import make_user, sign_in_client


@pytest.fixture(autouse=True)
def store(tmp_path: Path, settings) -> Path:  # type: ignore[no-untyped-def]
    """Files on disk outlive the test's rolled-back transaction: keep them in tmp_path."""
    folder = tmp_path / "storage"
    settings(STORAGE_DIR=str(folder))
    return folder


def _stored_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _ticket(app: Flask, requester: User, subject: str = "Printer jams") -> Ticket:
    with app.test_request_context("/"):
        ticket = services.create_ticket(requester, subject, "On every page")
        return db.session.get(Ticket, ticket.id)  # type: ignore[return-value]


def _client_for(app: Flask, user: User) -> FlaskClient:
    other = app.test_client()
    with app.test_request_context("/"):
        sign_in_client(other, user)
    return other


def _upload(
    client: FlaskClient,
    ticket: Ticket,
    data: bytes = b"hello\n",
    name: str = "notes.txt",
    content_type: str = "text/plain",
    **fields: str,
):  # type: ignore[no-untyped-def]
    body = {"file": (io.BytesIO(data), name, content_type), **fields}
    return client.post(
        f"/tickets/{ticket.id}/attachments", data=body, content_type="multipart/form-data"
    )


def _attachments(ticket: Ticket) -> list[TicketAttachment]:
    stmt = db.select(TicketAttachment).where(TicketAttachment.ticket_id == ticket.id)
    return list(db.session.scalars(stmt.order_by(TicketAttachment.id)))


def _url(ticket: Ticket, attachment: TicketAttachment) -> str:
    return f"/tickets/{ticket.id}/attachments/{attachment.id}"


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action)))


def test_upload_and_download_round_trip(app, client, as_role, store) -> None:
    me = as_role("requester", name="Rita Requester")
    ticket = _ticket(app, me)
    data = os.urandom(300_000)

    response = _upload(client, ticket, data, "screen shot.png", "image/png")

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/tickets/{ticket.id}")
    [attachment] = _attachments(ticket)
    assert attachment.filename == "screen shot.png"
    assert attachment.content_type == "image/png"
    assert attachment.size == len(data)
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()
    assert (attachment.uploaded_by_id, attachment.is_internal) == (me.id, False)
    [on_disk] = _stored_files(store)
    assert on_disk.read_bytes() == data and on_disk.is_relative_to(store)
    [event] = _events("ticket.attachment_added")
    assert (event.actor_id, event.target_id) == (me.id, str(ticket.id))
    assert event.data == {
        "attachment_id": attachment.id,
        "filename": "screen shot.png",
        "size": len(data),
        "sha256": attachment.sha256,
        "internal": False,
    }

    page = client.get(f"/tickets/{ticket.id}").text
    assert "screen shot.png is attached" in page  # the flash
    assert f'href="{_url(ticket, attachment)}"' in page
    assert "293 KB" in page and "Rita Requester" in page
    assert 'id="no-attachments"' not in page

    download = client.get(_url(ticket, attachment))
    assert download.status_code == 200
    assert download.data == data
    assert download.headers["Content-Type"] == "image/png"
    assert download.headers["Content-Length"] == str(len(data))
    assert download.headers["Content-Disposition"] == (
        "attachment; filename=\"screen shot.png\"; filename*=UTF-8''screen%20shot.png"
    )
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Cache-Control"] == "private, no-store"
    assert download.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    # Fetching a file changes nothing.
    assert len(_events("ticket.attachment_added")) == 1


def test_ticket_page_without_files_says_so_and_offers_the_form(app, client, as_role) -> None:
    me = as_role("requester")
    ticket = _ticket(app, me)
    page = client.get(f"/tickets/{ticket.id}").text
    assert 'id="no-attachments"' in page and "No files are attached" in page
    assert 'enctype="multipart/form-data"' in page
    assert '<label class="form-label" for="attachment-file">Attach a file</label>' in page
    assert 'name="internal"' not in page  # a requester cannot add internal files
    assert "style=" not in page.split('id="attachments"')[1].split("</section>")[0]


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("/abs/path/report.pdf", "report.pdf"),
        ("<script>.html", "_script_.html"),
        ('a"b.txt', "a_b.txt"),
        ("evil\u202egnp.exe", "evilgnp.exe"),
        ("tab\tand\nnewline.txt", "tab and newline.txt"),
        ("nul\x00byte.txt", "nulbyte.txt"),
        ("..", "attachment"),
        ("   ", "attachment"),
        (".hidden", "hidden"),
        ("Überweisung März.pdf", "Überweisung März.pdf"),
        ("设计稿 😀.png", "设计稿 😀.png"),
        ("x" * 300 + ".docx", "x" * 250 + ".docx"),
        ("y" * 300, "y" * 255),
    ],
)
def test_filenames_are_cleaned(given: str, shown: str) -> None:
    assert clean_filename(given) == shown


def test_hostile_names_and_types_are_stored_and_served_harmless(
    app, client, as_role, store, tmp_path
) -> None:
    me = as_role("requester")
    ticket = _ticket(app, me)
    uploads = [
        ("../../etc/passwd", "text/plain", "passwd", "text/plain"),
        ("<script>.html", "text/html", "_script_.html", "application/octet-stream"),
        ("logo.svg", "image/svg+xml", "logo.svg", "application/octet-stream"),
        ("Überweisung März.pdf", "application/pdf", "Überweisung März.pdf", "application/pdf"),
    ]
    for name, claimed, _, _ in uploads:
        assert (
            _upload(client, ticket, b"<script>alert(1)</script>", name, claimed).status_code == 302
        )

    attachments = _attachments(ticket)
    assert [(a.filename, a.content_type) for a in attachments] == [(u[2], u[3]) for u in uploads]
    # Everything landed inside the storage folder, under names the portal chose.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["storage"]
    assert {p.relative_to(store).as_posix() for p in _stored_files(store)} == {
        a.storage_key for a in attachments
    }

    page = client.get(f"/tickets/{ticket.id}").text
    assert "<script>.html" not in page and "_script_.html" in page

    html = client.get(_url(ticket, attachments[1]))
    assert html.headers["Content-Type"] == "application/octet-stream"
    assert html.headers["Content-Disposition"].startswith("attachment;")
    assert "filename*=UTF-8''_script_.html" in html.headers["Content-Disposition"]
    svg = client.get(_url(ticket, attachments[2]))
    assert svg.headers["Content-Type"] == "application/octet-stream"
    pdf = client.get(_url(ticket, attachments[3]))
    assert pdf.headers["Content-Disposition"] == (
        'attachment; filename="Uberweisung Marz.pdf"; '
        "filename*=UTF-8''%C3%9Cberweisung%20M%C3%A4rz.pdf"
    )


def test_other_requesters_are_refused_and_ids_of_other_tickets_are_404(
    app, client, as_role, store
) -> None:
    owner = make_user(role="requester")
    owners = _client_for(app, owner)
    ticket = _ticket(app, owner, "Mine")
    other_ticket = _ticket(app, owner, "Also mine")
    assert _upload(owners, ticket, b"private").status_code == 302
    [attachment] = _attachments(ticket)

    as_role("requester")
    assert client.get(_url(ticket, attachment)).status_code == 403
    refused = _upload(client, ticket, b"intrusion")
    assert refused.status_code == 403
    assert len(_attachments(ticket)) == 1 and len(_stored_files(store)) == 1

    # The owner asking for the file through another ticket's URL: that ticket has no such file.
    assert owners.get(f"/tickets/{other_ticket.id}/attachments/{attachment.id}").status_code == 404
    assert owners.get(f"/tickets/{ticket.id}/attachments/999999").status_code == 404


def test_internal_files_are_for_staff_only(app, client, as_role, store) -> None:
    requester = make_user(role="requester")
    theirs = _client_for(app, requester)
    ticket = _ticket(app, requester)
    as_role("agent", name="Ana Agent")

    page = client.get(f"/tickets/{ticket.id}").text
    assert 'name="internal"' in page  # agents get the checkbox
    assert _upload(client, ticket, b"db dump", "dump.sql", internal="y").status_code == 302
    assert _upload(client, ticket, b"public", "howto.txt").status_code == 302
    internal, public = _attachments(ticket)
    assert (internal.is_internal, public.is_internal) == (True, False)
    assert _events("ticket.attachment_added")[0].data["internal"] is True

    agent_page = client.get(f"/tickets/{ticket.id}").text
    assert "dump.sql" in agent_page and "internal-attachment" in agent_page
    assert client.get(_url(ticket, internal)).data == b"db dump"

    requester_page = theirs.get(f"/tickets/{ticket.id}").text
    assert "howto.txt" in requester_page
    assert "dump.sql" not in requester_page and f"attachments/{internal.id}" not in requester_page
    assert theirs.get(_url(ticket, internal)).status_code == 404
    assert theirs.get(_url(ticket, public)).data == b"public"

    # A requester cannot make an internal file by forging the field.
    forged = _upload(theirs, ticket, b"sneaky", "x.txt", internal="y")
    assert forged.status_code == 403
    assert len(_attachments(ticket)) == 2 and len(_stored_files(store)) == 2

    auditor = _client_for(app, make_user(role="auditor"))
    assert auditor.get(_url(ticket, internal)).status_code == 200


@pytest.mark.parametrize("role", ["approver", "auditor"])
def test_readers_may_download_but_not_upload(app, client, as_role, store, role) -> None:
    requester = make_user(role="requester")
    ticket = _ticket(app, requester)
    assert _upload(_client_for(app, requester), ticket, b"log lines").status_code == 302
    [attachment] = _attachments(ticket)

    as_role(role)
    page = client.get(f"/tickets/{ticket.id}").text
    assert "notes.txt" in page and 'id="attachment-form"' not in page
    assert client.get(_url(ticket, attachment)).data == b"log lines"
    assert _upload(client, ticket, b"not allowed").status_code == 403
    assert len(_attachments(ticket)) == 1 and len(_stored_files(store)) == 1


def test_empty_or_missing_file_is_422_with_a_message(app, client, as_role, store) -> None:
    me = as_role("requester")
    ticket = _ticket(app, me)

    empty = _upload(client, ticket, b"", "empty.txt")
    assert empty.status_code == 422 and "The file is empty." in empty.text

    missing = client.post(
        f"/tickets/{ticket.id}/attachments", data={}, content_type="multipart/form-data"
    )
    assert missing.status_code == 422 and "Choose a file to attach." in missing.text

    assert _attachments(ticket) == [] and _stored_files(store) == []
    assert _events("ticket.attachment_added") == []


def test_errors_reach_htmx_in_the_alert_area(app, client, as_role) -> None:
    me = as_role("requester")
    ticket = _ticket(app, me)
    body = {"file": (io.BytesIO(b""), "empty.txt", "text/plain")}
    response = client.post(
        f"/tickets/{ticket.id}/attachments",
        data=body,
        content_type="multipart/form-data",
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422 and response.headers["HX-Retarget"] == "#alerts"
    assert "The file is empty." in response.text and "<html" not in response.text


def test_upload_needs_the_csrf_token(app, client, as_role, csrf, store) -> None:
    me = as_role("requester")
    ticket = _ticket(app, me)

    refused = _upload(client, ticket, b"no token")
    assert refused.status_code == 400
    assert "The form expired or was not sent from the portal" in refused.text
    assert _attachments(ticket) == [] and _stored_files(store) == []

    token = csrf_token_from(client.get(f"/tickets/{ticket.id}").text)
    assert _upload(client, ticket, b"with token", csrf_token=token).status_code == 302
    assert len(_attachments(ticket)) == 1


def test_request_over_the_portal_limit_is_413_and_stores_nothing(
    app, client, as_role, store, monkeypatch
) -> None:
    me = as_role("requester")
    ticket = _ticket(app, me)
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 50_000)

    response = _upload(client, ticket, b"x" * 60_000, "big.bin")

    assert response.status_code == 413
    assert "text/html" in response.headers["Content-Type"]
    assert "The upload is larger than the portal accepts." in response.text
    assert _attachments(ticket) == [] and _stored_files(store) == []


def test_file_over_the_attachment_limit_is_413_and_stores_nothing(
    app, client, as_role, store, settings
) -> None:
    me = as_role("requester")
    ticket = _ticket(app, me)
    settings(ATTACHMENT_MAX_BYTES=1000)

    too_big = _upload(client, ticket, b"x" * 1001, "big.txt")
    assert too_big.status_code == 413
    assert "The file is larger than 1000 bytes, the most allowed." in too_big.text
    assert _attachments(ticket) == [] and _stored_files(store) == []
    assert _events("ticket.attachment_added") == []

    assert _upload(client, ticket, b"x" * 1000, "fits.txt").status_code == 302
    assert len(_stored_files(store)) == 1


def test_closed_tickets_take_files_from_agents_only(app, client, as_role) -> None:
    requester = make_user(role="requester")
    theirs = _client_for(app, requester)
    ticket = _ticket(app, requester)
    agent = as_role("agent")
    with app.test_request_context("/"):
        closing = db.session.get(Ticket, ticket.id)
        services.change_status(closing, "resolved", agent)
        services.change_status(closing, "closed", agent)

    refused = _upload(theirs, ticket, b"late")
    assert refused.status_code == 409 and "open a new one" in refused.text
    assert 'id="attachment-form"' not in theirs.get(f"/tickets/{ticket.id}").text
    assert _upload(client, ticket, b"post-mortem", "pm.txt").status_code == 302


def test_a_row_whose_file_is_gone_is_404_not_500(app, client, as_role, store) -> None:
    me = as_role("requester")
    ticket = _ticket(app, me)
    assert _upload(client, ticket, b"soon gone").status_code == 302
    [attachment] = _attachments(ticket)
    (store / attachment.storage_key).unlink()

    response = client.get(_url(ticket, attachment))
    assert response.status_code == 404 and "no longer stored" in response.text


def test_htmx_upload_is_redirected_with_hx_redirect(app, client, as_role) -> None:
    me = as_role("requester")
    ticket = _ticket(app, me)
    body = {"file": (io.BytesIO(b"via htmx"), "h.txt", "text/plain")}
    response = client.post(
        f"/tickets/{ticket.id}/attachments",
        data=body,
        content_type="multipart/form-data",
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].endswith(f"/tickets/{ticket.id}")
