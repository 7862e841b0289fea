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
