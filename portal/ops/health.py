"""What /api/health checks: each part the portal cannot work without."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import text

from .. import jobs
from ..extensions import db


def check_database() -> str | None:
    try:
        db.session.execute(text("SELECT 1"))
        return None
    except Exception as exc:
        db.session.rollback()
        return type(exc).__name__


def check_redis() -> str | None:
    if current_app.config["SETTINGS"].jobs_inline:
        return None
    try:
        jobs.connection().ping()
        return None
    except Exception as exc:
        return type(exc).__name__


def health() -> dict[str, object]:
    checks = {"database": check_database(), "redis": check_redis()}
    down = {name: error for name, error in checks.items() if error}
    if down:
        return {"status": "degraded", "down": sorted(down), "errors": down}
    return {"status": "ok"}
