"""In a real browser: a requester files a ticket, an agent finds it and works it.

The requester sees the agent's reply but never the internal note; the agent
resolves the ticket. Runs against the gunicorn portal of tests/e2e/conftest.py.
"""

from __future__ import annotations

import re
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

SUBJECT = "Cannot log in to the VPN after password change"
REPLY = "Please reset the VPN token from the self-service page."
NOTE = "Token store was resynced at 09:00; probably stale cache."


def _person(page: Page, portal: Portal, role: str) -> None:
    email, name = PEOPLE[role]
    sign_in(page, portal, email, portal.people_password)
    expect(page.get_by_role("heading", name=f"Hello, {name}")).to_be_visible()


def test_requester_files_agent_replies_and_resolves(portal: Portal, new_page: Any) -> None:
    requester = new_page()
    _person(requester, portal, "requester")
    requester.goto(f"{portal.url}/tickets/new")
    requester.get_by_label("Subject").fill(SUBJECT)
    requester.get_by_label("Description").fill("Since this morning the **VPN** rejects me.")
    requester.get_by_role("button", name="File ticket").click()
    expect(requester.get_by_role("alert")).to_contain_text("is filed with Authentication")
    number = re.search(r"T-\d{6}", requester.get_by_role("alert").inner_text()).group(0)
    ticket_url = requester.url
    expect(requester.locator("#description strong")).to_have_text("VPN")

    agent = new_page()
    _person(agent, portal, "agent")
    agent.goto(f"{portal.url}/tickets/")
    agent.locator("#q").fill("VPN after password")
    expect(agent).to_have_url(re.compile(r"q=VPN"))
    rows = agent.locator("#tickets-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Authentication")
    rows.first.get_by_role("link", name=number).click()
    expect(agent.get_by_role("heading", name=re.compile(SUBJECT))).to_be_visible()

    agent.get_by_label("Reply").fill(NOTE)
    agent.get_by_label("Internal note (never shown to the requester)").check()
    agent.get_by_role("button", name="Send").click()
    expect(agent.get_by_role("alert")).to_contain_text("Internal note added.")
    agent.get_by_label("Reply").fill(REPLY)
    agent.get_by_role("button", name="Send").click()
    expect(agent.get_by_role("alert")).to_contain_text("Reply sent.")
    expect(agent.locator("#timeline")).to_contain_text(NOTE)

    requester.goto(ticket_url)
    expect(requester.locator("#timeline")).to_contain_text(REPLY)
    expect(requester.locator("#timeline")).not_to_contain_text(NOTE)
    expect(requester.locator(".internal-note")).to_have_count(0)

    agent.once("dialog", lambda dialog: dialog.accept())
    agent.locator("#status-actions").get_by_role("button", name="Resolved").click()
    expect(agent.get_by_role("alert")).to_contain_text(f"{number} is now resolved.")
    requester.reload()
    expect(requester.locator("h1 + p")).to_contain_text("Resolved")
