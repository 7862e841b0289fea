"""The daily ticket counts: kept by every ticket change in its own transaction, always
equal to what `flask reports rebuild-rollups` computes from the tickets, and summed by the
monthly report's backlog, which must give what counting every ticket gives.

The history is made through the ticket services, with their clock set to chosen moments
(the services stamp created, resolved and closed with it), so it spans several days.
"""

from __future__ import annotations

import importlib.util
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import DateTime, bindparam, delete, insert, select, text, update

from portal.audits.models import AuditEvent
from portal.extensions import db
from portal.reports import rollups
from portal.reports.cli import reports_cli
from portal.reports.monthly_figures import backlog_at
from portal.reports.rollup_models import TicketDayCount
from portal.tickets import services
from portal.tickets.demo import seed_tickets
from portal.tickets.models import Ticket
from portal.tickets.setup_models import Team
from tests.factories import make_user

DAY1 = datetime(2026, 3, 2)
WEEK_BEFORE = DAY1 - timedelta(days=7)
DIRECT_BACKLOG = text(
    "SELECT count(*) FROM tickets WHERE created_at < :m"
    " AND (resolved_at IS NULL OR resolved_at >= :m)"
    " AND (closed_at IS NULL OR closed_at >= :m)"
).bindparams(bindparam("m", type_=DateTime()))


class Clock:
    def __init__(self) -> None:
        self.now = DAY1

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(services, "utcnow", clock)
    return clock


def _team(name: str) -> Team:
    return db.session.scalar(select(Team).where(Team.name == name))


def _history(clock: Clock) -> list[datetime]:
    """Three days of a small desk, through the services; the moments things happened."""
    requester, agent = make_user(role="requester"), make_user(role="agent")
    moments = []

    def at(moment: datetime) -> None:
        clock.now = moment
        moments.append(moment)

    at(DAY1 + timedelta(hours=9))
    login = services.create_ticket(requester, "Cannot log in", "MFA loops", priority="high")
    site = services.create_ticket(requester, "Website is down", "errors")
    question = services.create_ticket(requester, "A question", "canteen", type_="incident")
    at(DAY1 + timedelta(hours=9, minutes=30))
    services.create_ticket(requester, "Invoice missing", "March", priority="low")
    at(DAY1 + timedelta(hours=23, minutes=59, seconds=59, microseconds=999_999))
    services.change_status(login, "resolved", agent)
    at(DAY1 + timedelta(days=1))  # midnight: closed on the next day
    services.change_status(login, "closed", agent)
    at(DAY1 + timedelta(days=1, hours=9))
    services.change_status(site, "resolved", agent)
    services.update_fields(question, agent, priority="critical", team=_team("Authentication"))
    at(DAY1 + timedelta(days=2, hours=14, minutes=5))
    services.change_status(site, "in_progress", agent)  # reopened: no longer ended
    services.escalate(question, "Needs the network team", agent)  # to Technical
    at(DAY1 + timedelta(days=2, hours=16))
    services.change_status(question, "resolved", agent)
    services.change_status(login, "in_progress", agent)  # reopened from closed
    at(DAY1 + timedelta(days=2, hours=18))
    services.change_status(login, "resolved", agent)
    services.update_fields(login, agent, priority="low")  # moves its ended count too
    return moments


def _made_directly() -> None:
    """Rows as test factories and imports write them: no team, an end before creation."""
    requester = make_user(role="requester")
    for created, resolved, closed in (
        (DAY1 + timedelta(hours=3), None, None),
        (DAY1 + timedelta(hours=5), DAY1 + timedelta(hours=4), None),  # ended "before"
        (DAY1 + timedelta(hours=6), None, DAY1 + timedelta(days=1, hours=1)),  # closed only
        (DAY1 + timedelta(hours=7), DAY1 + timedelta(days=3), DAY1 + timedelta(days=2)),
    ):
        db.session.add(
            Ticket(
                subject="Imported",
                requester_id=requester.id,
                team_id=None,
                created_at=created,
                updated_at=created,
                status_changed_at=created,
                resolved_at=resolved,
                closed_at=closed,
            )
        )
    db.session.commit()
    # A team given as the relationship (team_id follows it only during the flush).
    first = db.session.scalar(select(Ticket).where(Ticket.created_at == DAY1 + timedelta(hours=3)))
    first.team = _team("Engineering")
    db.session.commit()


def _kept_and_rebuilt() -> tuple[dict, dict]:
    kept = rollups.stored_counts()
    rollups.rebuild()
    return kept, rollups.stored_counts()


