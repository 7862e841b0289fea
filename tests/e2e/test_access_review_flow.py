"""In a real browser: an admin starts an access review of everyone, decides each person
(the row changes in place), deactivates one person through it and confirms; that
person's open session stops working. A second admin decides the first admin's own
access (nobody reviews their own), the review completes, and its PDF evidence lists
every decision. Runs against the gunicorn portal of tests/e2e/conftest.py.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import Portal, _flask
from .test_change_flow import _pdf_text
from .test_invite_flow import sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not Path("/usr/bin/chromium").exists(),
        reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]

LEAVER = ("casey.review@example.com", "Casey Contractor")
SECOND_ADMIN = ("morgan.review@example.com", "Morgan Admin")
PASSWORD = "Quartz-e2e-" + secrets.token_hex(8)
TITLE = "Year-end access review"
REASON = "Contract ended."


def _create_accounts(portal: Portal) -> None:
    """Two more people, made with `flask users create` against the portal's database."""
    env = {
        **os.environ,
        "PORTAL_ENV": "development",
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": f"sqlite:///{portal.tmp / 'e2e.db'}",
        "STORAGE_DIR": str(portal.tmp / "storage"),
        "REDIS_URL": "",
        "MAIL_SERVER": "",
    }
    for (email, name), role in ((LEAVER, "agent"), (SECOND_ADMIN, "admin")):
        _flask(
            env, "users", "create", "--email", email, "--name", name, "--role", role,
            "--password", PASSWORD,
        )  # fmt: skip


def _signed_in(page: Page, portal: Portal, email: str, password: str, name: str) -> None:
    sign_in(page, portal, email, password)
    expect(page.get_by_role("heading", name=f"Hello, {name}")).to_be_visible()


def _row(page: Page, email: str) -> Any:
    return page.locator(f'#review-items tr[data-person="{email}"]')


def _decide(page: Page, email: str, decision: str, comment: str) -> None:
    row = _row(page, email)
    row.get_by_label("Decision").select_option(decision)
    row.get_by_label("Comment").fill(comment)
    row.get_by_role("button", name="Save decision").click()
    # htmx swapped the row: the decision shows, the button now offers a change.
    expect(row.get_by_role("button", name="Change decision")).to_be_visible()
    expect(row).to_contain_text("Not carried out until confirmed")


def test_an_access_review_deactivates_one_person_and_its_pdf_lists_every_decision(
    portal: Portal, new_page: Any, tmp_path: Path
) -> None:
    _create_accounts(portal)
    casey = new_page()
    _signed_in(casey, portal, LEAVER[0], PASSWORD, LEAVER[1])

    admin = new_page()
    admin.on("dialog", lambda dialog: dialog.accept())
    _signed_in(admin, portal, portal.admin_email, portal.admin_password, portal.admin_name)
    admin.get_by_role("link", name="Access reviews").click()
    admin.get_by_label("Title").fill(TITLE)
    admin.get_by_label("Scope").select_option("all")
    admin.get_by_label("Reviewers").select_option("admins")
    admin.get_by_role("button", name="Start review").click()
    expect(admin.get_by_role("heading", name=TITLE)).to_be_visible()
    expect(admin.get_by_role("alert")).to_contain_text("Access review started")
    review_url = admin.url

    # Everyone active is on the roster; the admin's own row has no form.
    rows = admin.locator("#review-items tbody tr")
    people = [rows.nth(i).get_attribute("data-person") for i in range(rows.count())]
    assert LEAVER[0] in people and portal.admin_email in people
    own = _row(admin, portal.admin_email)
    expect(own).to_contain_text("Undecided · reviewer: admins")
    expect(own.get_by_role("button")).to_have_count(0)

    _decide(admin, LEAVER[0], "deactivate", REASON)
    expect(_row(admin, LEAVER[0])).to_contain_text("Deactivate")
    for email in people:
        if email not in (LEAVER[0], portal.admin_email):
            _decide(admin, email, "keep", "Still needed for their work.")

    admin.get_by_role("button", name="Confirm my decisions").click()
    expect(admin.get_by_role("alert").first).to_contain_text(
        f"{len(people) - 1} decision(s) carried out."
    )
    expect(_row(admin, LEAVER[0])).to_contain_text("deactivated; sessions ended")

    # Casey's open session stops working at the next request.
    casey.reload()
    expect(casey).to_have_url(re.compile(r"/login"))

    # The admin's own access is another admin's to decide.
    morgan = new_page()
    morgan.on("dialog", lambda dialog: dialog.accept())
    _signed_in(morgan, portal, SECOND_ADMIN[0], PASSWORD, SECOND_ADMIN[1])
    morgan.goto(review_url)
    _decide(morgan, portal.admin_email, "keep", "Runs the portal.")
    morgan.get_by_role("button", name="Confirm my decisions").click()
    expect(morgan.get_by_role("alert").first).to_contain_text("1 decision(s) carried out.")

    admin.reload()
    admin.get_by_role("button", name="Complete review").click()
    expect(admin.get_by_role("alert").first).to_contain_text("The access review is complete")
    with admin.expect_download() as download:
        admin.get_by_role("link", name="Evidence (PDF)").click()
    saved = tmp_path / "review.pdf"
    download.value.save_as(saved)
    text = _pdf_text(saved)
    for email in people:
        assert email in text, email
    assert text.count("Keep") >= len(people) - 1
    for expected in ("Deactivate", REASON, "deactivated;", "Roster hash", "Audit chain head"):
        assert expected in text, expected
