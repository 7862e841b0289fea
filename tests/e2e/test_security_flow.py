"""In a real browser: containment.

An auditor filters the audit log to one person's failed sign-ins and exports them; the
CSV holds exactly those lines. Then an admin marks that person's account compromised
while they are signed in on the ticket list in a browser of their own: their page's next
request lands on the sign-in page, and their old password is refused with the message
that says why. The two people are made for this test, so the accounts other browser
tests share stay as they were.
"""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import BIN, ROOT, Portal
from .test_invite_flow import sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not Path("/usr/bin/chromium").exists(),
        reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]

PASSWORD = "Quartz-e2e-" + secrets.token_hex(8)
AUDITOR = ("quinn.auditor@example.com", "Quinn Auditor", "auditor")
PERSON = ("casey.target@example.com", "Casey Target", "agent")
FAILURES = 3


def _create(portal: Portal, email: str, name: str, role: str) -> int:
    """`flask users create` against the served portal's database; returns the new id."""
    env = {
        **os.environ,
        "PORTAL_ENV": "development",
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": f"sqlite:///{portal.tmp / 'e2e.db'}",
        "STORAGE_DIR": str(portal.tmp / "storage"),
        "AUDIT_CHECKPOINT_DIR": str(portal.tmp / "checkpoints"),
        "REDIS_URL": "",
        "MAIL_SERVER": "",
        "BASE_URL": portal.url,
    }
    args = ["users", "create", "--email", email, "--name", name, "--role", role]
    result = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [str(BIN / "flask"), "--app", "portal", *args, "--password", PASSWORD],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"\(id (\d+)\)", result.stdout)
    assert found, result.stdout
    return int(found.group(1))


def _signed_in(page: Page, portal: Portal, email: str, name: str) -> None:
    sign_in(page, portal, email, PASSWORD)
    expect(page.get_by_role("heading", name=f"Hello, {name}")).to_be_visible()


def _fail_to_sign_in(page: Page, portal: Portal, email: str, times: int) -> None:
    for n in range(times):
        sign_in(page, portal, email, f"not-the-password-{n}")
        expect(page.get_by_role("alert")).to_contain_text("do not match an active account")


def test_auditor_exports_failed_sign_ins_and_admin_contains_the_account(
    portal: Portal, new_page: Any, tmp_path: Path
) -> None:
    _create(portal, *AUDITOR)
    person_id = _create(portal, *PERSON)
    email, name, _ = PERSON

    # Someone tries the person's account; someone else's failure must not be exported.
    stranger = new_page()
    _fail_to_sign_in(stranger, portal, email, FAILURES)
    _fail_to_sign_in(stranger, portal, AUDITOR[0], 1)

    # 1. The auditor filters the log to this person's failed sign-ins.
    auditor = new_page()
    _signed_in(auditor, portal, AUDITOR[0], AUDITOR[1])
    auditor.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    expect(auditor.get_by_role("heading", name="Audit log")).to_be_visible()
    auditor.get_by_label("Action starts with").fill("auth.login_failed")
    auditor.get_by_label("Object type").fill("user")
    auditor.get_by_label("Object id").fill(str(person_id))
    auditor.get_by_role("button", name="Filter").click()
    expect(auditor).to_have_url(re.compile(rf"action=auth\.login_failed.*id={person_id}"))
    rows = auditor.locator("#audit-table tbody tr")
    expect(rows).to_have_count(FAILURES)
    for i in range(FAILURES):
        expect(rows.nth(i)).to_contain_text("auth.login_failed")
        expect(rows.nth(i)).to_contain_text(f"user {person_id}")
    listed = [rows.nth(i).locator("td").first.inner_text() for i in range(FAILURES)]

    # 2. Export: the export carries the filter, builds, and downloads as CSV.
    auditor.get_by_role("button", name="Export CSV").click()
    expect(auditor.get_by_role("heading", name="Export of audit log")).to_be_visible()
    expect(auditor.locator("#export-rows")).to_have_text(str(FAILURES))
    with auditor.expect_download() as download:
        auditor.locator("#export-download").click()
    saved = tmp_path / "audit.csv"
    download.value.save_as(saved)
    assert download.value.suggested_filename.endswith(".csv")
    with saved.open(encoding="utf-8-sig", newline="") as f:
        exported = list(csv.DictReader(f))
    assert [line["Id"] for line in exported] == listed
    for line in exported:
        assert line["Action"] == "auth.login_failed"
        assert (line["Target type"], line["Target id"]) == ("user", str(person_id))
        assert line["Actor"] == "system"
        data = json.loads(line["Data"])
        assert (data["email"], data["reason"]) == (email, "wrong password")

    # 3. The person is signed in, on the ticket list, in a browser of their own.
    person = new_page()
    _signed_in(person, portal, email, name)
    person.goto(f"{portal.url}/tickets/")
    expect(person.get_by_role("heading", name="Tickets")).to_be_visible()

    # 4. An admin finds the account, reads its sign-in attempts, and marks it compromised.
    admin = new_page()
    sign_in(admin, portal, portal.admin_email, portal.admin_password)
    expect(admin.get_by_role("heading", name=f"Hello, {portal.admin_name}")).to_be_visible()
    admin.goto(f"{portal.url}/users/{person_id}")
    admin.get_by_role("link", name="Account compromised…").click()
    expect(admin.get_by_role("heading", name=f"Compromised account: {name}")).to_be_visible()
    attempts = admin.locator("#sign-in-attempts tbody tr")
    expect(attempts).to_have_count(FAILURES + 1)  # the failures and the sign-in just now
    admin.get_by_label("Why is the account thought compromised?").fill(
        "Sign-ins from an unknown country"
    )
    admin.once("dialog", lambda dialog: dialog.accept())
    admin.get_by_role("button", name="Mark compromised").click()
    expect(admin.get_by_role("alert").first).to_contain_text(
        f"{name} is marked compromised: 1 session(s) ended"
    )
    expect(admin.locator("#compromised-state")).to_be_visible()

    # 5. The person's open page stops working: its next request (a search, sent by
    # htmx) is answered with the sign-in page.
    person.locator("#q").fill("printer")
    expect(person).to_have_url(re.compile(r"/login"))
    expect(person.get_by_role("heading", name="Sign in")).to_be_visible()

    # 6. The old password no longer opens the account, and the page says why.
    sign_in(person, portal, email, PASSWORD)
    expect(person.get_by_role("alert")).to_contain_text("may have been compromised")
    expect(person).to_have_url(re.compile(r"/login"))

    # 7. The admin's page now lists that refused attempt too.
    admin.reload()
    expect(attempts).to_have_count(FAILURES + 2)
    expect(attempts.first).to_contain_text("compromised")
