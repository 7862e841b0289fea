"""In a real browser: an admin reads the reports and downloads the monthly PDF.

A requester files tickets and an agent resolves one; the admin opens the service-desk
report, sees its charts and, in the table under the first one, the tickets just filed and
resolved; switches the period with the form (htmx swaps the results and pushes the URL);
opens the other tabs; then has the PDF of this month built and finds the month's figures
in its text. Runs against the gunicorn portal of tests/e2e/conftest.py, which other tests
share: figures are compared with a count taken before the tickets were filed.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import PEOPLE, Portal
from .test_change_flow import _pdf_text
from .test_invite_flow import sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not Path("/usr/bin/chromium").exists(),
        reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]

SUBJECTS = (
    "Report flow: monitor flickers",
    "Report flow: keyboard missing keys",
    "Report flow: docking station dead",
)
CREATED_CHART = "Tickets created and resolved"
BACKLOG_CHART = "Backlog now by age and priority"


def _person(page: Page, portal: Portal, role: str) -> None:
    email, name = PEOPLE[role]
    sign_in(page, portal, email, portal.people_password)
    expect(page.get_by_role("heading", name=f"Hello, {name}")).to_be_visible()


def _admin(page: Page, portal: Portal) -> None:
    sign_in(page, portal, portal.admin_email, portal.admin_password)
    expect(page.get_by_role("heading", name=f"Hello, {portal.admin_name}")).to_be_visible()


def _file(page: Page, portal: Portal, subject: str) -> str:
    """File a ticket as the signed-in person; returns its page's URL."""
    page.goto(f"{portal.url}/tickets/new")
    page.get_by_label("Subject").fill(subject)
    page.get_by_label("Description").fill("Noticed this morning at my desk.")
    page.get_by_role("button", name="File ticket").click()
    expect(page.get_by_role("alert")).to_contain_text("is filed")
    return page.url


def _month_bounds(today: date) -> tuple[date, date]:
    first = today.replace(day=1)
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return first, last


def _created_and_resolved(page: Page) -> tuple[int, int]:
    """The sums of the Created and Resolved columns of the first figure's table."""
    table = page.locator("#table-created_resolved")
    expect(table.locator("thead th")).to_have_text(["Day", "Created", "Resolved"])
    created = resolved = 0
    for row in table.locator("tbody tr").all():
        cells = row.locator("td").all_inner_texts()
        created += int(cells[1])
        resolved += int(cells[2])
    return created, resolved


def _pdf_value(text: str, label: str) -> str:
    """The value drawn right after a key figure's label in the PDF's text."""
    strings = re.findall(r"\((.*?)(?<!\\)\)\s*Tj", text)
    index = strings.index(label)
    return strings[index + 1]


