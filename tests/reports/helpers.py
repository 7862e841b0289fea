"""Reading an export back as a person would: the download, opened as a CSV."""

from __future__ import annotations

import csv
import io
import re

from sqlalchemy import select

from portal.extensions import db
from portal.reports.models import Export

BOM = "\ufeff"


def start(client, kind: str, query: str = "") -> Export:
    """Press a list's Export button; the export (inline, so already built)."""
    response = client.post("/reports/exports", data={"kind": kind, "query": query})
    assert response.status_code == 302, response.text
    export_id = int(re.search(r"/reports/exports/(\d+)$", response.headers["Location"])[1])
    db.session.expire_all()
    return db.session.get(Export, export_id)


def download(client, export: Export) -> list[list[str]]:
    """The export's file as rows (header first), checking how it is served."""
    response = client.get(f"/reports/exports/{export.id}/download")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.mimetype == "text/csv"
    text = response.get_data().decode("utf-8")
    assert text.startswith(BOM)
    return list(csv.reader(io.StringIO(text[len(BOM) :], newline="")))


def latest_export() -> Export:
    return db.session.scalar(select(Export).order_by(Export.id.desc()).limit(1))


def written(plan, zone: str) -> bytes:
    """The rows an export of `plan` writes on this database, in `zone`. On PostgreSQL the
    export streams through COPY; the row-by-row writer (SQLite's) must give the same
    bytes there, so both are written and compared."""
    import io
    from zoneinfo import ZoneInfo

    from portal.reports import csv_writer

    python = io.BytesIO()
    rows = csv_writer._python_rows(plan, python, ZoneInfo(zone), lambda done: None)
    if db.session.get_bind().dialect.name == "postgresql":
        copy = io.BytesIO()
        assert csv_writer._copy_rows(plan, copy, zone, lambda done: None) == rows
        assert copy.getvalue() == python.getvalue()
    return python.getvalue()


def parsed(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
