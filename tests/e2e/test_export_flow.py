"""In a real browser: an agent filters the ticket list, exports it, watches the export
finish and downloads a CSV whose rows are the filtered list's."""

from __future__ import annotations

import csv
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

WORD = "Zeppelin"


def _person(page: Page, portal: Portal, role: str) -> None:
    email, name = PEOPLE[role]
    sign_in(page, portal, email, portal.people_password)
    expect(page.get_by_role("heading", name=f"Hello, {name}")).to_be_visible()


def _file(page: Page, portal: Portal, subject: str) -> None:
    page.goto(f"{portal.url}/tickets/new")
    page.get_by_label("Subject").fill(subject)
    page.get_by_label("Description").fill("Found in the hangar.")
    page.get_by_role("button", name="File ticket").click()
    expect(page.get_by_role("alert")).to_contain_text("is filed")


def test_agent_exports_the_filtered_list(portal: Portal, new_page: Any, tmp_path: Path) -> None:
    requester = new_page()
    _person(requester, portal, "requester")
    for subject in (f"{WORD} printer jams", f"{WORD} badge reader", "=cmd| formula subject"):
        _file(requester, portal, subject)

    agent = new_page()
    _person(agent, portal, "agent")
    agent.goto(f"{portal.url}/tickets/")
    agent.locator("#q").fill(WORD)
    expect(agent).to_have_url(re.compile(rf"q={WORD}"))
    rows = agent.locator("#tickets-table tbody tr")
    expect(rows).to_have_count(2)
    listed = [re.search(r"T-\d{6}", rows.nth(i).inner_text()).group(0) for i in range(2)]

    # The Export button sits in the part the filter refreshed: it carries the filter.
    expect(agent.locator("#export-form input[name=query]")).to_have_value(re.compile(WORD))
    agent.get_by_role("button", name="Export CSV").click()
    expect(agent.get_by_role("heading", name="Export of tickets")).to_be_visible()
    expect(agent.locator("#export-progress, progress").first).to_have_attribute("value", "100")
    expect(agent.locator("#export-rows")).to_have_text("2")
    with agent.expect_download() as download:
        agent.locator("#export-download").click()
    saved = tmp_path / "export.csv"
    download.value.save_as(saved)
    assert download.value.suggested_filename.endswith(".csv")
    with saved.open(encoding="utf-8-sig", newline="") as f:
        exported = list(csv.reader(f))
    assert exported[0][0] == "Number"
    assert [r[0] for r in exported[1:]] == listed

    # My exports lists it.
    agent.goto(f"{portal.url}/reports/exports")
    expect(agent.locator("#exports-table tbody tr")).to_have_count(1)
    expect(agent.locator("#exports-table")).to_contain_text(f"q={WORD}")
