"""In a real browser: a medium-risk change goes from draft to closed.

Two approvers approve it from their inbox (the row changes in place); its window
overlaps a change already scheduled on the same service, so scheduling shows the clash
and needs an acknowledgement; the implementer runs and validates it; it closes with
lessons learned, and its PDF names the title and both approvers. Runs against the
gunicorn portal of tests/e2e/conftest.py.
"""

from __future__ import annotations

import base64
import re
import zlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import PEOPLE, Portal
from .test_invite_flow import sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not Path("/usr/bin/chromium").exists(),
        reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]

SERVICE = "Web shop"
EARLIER = "Rotate the web shop's TLS certificates"
TITLE = "Upgrade the web shop's payment library"
LESSONS = "Stage the payment sandbox a day earlier next time."


def _person(page: Page, portal: Portal, key: str) -> None:
    email, name = PEOPLE[key]
    sign_in(page, portal, email, portal.people_password)
    expect(page.get_by_role("heading", name=f"Hello, {name}")).to_be_visible()


def _admin(page: Page, portal: Portal) -> None:
    sign_in(page, portal, portal.admin_email, portal.admin_password)
    expect(page.get_by_role("heading", name=f"Hello, {portal.admin_name}")).to_be_visible()


def _local(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def _file_change(page: Page, portal: Portal, title: str, impact: str, start: datetime) -> str:
    """Fill the new-change form and submit it for approval; returns its number."""
    page.goto(f"{portal.url}/changes/new")
    page.get_by_label("Type").select_option("normal")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Description").fill(f"{title}, as planned with the team.")
    page.get_by_label("Business justification").fill("The vendor ends support this month.")
    page.get_by_label("Success criteria").fill("Checkout works; no payment errors for an hour.")
    page.get_by_label("Impact").select_option(impact)
    page.get_by_label("Likelihood of trouble").select_option(impact)
    page.get_by_label("Implementation plan").fill("Deploy to one node, watch, then the rest.")
    page.get_by_label("Rollback plan").fill("Redeploy the previous release from the registry.")
    page.get_by_label("Affected services").select_option(label=SERVICE)
    page.get_by_label("Implementer").select_option(label=PEOPLE["agent"][1])
    page.get_by_label("Window starts").fill(_local(start))
    page.get_by_label("Window ends").fill(_local(start + timedelta(hours=2)))
    page.get_by_role("button", name="Save draft").click()
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text(title)
    number = re.search(r"CR-\d{6}", heading.inner_text()).group(0)
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_role("alert")).to_contain_text(number)
    return number


def _approve_from_inbox(page: Page, portal: Portal, number: str, comment: str) -> None:
    page.goto(f"{portal.url}/changes/inbox")
    row = page.locator(".inbox-row", has_text=number)
    row.get_by_label(f"Comment on {number}").fill(comment)
    row.get_by_role("button", name="Approve").click()
    # htmx swaps the row in place: the page stays the inbox, the row says what happened.
    expect(page.locator(".inbox-row", has_text=number).locator(".vote-result")).to_contain_text(
        "You approved it"
    )
    expect(page).to_have_url(f"{portal.url}/changes/inbox")


def _pdf_text(path: Path) -> str:
    """The text drawn in the PDF: ReportLab writes each content stream ASCII85-encoded
    and compressed."""
    data = path.read_bytes()
    assert data.startswith(b"%PDF-")
    chunks = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", data, re.S):
        raw = stream.strip()
        if raw.endswith(b"~>"):
            raw = base64.a85decode(raw[:-2])
        try:
            chunks.append(zlib.decompress(raw).decode("latin-1"))
        except zlib.error:
            continue  # fonts and images: nothing to read
    return "".join(chunks)


def test_a_medium_risk_change_from_draft_to_closed(
    portal: Portal, new_page: Any, tmp_path: Path
) -> None:
    tomorrow = (datetime.now() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)

    admin = new_page()
    _admin(admin, portal)
    admin.goto(f"{portal.url}/changes/setup/services")
    admin.get_by_label("Name").fill(SERVICE)
    admin.get_by_label("Owner").select_option(label=portal.admin_name)
    admin.get_by_role("button", name="Add service").click()
    expect(admin.locator("main")).to_contain_text(SERVICE)

    # A low-risk change already scheduled on the same service, 10:00–12:00.
    earlier = _file_change(admin, portal, EARLIER, "1", tomorrow.replace(hour=10))
    alex = new_page()
    _person(alex, portal, "approver")
    _approve_from_inbox(alex, portal, earlier, "Routine.")
    admin.reload()
    admin.locator("#schedule-form").get_by_role("button", name="Schedule").click()
    expect(admin.locator("main")).to_contain_text("Scheduled")

    # The change under test: impact 2 × likelihood 2 = medium, two approvals, 11:00–13:00.
    riley = new_page()
    _person(riley, portal, "requester")
    number = _file_change(riley, portal, TITLE, "2", tomorrow.replace(hour=11))
    change_url = riley.url
    expect(riley.locator("main")).to_contain_text("medium")

    _approve_from_inbox(alex, portal, number, "Fine with the rollback plan.")
    blair = new_page()
    _person(blair, portal, "approver2")
    _approve_from_inbox(blair, portal, number, "Go ahead.")

    riley.goto(change_url)
    schedule = riley.locator("#schedule-form")
    schedule.get_by_role("button", name="Schedule").click()
    clashes = riley.locator("#clashes")
    expect(clashes).to_contain_text(earlier)
    expect(clashes).to_contain_text(SERVICE)
    riley.get_by_label("I acknowledge these conflicts and schedule it anyway").check()
    riley.locator("#schedule-form").get_by_role("button", name="Schedule").click()
    expect(riley.get_by_role("alert")).to_contain_text(number)
    expect(riley.locator("main")).to_contain_text("Conflicts acknowledged")

    ana = new_page()
    _person(ana, portal, "agent")
    ana.goto(change_url)
    ana.on("dialog", lambda dialog: dialog.accept())
    ana.get_by_role("button", name="Start implementing").click()
    ana.get_by_role("button", name="Start validating").click()
    ana.get_by_label("Validation results").fill("Checkout and refunds pass; no errors in an hour.")
    ana.get_by_role("button", name="Complete").click()
    ana.get_by_label("Lessons learned").fill(LESSONS)
    ana.get_by_role("button", name="Close the change").click()
    expect(ana.locator("main")).to_contain_text("Closed")
    expect(ana.locator("main")).to_contain_text(LESSONS)

    ana.get_by_role("button", name="Download PDF").click()
    link = ana.locator("#change-pdf-status").get_by_role("link", name=re.compile("Download"))
    with ana.expect_download() as download:
        link.click()
    saved = tmp_path / "change.pdf"
    download.value.save_as(saved)
    assert download.value.suggested_filename == f"{number}.pdf"
    text = _pdf_text(saved)
    for expected in (TITLE, PEOPLE["approver"][1], PEOPLE["approver2"][1]):
        assert expected in text, expected