def test_the_kept_counts_equal_a_rebuild_after_a_mixed_history(app, ctx, clock):
    _history(clock)
    _made_directly()
    kept, rebuilt = _kept_and_rebuilt()
    assert kept == rebuilt
    day1, day2, day3 = (DAY1.date() + timedelta(days=n) for n in range(3))
    technical, auth = _team("Technical").id, _team("Authentication").id
    # The incident: filed day 1 (general, medium), moved, escalated, re-prioritised: all
    # of it now counts under Technical / critical, resolved on day 3.
    assert kept[(day1, technical, "critical", "incident")] == (1, 0)
    assert kept[(day3, technical, "critical", "incident")] == (0, 1)
    # Resolved at the last microsecond of day 1, reopened, resolved again on day 3.
    assert kept[(day1, auth, "low", "request")] == (1, 0)
    assert kept[(day3, auth, "low", "request")] == (0, 1)
    # Resolved on day 2, reopened on day 3: created, no longer ended.
    assert kept[(day1, technical, "high", "request")] == (1, 0)
    assert (day2, technical, "high", "request") not in kept
    # No team counts as team 0; an end before creation counts on the creation's day; the
    # earlier of resolved and closed is the end.
    assert kept[(day1, 0, "medium", "request")] == (3, 1)
    assert kept[(day1, _team("Engineering").id, "medium", "request")] == (1, 0)
    assert kept[(day2, 0, "medium", "request")] == (0, 1)
    assert kept[(day3, 0, "medium", "request")] == (0, 1)  # closed day 3, resolved day 4
    assert not any(key[0] > day3 and key[1] == 0 for key in kept)


def test_bulk_statements_through_the_session_keep_the_counts(app, ctx, clock):
    _history(clock)
    requester = make_user(role="requester")
    # Ids well past the sequence (PostgreSQL's does not see ids given by hand).
    last = db.session.scalar(select(Ticket.id).order_by(Ticket.id.desc()).limit(1)) + 1000
    row = {
        "subject": "Bulk",
        "requester_id": requester.id,
        "created_at": WEEK_BEFORE,
        "updated_at": WEEK_BEFORE,
        "status_changed_at": WEEK_BEFORE,
        "team_id": _team("Engineering").id,
    }
    # As the tickets demo writes them (ids given), and as an import might (no ids).
    db.session.execute(
        insert(Ticket.__table__),
        [{**row, "id": last + 1}, {**row, "id": last + 2, "resolved_at": WEEK_BEFORE}],
    )
    db.session.execute(insert(Ticket.__table__).values([{**row, "priority": "low"}] * 2))
    db.session.execute(update(Ticket).where(Ticket.id == last + 1).values(closed_at=DAY1))
    db.session.execute(update(Ticket).values(description="not counted"))
    # As retention removes closed tickets.
    db.session.execute(delete(Ticket.__table__).where(Ticket.__table__.c.id == last + 2))
    db.session.commit()
    kept, rebuilt = _kept_and_rebuilt()
    assert kept == rebuilt
    engineering = row["team_id"]
    assert kept[(WEEK_BEFORE.date(), engineering, "low", "request")] == (2, 0)
    assert kept[(WEEK_BEFORE.date(), engineering, "medium", "request")] == (1, 0)
    assert kept[(DAY1.date(), engineering, "medium", "request")] == (0, 1)


def test_the_tickets_demo_and_its_bulk_inserts_keep_the_counts(app, ctx):
    seed_tickets(120, seed=3, now=DAY1, batch=50)
    kept, rebuilt = _kept_and_rebuilt()
    assert kept == rebuilt
    assert sum(created for created, _ in kept.values()) == 120


def test_backlog_at_gives_what_counting_every_ticket_gives(app, ctx, clock):
    moments = _history(clock)
    _made_directly()
    reopened = DAY1 + timedelta(days=2, hours=14, minutes=5)
    tick = timedelta(microseconds=1)
    checked = {DAY1 - timedelta(days=1), DAY1 + timedelta(days=10)}
    for n in range(4):
        midnight = DAY1 + timedelta(days=n)
        checked |= {midnight, midnight + tick, midnight - tick, midnight + timedelta(hours=12)}
    for moment in (*moments, reopened):
        checked |= {moment - tick, moment, moment + tick}
    answers = {}
    for moment in sorted(checked):
        direct = db.session.scalar(DIRECT_BACKLOG, {"m": moment})
        answers[moment] = backlog_at(moment)
        assert answers[moment] == direct, moment
    # A reopened ticket (resolved on day 2, reopened on day 3) counts as open since its
    # creation: neither its first resolution nor its reopening moves the figure.
    first_resolved = DAY1 + timedelta(days=1, hours=9)
    assert answers[first_resolved + tick] == answers[first_resolved - tick]
    assert answers[reopened + tick] == answers[reopened - tick]
    # A ticket resolved at m is still open at m, and no longer just after it.
    resolved = DAY1 + timedelta(days=2, hours=18)
    assert answers[resolved - tick] == answers[resolved] == answers[resolved + tick] + 1
    assert answers[DAY1 - timedelta(days=1)] == 0
    # Later: the reopened site, the invoice and the imported ticket never ended.
    assert answers[DAY1 + timedelta(days=10)] == 3


