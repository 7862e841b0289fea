"""Fixtures of the browser tests: a real portal (gunicorn) in a subprocess, and Chromium.

The server gets its own temporary SQLite database and storage, so these tests
never touch the in-process test database of tests/conftest.py.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN_EMAIL = "admin@example.com"
ADMIN_NAME = "Dana Admin"
ADMIN_PASSWORD = "Granite-e2e-" + secrets.token_hex(8)
STARTUP_SECONDS = 30
TIMEOUT_MS = 10_000


# Accounts made with `flask users create` for the flows that need more people.
PEOPLE = {
    "requester": ("riley@example.com", "Riley Requester"),
    "agent": ("ana@example.com", "Ana Agent"),
    "approver": ("alex@example.com", "Alex Approver"),
    "approver2": ("blair@example.com", "Blair Approver"),
}
# A key that is not a role names the role its account has.
PEOPLE_ROLES = {"approver2": "approver"}
PEOPLE_PASSWORD = "Basalt-e2e-" + secrets.token_hex(8)


@dataclass(frozen=True)
class Portal:
    url: str
    admin_email: str
    admin_name: str
    admin_password: str
    tmp: Path
    people_password: str = PEOPLE_PASSWORD


@pytest.fixture(autouse=True)
def _transaction() -> Iterator[None]:
    """Overrides tests/conftest.py's: the portal under test runs in its own process."""
    yield


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _flask(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "portal", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"flask {args[0]} {args[1]} failed:\n{result.stdout}\n{result.stderr}")


def _wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
    pytest.fail(f"the portal did not answer /api/health within {STARTUP_SECONDS}s:\n{tail}")


@pytest.fixture(scope="session")
def portal(request: pytest.FixtureRequest) -> Iterator[Portal]:
    """A migrated database with one admin, served by gunicorn on a free local port."""
    tmp = Path(tempfile.mkdtemp(prefix="portal-e2e-"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PORTAL_ENV": "development",
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": f"sqlite:///{tmp / 'e2e.db'}",
        "STORAGE_DIR": str(tmp / "storage"),
        "REDIS_URL": "",
        "MAIL_SERVER": "",
        "BASE_URL": url,
        "LOGIN_RATE_LIMIT": "1000 per minute",
    }
    _flask(env, "db", "upgrade")
    _flask(
        env,
        "users",
        "create-admin",
        "--email",
        ADMIN_EMAIL,
        "--name",
        ADMIN_NAME,
        "--password",
        ADMIN_PASSWORD,
    )
    for key, (email, name) in PEOPLE.items():
        role = PEOPLE_ROLES.get(key, key)
        _flask(
            env,
            "users",
            "create",
            "--email",
            email,
            "--name",
            name,
            "--role",
            role,
            "--password",
            PEOPLE_PASSWORD,
        )
    log = tmp / "gunicorn.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(url, server, log)
        yield Portal(url, ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, tmp)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    if request.session.testsfailed:
        # Kept for the post-mortem: the server's log (tracebacks) and database.
        print(f"\nportal server log: {log}\n" + log.read_text(errors="replace")[-6000:])
    else:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.e2e_failed = report.failed  # type: ignore[attr-defined]
    return report


SCREENSHOTS = Path(tempfile.gettempdir()) / "portal-e2e-screenshots"


@pytest.fixture
def new_page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """new_page() → a page in a fresh browser context (a separate person, own cookies).

    When the test fails, a screenshot of every page it opened is saved outside the repo.
    """
    contexts: list[Any] = []
    pages: list[Any] = []

    def make() -> Any:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        return page

    yield make
    if getattr(request.node, "e2e_failed", False):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for n, page in enumerate(pages, 1):
            target = SCREENSHOTS / f"{request.node.name}-{n}.png"
            try:
                page.screenshot(path=str(target), full_page=True, timeout=5000)
                print(f"screenshot: {target} ({page.url})")
            except Exception as exc:  # noqa: BLE001 - a screenshot must not hide the failure
                print(f"no screenshot of page {n}: {exc}")
    for context in contexts:
        context.close()
