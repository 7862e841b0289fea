"""Exports on a real RQ worker process: the file is built out of the request, and a job
that died is reconciled by the cleanup sweep into a failed export, never left running."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from rq.job import Job

from portal import create_app, storage
from portal.extensions import db
from portal.reports import services, tasks
from portal.reports.models import Export
from portal.tickets import services as tickets
from tests.conftest import REDIS_URL, fresh_database_url, needs_redis, settings_for_tests
from tests.factories import make_user

pytestmark = needs_redis


@pytest.fixture
def worker_app(tmp_path):
    overrides = {
        "DATABASE_URL": fresh_database_url("exports"),
        "REDIS_URL": REDIS_URL,
        "STORAGE_DIR": str(tmp_path / "storage"),
    }
    app = create_app(settings_for_tests(**overrides))
    Redis.from_url(REDIS_URL).flushdb()  # the test Redis database is ours alone
    with app.test_request_context("/"):
        from flask_migrate import upgrade

        upgrade()
    yield app, overrides
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _run_worker(app, overrides) -> None:
    env = {
        **os.environ,
        "PORTAL_ENV": "testing",
        "SECRET_KEY": app.config["SECRET_KEY"],
        **{k: str(v) for k, v in overrides.items()},
    }
    flask = str(Path(sys.executable).parent / "flask")
    worker = subprocess.run(
        [flask, "--app", "portal", "worker", "--burst", "--queue", "exports"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr[-2000:]


def test_a_worker_process_builds_the_export(worker_app):
    app, overrides = worker_app
    with app.test_request_context("/"):
        agent = make_user(role="agent")
        requester = make_user(role="requester")
        for i in range(7):
            tickets.create_ticket(requester, f"Printer {i}", "d")
        export = services.request_export("tickets", {}, agent)
        assert export.status == "queued"  # not inline: it waits for a worker
        export_id = export.id
    _run_worker(app, overrides)
    with app.test_request_context("/"):
        export = db.session.get(Export, export_id)
        assert (export.status, export.rows_done, export.rows_total) == ("done", 7, 7)
        with storage.open(export.file_key) as stored:
            lines = stored.read().decode("utf-8-sig").splitlines()
        assert len(lines) == 8 and lines[0].startswith("Number,")


def test_the_sweep_fails_an_export_whose_job_died_or_was_lost(worker_app):
    app, _ = worker_app
    with app.test_request_context("/"):
        agent = make_user(role="agent")
        died = services.request_export("tickets", {}, agent)
        lost = services.request_export("users", {}, make_user(role="admin"))
        waiting = services.request_export("tickets", {"status": "open"}, agent)
        # A worker that was killed: RQ marks the job failed and the row still says running.
        died.status = "running"
        db.session.commit()
        job = Job.fetch(died.job_id, connection=Redis.from_url(REDIS_URL))
        job.set_status("failed")
        # A job Redis lost long ago (flushed, or expired).
        Job.fetch(lost.job_id, connection=Redis.from_url(REDIS_URL)).delete()
        lost.created_at -= timedelta(hours=1)
        db.session.commit()

        summary = tasks.cleanup_exports()

        assert "2 failed as lost" in summary
        db.session.expire_all()
        assert died.status == "failed" and "worker stopped" in died.error
        assert lost.status == "failed" and "lost" in lost.error
        assert waiting.status == "queued"  # its job is still queued: left alone
