"""PostgreSQL: after a sealed segment is archived, the chain verified by several worker
processes starts where one walk starts (the first remaining row, after the seal)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal import create_app
from portal.audits import parallel, record
from portal.audits import services as audit_services
from portal.audits.models import AuditEvent
from portal.audits.verification import verify
from portal.extensions import db
from portal.retention.run import run_retention
from portal.timeutil import utcnow
from tests.conftest import TMP, fresh_database_url, settings_for_tests
from tests.retention.helpers import YEAR


def test_workers_verify_from_the_seal(monkeypatch):
    url = fresh_database_url("retention_parallel")
    if not url.startswith("postgresql"):
        pytest.skip("worker processes read PostgreSQL")
    monkeypatch.setattr(parallel, "SEGMENT", 50)
    settings = settings_for_tests(
        DATABASE_URL=url, AUDIT_CHECKPOINT_EVERY=0, ARCHIVE_DIR=str(TMP / "parallel-archive")
    )
    app = create_app(settings)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        old = utcnow() - 4 * YEAR
        with monkeypatch.context() as patched:
            patched.setattr(audit_services, "utcnow", lambda: old)
            for i in range(120):
                record("test.old", None, ("thing", i), i=i)
            db.session.commit()
        for i in range(130):
            record("test.recent", None, ("thing", i), i=i)
        db.session.commit()

        run = run_retention()
        assert run.status == "done", run.error
        assert db.session.scalar(select(func.min(AuditEvent.id))) == 121
        one, several = verify(workers=1), verify(workers=2)
        assert one.ok and several.ok, several.problems
        assert several.checked == one.checked == 130 + 2
        db.session.remove()
        db.engine.dispose()
