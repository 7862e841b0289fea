"""The shared list of blocked addresses outlives portal/cache.py's clearing (on purpose:
every request asks for it), so a test that rolled its blocks back leaves them listed
until the next write. Each test here starts and ends without that list."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from portal import jobs
from portal.audits.block_guard import LIST_KEY


@pytest.fixture(autouse=True)
def _no_shared_block_list(app: Flask) -> Iterator[None]:
    jobs.connection(app).delete(LIST_KEY)
    yield
    jobs.connection(app).delete(LIST_KEY)