def test_rebuild_rollups_repairs_counts_and_is_audited(app, ctx, clock):
    _history(clock)
    moment = DAY1 + timedelta(days=2)
    right = backlog_at(moment)
    kept = rollups.stored_counts()
    db.session.execute(delete(TicketDayCount))
    db.session.commit()
    assert backlog_at(moment) != right  # what a tampered table would make the report say
    result = app.test_cli_runner().invoke(reports_cli, ["rebuild-rollups"])
    assert result.exit_code == 0, result.output
    assert f"{len(kept)} rows (were 0) from 4 tickets in " in result.output
    assert result.output.rstrip().endswith(" s.")
    assert rollups.stored_counts() == kept and backlog_at(moment) == right
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "reports.rollups_rebuilt")
    )
    assert event.data["rows"] == len(kept) and event.data["rows_before"] == 0
    assert event.data["tickets"] == 4 and event.actor_label == "system"


def test_a_change_rolled_back_leaves_the_counts_as_they_were(app, ctx, clock):
    _history(clock)
    before = rollups.stored_counts()
    ticket = db.session.scalar(select(Ticket).where(Ticket.subject == "Invoice missing"))
    ticket.priority, ticket.team_id = "critical", None
    ticket.resolved_at = DAY1 + timedelta(days=5)
    db.session.flush()  # the counts are written with the change, in its transaction
    assert rollups.stored_counts() != before
    db.session.rollback()
    assert rollups.stored_counts() == before
    assert ticket.priority == "low" and ticket.resolved_at is None
    kept, rebuilt = _kept_and_rebuilt()
    assert kept == rebuilt == before


def test_the_migration_fills_what_a_rebuild_computes(app, ctx, clock):
    """0018 fills the counts from the tickets already there, with SQL of its own."""
    path = Path(__file__).parents[2] / "migrations" / "versions" / "0018_ticket_day_counts.py"
    spec = importlib.util.spec_from_file_location("migration_0018", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    _history(clock)
    _made_directly()
    rebuilt = _kept_and_rebuilt()[1]
    db.session.execute(delete(TicketDayCount))
    dialect = db.session.get_bind().dialect.name
    db.session.execute(text(migration._fill_sql(dialect)))
    assert rollups.stored_counts() == rebuilt


def test_a_change_made_from_a_stale_copy_of_the_ticket_keeps_the_counts(app, ctx, clock):
    """Two people act on one ticket at once: the first resolves it and commits; the
    second, whose copy was loaded before that, re-prioritises it. What the second change
    takes away and adds must be the ticket as the database holds it, not as the second
    session loaded it, or the first one's "ended" is counted under the old priority for
    good."""
    requester = make_user(role="requester")
    ticket = services.create_ticket(requester, "Printer on fire", "d", priority="low")
    db.session.flush()
    assert ticket.resolved_at is None  # the second person's copy, loaded now
    # The first person's change, from another transaction: the row and its counts.
    resolved = DAY1 + timedelta(hours=3)
    facts = {name: getattr(ticket, name) for name in rollups.TRACKED}
    other = rollups.Deltas()
    other.add(facts, -1)
    other.add({**facts, "resolved_at": resolved}, +1)
    connection = db.session.connection()
    connection.execute(
        update(Ticket.__table__)
        .where(Ticket.__table__.c.id == ticket.id)
        .values(status="resolved", resolved_at=resolved)
    )
    rollups.write(connection, other)
    assert ticket.resolved_at is None  # the second copy has not seen it
    ticket.priority = "high"
    db.session.flush()
    kept, rebuilt = _kept_and_rebuilt()
    assert kept == rebuilt
    key = (DAY1.date(), ticket.team_id or 0, "high", ticket.type)
    assert kept[key] == (1, 1)  # created and ended, under its new priority
