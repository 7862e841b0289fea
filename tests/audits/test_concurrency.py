"""Eight processes append at once; the chain stays one line and verifies."""

import multiprocessing

from portal import create_app
from portal.audits.services import verify
from portal.extensions import db
from tests.conftest import fresh_database_url, settings_for_tests

WRITERS, EVENTS_EACH = 8, 25


def _writer(args: tuple[str, int]) -> int:
    url, n = args
    from portal.audits import record

    app = create_app(settings_for_tests(DATABASE_URL=url))
    with app.app_context():
        for i in range(EVENTS_EACH):
            record("test.concurrent", None, ("writer", n), i=i)
            db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return n


def test_concurrent_writers_keep_one_chain():
    url = fresh_database_url("concurrency")
    app = create_app(settings_for_tests(DATABASE_URL=url))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.session.remove()
        db.engine.dispose()
    with multiprocessing.get_context("spawn").Pool(WRITERS) as pool:
        assert sorted(pool.map(_writer, [(url, n) for n in range(WRITERS)])) == list(range(WRITERS))
    with app.app_context():
        result = verify()
        assert result.ok, [str(p) for p in result.problems]
        assert result.checked == WRITERS * EVENTS_EACH
        db.session.remove()
        db.engine.dispose()


def test_verification_in_several_processes_finds_what_one_walk_finds(monkeypatch):
    """PostgreSQL: segments checked side by side name the same problems, in the same
    order, as the walk in one process, tampering at the segments' edges included."""
    import pytest

    from portal.audits import parallel
    from portal.audits.services import allow_retention_in_this_transaction

    url = fresh_database_url("parallel")
    if not url.startswith("postgresql"):
        pytest.skip("worker processes read PostgreSQL")
    monkeypatch.setattr(parallel, "SEGMENT", 100)
    app = create_app(settings_for_tests(DATABASE_URL=url, AUDIT_CHECKPOINT_EVERY=0))
    with app.app_context():
        from flask_migrate import upgrade
        from sqlalchemy import text

        from portal.audits import record

        upgrade()
        for i in range(450):
            record("test.segmented", None, ("thing", i), i=i)
        db.session.commit()
        assert verify(workers=2).ok and verify(workers=2).checked == 450

        allow_retention_in_this_transaction()
        for statement in (
            "UPDATE audit_events SET ip = '6.6.6.6' WHERE id = 150",
            # rows 200 and 201 swap places across a segment's edge
            "UPDATE audit_events SET id = -1 WHERE id = 200",
            "UPDATE audit_events SET id = 200 WHERE id = 201",
            "UPDATE audit_events SET id = 201 WHERE id = -1",
            "DELETE FROM audit_events WHERE id = 301",  # the first row of a segment
            "UPDATE audit_events SET action = 'x' WHERE id = 450",  # the head
        ):
            db.session.execute(text(statement))
        db.session.commit()

        one = verify(workers=1)
        seen: list[int] = []
        several = verify(workers=2, progress=lambda checked, total: seen.append(checked))
        found = [(p.event_id, p.kind) for p in several.problems]
        assert found == [(p.event_id, p.kind) for p in one.problems]
        assert found == [
            (150, "edited"),
            (200, "out-of-order"),
            (201, "out-of-order"),
            (302, "deleted"),
            (450, "edited"),
        ]
        assert (several.checked, several.last_id) == (one.checked, one.last_id) == (449, 450)
        assert seen == sorted(seen) and seen[-1] == 449 and len(seen) == 5
        first = verify(workers=2, stop_at_first=True).problems
        assert [(p.event_id, p.kind) for p in first] == [(150, "edited")]
        db.session.remove()
        db.engine.dispose()
