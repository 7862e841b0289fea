"""A large export on PostgreSQL is copied by two backends at once, each half of the list
in one shared snapshot: the file must hold exactly the bytes one COPY writes, in the
list's order (newest first, or oldest first), and a cancel stops both halves.

These need committed rows (the second backend cannot see a test's open transaction), so
they run on a database of their own."""

from __future__ import annotations

import io

import pytest
from werkzeug.datastructures import MultiDict

from portal import create_app
from portal.extensions import db
from portal.reports import copy_export, csv_writer
from portal.reports.sources import SOURCES
from portal.tickets import services as tickets
from tests.conftest import fresh_database_url, settings_for_tests
from tests.factories import make_user

TICKETS = 41


@pytest.fixture(scope="module")
def committed_app():
    url = fresh_database_url("copy_split")
    if not url.startswith("postgresql"):
        pytest.skip("COPY is PostgreSQL's")
    app = create_app(settings_for_tests(DATABASE_URL=url))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    with app.test_request_context("/"):
        requester = make_user(role="requester", name='Pat "Quotes", O\'Brien')
        for i in range(TICKETS):
            tickets.create_ticket(requester, f"=Ticket {i}, with a comma", "d")
        make_user(role="admin", email="viewer@example.com", timezone="Asia/Kolkata")
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _plan(sort: str):  # noqa: ANN202
    from portal.users.models import User

    viewer = db.session.scalar(db.select(User).where(User.email == "viewer@example.com"))
    source = SOURCES["tickets"]
    return source.plan(source.read_filters(MultiDict({"sort": sort})), viewer)


@pytest.mark.parametrize("sort", ["newest", "oldest"])
def test_two_halves_write_what_one_copy_writes(committed_app, monkeypatch, sort):
    with committed_app.test_request_context("/"):
        plan = _plan(sort)
        whole = io.BytesIO()
        assert csv_writer._copy_rows(plan, whole, "Asia/Kolkata", lambda n: None) == TICKETS

        monkeypatch.setattr(copy_export, "SPLIT_FROM_ROWS", 0)
        halves, seen = io.BytesIO(), []
        rows = csv_writer._copy_rows(plan, halves, "Asia/Kolkata", seen.append, TICKETS)
        assert rows == TICKETS
        assert halves.getvalue() == whole.getvalue()
        numbers = [line.split(b",")[0] for line in halves.getvalue().splitlines()]
        assert numbers == sorted(numbers, reverse=sort == "newest")
        assert b"+05:30" in halves.getvalue() and b"'=Ticket 7" in halves.getvalue()


def test_a_cancel_stops_both_halves(committed_app, monkeypatch):
    class Cancelled(Exception):
        pass

    def cancel(done: int) -> None:
        raise Cancelled

    with committed_app.test_request_context("/"):
        monkeypatch.setattr(copy_export, "SPLIT_FROM_ROWS", 0)
        monkeypatch.setattr(copy_export, "BLOCK_BYTES", 1)  # report after every row
        monkeypatch.setattr(csv_writer, "REPORT_EVERY_SECONDS", 0)
        with pytest.raises(Cancelled):
            csv_writer._copy_rows(_plan("newest"), io.BytesIO(), "UTC", cancel, TICKETS)


def test_an_export_in_a_callers_transaction_puts_its_session_settings_back(committed_app):
    """An inline export shares the request's transaction: the zone and JIT setting it
    sets for its COPY must not outlive it there."""
    settings = "SELECT current_setting('TimeZone'), current_setting('jit')"
    with committed_app.test_request_context("/"):
        connection = db.session.connection()
        before = connection.exec_driver_sql(settings).one()
        rows = copy_export._copy_in_transaction(
            connection.connection.driver_connection,
            _plan("newest").statement,  # the values as they are: any rows will do here
            io.BytesIO(),
            "Asia/Kolkata",
            lambda n: None,
        )
        assert rows == TICKETS
        assert connection.exec_driver_sql(settings).one() == before
        assert before[0] != "Asia/Kolkata"


def test_cells_made_after_the_sort_keep_every_kind_of_order(committed_app):
    """`formatted` sorts the values in a subquery and makes the cells outside it: the rows
    come out in the list's order whatever its terms (descending, NULLS LAST, an
    expression), and an order it cannot take apart (text) is kept in one query."""
    from sqlalchemy import TextClause, func, select, text

    from portal.tickets.models import Ticket

    def same(fmt):  # noqa: ANN001,ANN202
        return fmt

    with committed_app.test_request_context("/"):
        db.session.execute(db.update(Ticket).where(Ticket.id % 3 == 0).values(resolved_at=None))
        number = Ticket.id.label("number")
        orders = [
            (Ticket.resolved_at.desc().nulls_last(), Ticket.id.desc()),
            (func.length(Ticket.subject), Ticket.id),
            (number.desc(),),  # a label of the select list, by reference
            (text("2 DESC"), Ticket.id),
        ]
        for order in orders:
            listed = select(number, Ticket.subject).order_by(*order)
            made = copy_export.formatted(listed, [same, same])
            assert db.session.execute(made).all() == db.session.execute(listed).all()
            assert ("listed" in str(made)) is not isinstance(order[0], TextClause)
        db.session.rollback()
