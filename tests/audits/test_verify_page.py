"""The verification page: start a run, watch its progress fragment, read what it found;
the run's row, its `audit.verified` event, and who may see it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import select

from portal import create_app
from portal.audits import record
from portal.audits.models import AuditEvent, VerificationRun
from portal.audits.runs import (
    STALE_AFTER,
    last_finished_run,
    request_run,
    run_verification,
    scheduled_verification,
)
from portal.extensions import db
from portal.timeutil import utcnow
from tests.audits.tamper import as_intruder
from tests.conftest import REDIS_URL, fresh_database_url, needs_redis, settings_for_tests
from tests.factories import make_user

HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def no_exported_checkpoints(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings(AUDIT_CHECKPOINT_DIR=str(tmp_path), AUDIT_CHECKPOINT_EVERY=0)


def _events(app, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    with app.test_request_context("/"):
        ids = [record("test.verified_page", None, ("thing", i), i=i).id for i in range(n)]
        db.session.commit()
    return ids


def _start(client):  # type: ignore[no-untyped-def]
    response = client.post("/audits/verify")
    assert response.status_code == 302
    run_url = response.headers["Location"]
    assert re.fullmatch(r"/audits/verify/\d+", run_url)
    return run_url, int(run_url.rsplit("/", 1)[1])


def test_an_auditor_starts_a_verification_and_reads_that_the_chain_holds(app, client, as_role):
    ids = _events(app, 5)
    auditor = as_role("auditor")
    page = client.get("/audits/verify")
    assert page.status_code == 200
    assert 'id="verification-start"' in page.text and 'id="no-verifications"' in page.text

    run_url, run_id = _start(client)  # no Redis: the job ran inline
    shown = client.get(run_url)
    assert shown.status_code == 200
    assert "The chain is intact" in shown.text
    assert "hx-trigger" not in shown.text  # finished: no more polling
    run = db.session.get(VerificationRun, run_id)
    assert (run.status, run.ok, run.requested_by_id) == ("done", True, auditor.id)
    assert run.head_id >= ids[-1] and run.checked == run.head_id and run.problems == []
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "audit.verified")
    ).one()
    assert event.actor_id == auditor.id and event.target_id == str(run_id)
    assert event.data["ok"] is True and event.data["head_id"] == run.head_id
    assert last_finished_run().id == run_id
    # The list shows the run, and the audit log links to the page.
    listed = client.get("/audits/verify")
    assert f'id="verification-row-{run_id}"' in listed.text and "intact" in listed.text
    assert 'href="/audits/verify"' in client.get("/audits/").text


def test_a_broken_chain_is_named_on_the_page(app, client, as_role):
    ids = _events(app, 6)
    with app.test_request_context("/"):
        as_intruder("UPDATE audit_events SET ip = '6.6.6.6' WHERE id = :id", id=ids[2])
        as_intruder("DELETE FROM audit_events WHERE id = :id", id=ids[4])
    as_role("admin")
    run_url, run_id = _start(client)
    shown = client.get(run_url)
    assert "The chain is broken: 2 problems" in shown.text
    assert f'href="/audits/{ids[2]}">#{ids[2]}' in shown.text and ">edited<" in shown.text
    assert f'href="/audits/{ids[5]}">#{ids[5]}' in shown.text and ">deleted<" in shown.text
    run = db.session.get(VerificationRun, run_id)
    assert run.ok is False
    assert [(p["event_id"], p["kind"]) for p in run.problems] == [
        (ids[2], "edited"),
        (ids[5], "deleted"),
    ]
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "audit.verified")
    ).one()
    assert event.data["ok"] is False and event.data["problems"] == 2


def test_a_running_verification_polls_a_progress_fragment(app, client, as_role):
    as_role("auditor")
    with app.test_request_context("/"):
        run = VerificationRun(status="running", checked=250, total=1000, problems=[])
        db.session.add(run)
        db.session.commit()
        run_id = run.id
    page = client.get("/audits/verify")
    assert f'id="verification-{run_id}"' in page.text
    assert 'id="verification-start" disabled' in page.text
    fragment = client.get(f"/audits/verify/{run_id}", headers=HX)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert 'hx-trigger="every 1s"' in fragment.text
    assert 'value="25"' in fragment.text and "Checked 250 of 1,000 events" in fragment.text
    # Starting another while one runs shows the running one instead.
    response = client.post("/audits/verify")
    assert response.headers["Location"] == f"/audits/verify/{run_id}"
    assert db.session.scalar(select(db.func.count()).select_from(VerificationRun)) == 1


def test_a_run_is_verified_once_however_often_its_job_runs(app, client, as_role):
    _events(app, 2)
    as_role("auditor")
    _, run_id = _start(client)
    with app.test_request_context("/"):
        assert run_verification(run_id) == "not queued"
        verified = select(db.func.count()).where(AuditEvent.action == "audit.verified")
        assert db.session.scalar(verified) == 1


@pytest.mark.parametrize("role", ["requester", "agent", "approver"])
def test_only_auditors_and_admins_may_verify(client, as_role, role):
    as_role(role)
    assert client.get("/audits/verify").status_code == 403
    assert client.post("/audits/verify").status_code == 403
    assert db.session.scalar(select(db.func.count()).select_from(VerificationRun)) == 0


def test_an_unknown_run_is_not_found(client, as_role):
    as_role("auditor")
    assert client.get("/audits/verify/999999").status_code == 404


def test_a_run_whose_worker_was_lost_is_failed_by_the_daily_job(app, client, as_role):
    as_role("auditor")
    with app.test_request_context("/"):
        lost = VerificationRun(status="running", problems=[])
        lost.created_at = utcnow() - STALE_AFTER - timedelta(minutes=1)
        db.session.add(lost)
        db.session.commit()
        lost_id = lost.id
        assert scheduled_verification().endswith(": done")  # inline: it ran at once
        db.session.expire_all()
        lost = db.session.get(VerificationRun, lost_id)
        assert lost.status == "failed" and "worker stopped" in lost.error
    page = client.get(f"/audits/verify/{lost_id}")
    assert "could not finish: The worker stopped" in page.text
    assert 'id="verification-start" disabled' not in client.get("/audits/verify").text


@needs_redis
def test_a_worker_process_verifies_the_chain(tmp_path):
    overrides = {
        "DATABASE_URL": fresh_database_url("verify_worker"),
        "REDIS_URL": REDIS_URL,
        "AUDIT_CHECKPOINT_DIR": str(tmp_path),
    }
    app = create_app(settings_for_tests(**overrides))
    Redis.from_url(REDIS_URL).flushdb()  # the test Redis database is ours alone
    try:
        with app.test_request_context("/"):
            from flask_migrate import upgrade

            upgrade()
            auditor = make_user(role="auditor")
            _events(app, 30)
            run = request_run(auditor)
            assert run.status == "queued"  # not inline: it waits for a worker
            run_id = run.id
        env = {
            **os.environ,
            "PORTAL_ENV": "testing",
            "SECRET_KEY": app.config["SECRET_KEY"],
            **{k: str(v) for k, v in overrides.items()},
        }
        flask = str(Path(sys.executable).parent / "flask")
        worker = subprocess.run(
            [flask, "--app", "portal", "worker", "--burst", "--queue", "default"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert worker.returncode == 0, worker.stderr[-2000:]
        with app.test_request_context("/"):
            run = db.session.get(VerificationRun, run_id)
            assert (run.status, run.ok, run.checked) == ("done", True, run.head_id)
            assert run.head_id >= 30 and run.finished_at is not None
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