def test_admin_reads_the_reports_and_downloads_the_monthly_pdf(
    portal: Portal, new_page: Any, tmp_path: Path
) -> None:
    # People's days run in UTC (no zone of their own, the portal's default).
    today = datetime.now(UTC).date()
    first, last = _month_bounds(today)
    admin = new_page()
    _admin(admin, portal)

    # The month's counts before this test's tickets, other tests' tickets included. Asked
    # as a custom range, so that the page read afterwards answers a question of its own.
    admin.goto(
        f"{portal.url}/reports/service-desk?period=custom"
        f"&start={first.isoformat()}&end={last.isoformat()}"
    )
    expect(admin.locator("#report-period")).to_contain_text("times in UTC")
    created_before, resolved_before = _created_and_resolved(admin)

    requester = new_page()
    _person(requester, portal, "requester")
    urls = [_file(requester, portal, subject) for subject in SUBJECTS]

    agent = new_page()
    _person(agent, portal, "agent")
    agent.goto(urls[0])
    expect(agent.get_by_role("heading", name=re.compile(SUBJECTS[0]))).to_be_visible()
    agent.once("dialog", lambda dialog: dialog.accept())
    agent.locator("#status-actions").get_by_role("button", name="Resolved").click()
    expect(agent.get_by_role("alert")).to_contain_text("is now resolved.")

    # The report of this month: charts drawn as SVG, each named for screen readers.
    admin.goto(f"{portal.url}/reports/service-desk")
    expect(admin.get_by_role("heading", name="Service desk report")).to_be_visible()
    expect(admin.locator("#report-period")).to_contain_text(
        f"{first.isoformat()} – {last.isoformat()}"
    )
    for title in (CREATED_CHART, BACKLOG_CHART):
        chart = admin.get_by_role("img", name=title, exact=True)
        expect(chart).to_be_visible()
        expect(chart).to_have_attribute("aria-label", title)
        assert chart.evaluate("node => node.tagName.toLowerCase()") == "svg"
        assert chart.evaluate("node => node.querySelector('title').textContent") == title
    created, resolved = _created_and_resolved(admin)
    assert (created - created_before, resolved - resolved_before) == (len(SUBJECTS), 1)
    today_row = admin.locator("#table-created_resolved tbody tr", has_text=today.isoformat())
    expect(today_row).to_have_count(1)
    assert int(today_row.locator("td").nth(1).inner_text()) >= len(SUBJECTS)

    # Another period through the form: htmx swaps the results in place (the page is not
    # reloaded: a value set on it survives) and pushes the URL.
    admin.evaluate("window.reportPageMarker = 'kept'")
    previous_first, previous_last = _month_bounds(first - timedelta(days=1))
    admin.locator("#period").select_option("last_month")
    expect(admin).to_have_url(re.compile(r"/reports/service-desk\?.*period=last_month"))
    expect(admin.locator("#report-period")).to_contain_text(
        f"{previous_first.isoformat()} – {previous_last.isoformat()}"
    )
    assert admin.evaluate("window.reportPageMarker") == "kept"
    expect(admin.get_by_role("img", name=CREATED_CHART, exact=True)).to_be_visible()

    # The pushed URL gives the same page on its own, and its tabs keep the period.
    admin.reload()
    expect(admin.locator("#period")).to_have_value("last_month")
    expect(admin.locator("#report-period")).to_contain_text(previous_first.isoformat())
    tabs = admin.get_by_role("navigation", name="Reports")
    tabs.get_by_role("link", name="Incidents").click()
    expect(admin.get_by_role("heading", name="Incident report")).to_be_visible()
    expect(admin).to_have_url(re.compile(r"/reports/incidents\?period=last_month"))
    expect(tabs.get_by_role("link", name="Incidents")).to_have_attribute("aria-current", "page")
    expect(admin.locator("#report-period")).to_contain_text(previous_first.isoformat())
    tabs.get_by_role("link", name="Changes").click()
    expect(admin.get_by_role("heading", name="Change report")).to_be_visible()
    expect(admin).to_have_url(re.compile(r"/reports/changes\?period=last_month"))
    expect(admin.locator("#report-period")).to_contain_text(previous_first.isoformat())

    # The monthly PDF: a month that has not started is refused; this one has.
    tabs.get_by_role("link", name="Monthly PDF").click()
    expect(admin.get_by_role("heading", name="Monthly operations report")).to_be_visible()
    expect(tabs.get_by_role("link", name="Monthly PDF")).to_have_attribute("aria-current", "page")
    month = admin.get_by_label("Month", exact=True)
    next_month = last + timedelta(days=1)
    month.fill(f"{next_month:%Y-%m}")
    admin.get_by_role("button", name="Build the PDF").click()
    expect(admin.locator("#monthly-message")).to_contain_text("has not started yet")
    admin.get_by_label("Month", exact=True).fill(f"{first:%Y-%m}")
    admin.get_by_role("button", name="Build the PDF").click()
    expect(admin).to_have_url(re.compile(r"/reports/exports/\d+$"))
    expect(admin.get_by_role("heading", name="Monthly operations report")).to_be_visible()
    expect(admin.get_by_label("Export progress")).to_have_attribute("value", "100")
    expect(admin.locator("#export-pages")).to_have_text(re.compile(r"^[1-9]\d*$"))
    with admin.expect_download() as download:
        admin.locator("#export-download").click()
    assert download.value.suggested_filename.endswith(".pdf")
    saved = tmp_path / "monthly.pdf"
    download.value.save_as(saved)

    text = _pdf_text(saved)
    assert "Monthly operations report" in text
    assert f"{first:%B %Y}" in text
    assert _pdf_value(text, "Tickets created") == str(created)
    assert _pdf_value(text, "Tickets resolved") == str(resolved)
