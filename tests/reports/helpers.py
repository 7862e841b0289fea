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
