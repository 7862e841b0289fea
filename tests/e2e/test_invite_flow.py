"""In a real browser: an admin invites someone, they join, the admin deactivates them.

Runs against gunicorn started by the `portal` fixture (tests/e2e/conftest.py),
with Debian's Chromium; the whole module is skipped where it is not installed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import PEOPLE, Portal

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not Path("/usr/bin/chromium").exists(),
        reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]

NEW_EMAIL = "new.person@example.com"
NEW_NAME = "Robin Newcomer"
NEW_PASSWORD = "violet-Harbor-lantern-42"


def sign_in(page: Page, portal: Portal, email: str, password: str) -> None:
    page.goto(f"{portal.url}/login")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_wrong_password_is_refused_and_keeps_the_email(portal: Portal, new_page: Any) -> None:
    page = new_page()
    sign_in(page, portal, portal.admin_email, "not-the-right-password")

    expect(page.get_by_role("alert")).to_contain_text(
        "That email and password do not match an active account."
    )
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.locator("input[name=email]")).to_have_value(portal.admin_email)
    expect(page.locator("input[name=password]")).to_have_value("")
    expect(page.get_by_role("heading", name="Sign in")).to_have_count(1)


def test_invite_accept_and_deactivate(portal: Portal, new_page: Any) -> None:
    # 1. The admin signs in and lands on the home page.
    admin = new_page()
    sign_in(admin, portal, portal.admin_email, portal.admin_password)
    expect(admin).to_have_url(f"{portal.url}/")
    expect(admin.get_by_role("heading", name=f"Hello, {portal.admin_name}")).to_be_visible()

    # 2. Invitations: invite the new person as an agent; the invitation is listed.
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Invitations").click()
    expect(admin).to_have_url(f"{portal.url}/users/invitations")
    form = admin.locator("#invite-form")
    form.locator("input[name=email]").fill(NEW_EMAIL)
    form.locator("select[name=role]").select_option("agent")
    form.get_by_role("button", name="Send invitation").click()
    expect(admin.get_by_role("alert")).to_contain_text(f"Invitation sent to {NEW_EMAIL}.")
    row = admin.locator("#invitations-table tbody tr", has_text=NEW_EMAIL)
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(1)).to_have_text("agent")
    expect(row.locator("td").nth(4)).to_have_text("pending")

    # 3. The Outbox holds the message (no mail server); its body carries the link.
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Outbox").click()
    expect(admin).to_have_url(f"{portal.url}/outbox/")
    message_row = admin.locator("#outbox-table tbody tr", has_text=NEW_EMAIL)
    expect(message_row).to_have_count(1)
    expect(message_row).to_contain_text("held")
    message_row.get_by_role("link", name="You are invited to the Ops Portal").click()
    body = admin.locator("#mail-body")
    expect(body).to_contain_text("invited you to the Ops Portal as agent")
    link = body.locator(f'a[href^="{portal.url}/invite/"]')
    expect(link).to_have_count(1)
    invite_url = link.get_attribute("href")
    assert invite_url and re.fullmatch(re.escape(portal.url) + r"/invite/[\w.\-]+", invite_url)
    expect(link).to_have_text(invite_url)  # the link a person reads is the one they follow

    # 4. The invitee, in a browser of their own, opens the link and creates the account.
    person = new_page()
    person.goto(invite_url)
    expect(person.get_by_role("heading", name="Welcome to the Ops Portal")).to_be_visible()
    expect(person.locator("main")).to_contain_text(NEW_EMAIL)
    person.locator("input[name=name]").fill(NEW_NAME)
    person.locator("input[name=password]").fill(NEW_PASSWORD)
    person.locator("input[name=confirm]").fill(NEW_PASSWORD)
    person.get_by_role("button", name="Create my account").click()
    expect(person).to_have_url(f"{portal.url}/")
    expect(person.get_by_role("heading", name=f"Hello, {NEW_NAME}")).to_be_visible()
    expect(person.get_by_role("alert")).to_contain_text(f"Welcome, {NEW_NAME}.")
    expect(person.locator("main")).to_contain_text("You are signed in as agent.")

    # The invitation is no longer pending for the admin.
    admin.goto(f"{portal.url}/users/invitations")
    expect(admin.locator("#invitations-table tbody tr", has_text=NEW_EMAIL)).to_have_count(0)

    # 5. Users: the live search narrows the table to the new person.
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    expect(admin).to_have_url(f"{portal.url}/users/")
    table = admin.locator("#users-table")
    # The admin, the people the fixture made, and the newcomer (other tests of this
    # session's portal may have added people of their own).
    for _email, name in (("", portal.admin_name), *PEOPLE.values(), (NEW_EMAIL, NEW_NAME)):
        expect(table.locator("tbody tr", has_text=name)).to_have_count(1)

    admin.locator("#q").press_sequentially("newcomer", delay=30)
    expect(admin).to_have_url(re.compile(r"/users/\?q=newcomer(&|$)"))  # hx-push-url
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).not_to_contain_text(portal.admin_name)
    person_row = table.locator("tbody tr", has_text=NEW_EMAIL)
    expect(person_row).to_contain_text(NEW_NAME)
    expect(person_row).to_contain_text("agent")
    expect(person_row).to_contain_text("active")

    admin.locator("#q").fill("nobody-by-this-name")
    expect(admin.locator("#no-results")).to_have_text("No users match these filters.")
    expect(admin.locator("#users-table")).to_have_count(0)

    admin.locator("#q").fill(NEW_EMAIL)
    person_link = admin.locator("#users-table").get_by_role("link", name=NEW_NAME)
    expect(person_link).to_have_count(1)
    person_link.click()

    # Their page: deactivate, accepting the confirmation dialog.
    expect(admin.get_by_role("heading", level=1)).to_contain_text(NEW_NAME)
    expect(admin.locator("h1 .badge")).to_have_text("active")
    dialogs: list[str] = []

    def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    admin.once("dialog", accept)
    admin.get_by_role("button", name="Deactivate").click()
    expect(admin.locator("h1 .badge")).to_have_text("deactivated")
    expect(admin.get_by_role("alert")).to_contain_text(
        f"{NEW_NAME} is deactivated; their sessions have ended."
    )
    expect(admin.get_by_role("button", name="Reactivate")).to_be_visible()
    assert dialogs == [f"Deactivate {NEW_NAME}? Their sessions end at once."]

    # 6. The person's open page stops working: a reload sends them to the sign-in page.
    person.reload()
    expect(person).to_have_url(re.compile(re.escape(f"{portal.url}/login")))
    expect(person.get_by_role("heading", name="Sign in")).to_be_visible()
    person.goto(f"{portal.url}/")
    expect(person).to_have_url(re.compile(re.escape(f"{portal.url}/login")))

    # And signing in again is refused like any wrong password.
    sign_in(person, portal, NEW_EMAIL, NEW_PASSWORD)
    expect(person.get_by_role("alert")).to_contain_text(
        "That email and password do not match an active account."
    )
