"""Demo volume for the tickets area (`flask tickets demo`, and the tickets benchmark).

Each ticket is lived through from filing up to now as the services and the periodic
sweep would have taken it (demo_life.py); this module loads what that reads, adds demo
people when there are few, and writes the result with Core inserts in batches: the
services commit and audit every action, far too slow for volume, and seeding is
nobody's action, so no audit events are written and no email is sent.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from flask import current_app
from sqlalchemy import Table, func, insert, select, text

from ..extensions import db
from ..timeutil import utcnow
from ..users.models import User
from ..users.passwords import hash_password
from . import sla
from .demo_life import (
    ACTIONS,
    FIRST,
    LAST,
    REVIEW_TIMELINE,
    ROOT_CAUSES,
    SEARCH_WORDS,
    Future,
    Life,
    World,
    finish,
    live,
)
from .extra_models import ActionItem, IncidentReview
from .models import TYPES, SlaEvent, SlaNotification, Ticket, TicketChange, TicketReply
from .routing import default_team
from .setup_models import PRIORITIES, RoutingRule, Team, team_members

__all__ = ["SEARCH_WORDS", "DemoSummary", "seed_tickets"]

BATCH = 2_000
SPAN = timedelta(days=90)


@dataclass
class DemoSummary:
    tickets: int = 0
    replies: int = 0
    changes: int = 0
    sla_events: int = 0
    warnings: int = 0
    reviews: int = 0
    users_created: int = 0
    seconds: float = 0.0
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.tickets / self.seconds if self.seconds else 0.0


def _insert_returning(table: Table, rows: list[dict[str, Any]]) -> list[int]:
    if not rows:
        return []
    stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(db.session.execute(stmt, rows).scalars())


def _people(count: int, rng: random.Random) -> tuple[dict[str, list[tuple[int, str]]], int]:
    """Active requesters and agents, topped up with demo accounts nobody can sign in to
    (their hash is of a password nobody knows); new agents join the teams in turn."""
    want = {"requester": max(40, min(2000, count // 40)), "agent": max(8, min(60, count // 2000))}
    have: dict[str, list[tuple[int, str]]] = {}
    created, unusable = 0, ""
    teams = list(db.session.scalars(select(Team.id).order_by(Team.id)))
    for role, target in want.items():
        query = select(User.id, User.name).where(User.role == role, User.is_active.is_(True))
        have[role] = [tuple(row) for row in db.session.execute(query.order_by(User.id))]
        if len(have[role]) >= target:
            continue
        unusable = unusable or hash_password(secrets.token_urlsafe(32))
        taken = set(db.session.scalars(select(User.email).where(User.email.like(f"demo.{role}.%"))))
        emails = (f"demo.{role}.{n:05d}@example.com" for n in itertools.count(1))
        fresh = list(
            itertools.islice((e for e in emails if e not in taken), target - len(have[role]))
        )
        joined = utcnow() - SPAN
        rows = [
            {
                "email": email,
                "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                "role": role,
                "is_active": True,
                "password_hash": unusable,
                "password_version": 1,
                "must_change_password": False,
                "timezone": "UTC",
                "failed_logins": 0,
                "created_at": joined,
                "updated_at": joined,
            }
            for email in fresh
        ]
        ids = _insert_returning(User.__table__, rows)
        have[role] += [(i, row["name"]) for i, row in zip(ids, rows, strict=True)]
        created += len(ids)
        if role == "agent" and teams:
            members = [{"team_id": teams[k % len(teams)], "user_id": i} for k, i in enumerate(ids)]
            _bulk(team_members, members)
    return have, created


def _load_world(count: int, rng: random.Random, now: datetime) -> tuple[World, int]:
    targets, calendars = {}, {}
    for type_ in TYPES:
        for priority in PRIORITIES:
            # The services' own helpers, once per kind of ticket rather than per ticket.
            like = SimpleNamespace(type=type_, priority=priority)
            targets[type_, priority] = sla._targets(like, sla.policy_for(priority))  # type: ignore[arg-type]
            calendars[type_, priority] = sla._calendars(like)  # type: ignore[arg-type]
    people, created = _people(count, rng)
    agents = dict(people["agent"])
    team_agents: dict[int, list[tuple[int, str]]] = {}
    for team_id, user_id in db.session.execute(
        select(team_members.c.team_id, team_members.c.user_id)
    ):
        if user_id in agents:
            team_agents.setdefault(team_id, []).append((user_id, agents[user_id]))
    rules = db.session.scalars(
        select(RoutingRule).where(RoutingRule.is_active.is_(True)).order_by(RoutingRule.position)
    )
    settings = current_app.config["SETTINGS"]
    levels = select(Team.escalation_level, Team.id).where(Team.escalation_level.is_not(None))
    world = World(
        now=now,
        rng=rng,
        routes=[(r, r.team_id, r.category_id, r.priority) for r in rules],
        default_team=default_team().id,
        team_names={i: n for i, n in db.session.execute(select(Team.id, Team.name))},
        escalation={level: i for level, i in db.session.execute(levels)},
        targets=targets,
        calendars=calendars,
        requesters=people["requester"],
        agents=people["agent"],
        team_agents=team_agents,
        close_after=timedelta(days=settings.TICKET_AUTO_CLOSE_DAYS),
        resolve_after=timedelta(days=settings.TICKET_PENDING_RESOLVE_DAYS),
    )
    return world, created


# Child rows are kept as tuples while simulated; these name their columns for the insert.
_COLUMNS = {
    TicketReply: ("author_id", "body", "is_internal", "created_at"),
    TicketChange: ("actor_id", "field", "old_value", "new_value", "reason", "created_at"),
    SlaEvent: ("clock", "kind", "at", "target_seconds", "note"),
    SlaNotification: ("clock", "threshold", "sent_at"),
}


def _new_ids(table: Table, count: int) -> list[int]:
    """Ids for new rows, so their children can name them without RETURNING (which SQLite
    gives back in order only one row per statement: far too slow here)."""
    if db.session.get_bind().dialect.name == "postgresql":
        sequence = text(
            "SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"
        )
        return sorted(db.session.scalars(sequence, {"t": table.name, "n": count}))
    # A ticket filed meanwhile takes one of these ids: this insert then fails, never mixes.
    last = db.session.scalar(select(func.max(table.c.id))) or 0
    return list(range(last + 1, last + count + 1))


def _bulk(table: Table, rows: list[dict[str, Any]]) -> None:
    """One executemany. On PostgreSQL, asking for RETURNING makes SQLAlchemy send multi-row
    INSERTs (insertmanyvalues) instead of a statement per row: several times faster, and the
    search index's statement triggers then run once per thousand rows, not once per row."""
    if not rows:
        return
    stmt = insert(table)
    if db.session.get_bind().dialect.name == "postgresql":
        stmt = stmt.returning(*table.primary_key.columns)
    db.session.execute(stmt, rows)


def _write(lives: list[Life], summary: DemoSummary) -> None:
    ids = _new_ids(Ticket.__table__, len(lives))
    _bulk(Ticket.__table__, [{"id": i, **x.row} for i, x in zip(ids, lives, strict=True)])
    rows: dict[Any, list[dict[str, Any]]] = {model: [] for model in _COLUMNS}
    reviews, reviewed = [], []
    for ticket_id, x in zip(ids, lives, strict=True):
        for model, values in (
            (TicketReply, x.replies),
            (TicketChange, x.changes),
            (SlaEvent, x.events),
            (SlaNotification, x.warnings),
        ):
            names = _COLUMNS[model]
            rows[model] += [
                {"ticket_id": ticket_id, **dict(zip(names, v, strict=True))} for v in values
            ]
        if x.review_at and x.assignee:
            reviews.append(
                {
                    "ticket_id": ticket_id,
                    "timeline": REVIEW_TIMELINE,
                    "root_cause": x.w.rng.choice(ROOT_CAUSES),
                    "author_id": x.assignee[0],
                    "created_at": x.review_at,
                    "updated_at": x.review_at,
                }
            )
            reviewed.append(x)
    for model, batch in rows.items():
        _bulk(model.__table__, batch)
    review_ids = _insert_returning(IncidentReview.__table__, reviews)
    items = [
        {
            "review_id": review_id,
            "description": x.w.rng.choice(ACTIONS),
            "owner_id": x.w.rng.choice(x.w.agents)[0],
            "due_on": (x.review_at + timedelta(days=14)).date(),
            "ticket_id": None,
            "done_at": None,
            "created_at": x.review_at,
        }
        for review_id, x in zip(review_ids, reviewed, strict=True)
    ]
    _bulk(ActionItem.__table__, items)
    summary.tickets += len(ids)
    summary.replies += len(rows[TicketReply])
    summary.changes += len(rows[TicketChange])
    summary.sla_events += len(rows[SlaEvent])
    summary.warnings += len(rows[SlaNotification])
    summary.reviews += len(reviews)
    for x in lives:
        summary.by_status[x.row["status"]] = summary.by_status.get(x.row["status"], 0) + 1


def seed_tickets(
    count: int,
    seed: int | None = None,
    progress: Callable[[DemoSummary], None] | None = None,
    batch: int = BATCH,
    now: datetime | None = None,
) -> DemoSummary:
    """Add `count` tickets filed over the last 90 days, in id order; commits every `batch`."""
    started = time.perf_counter()
    now = now or utcnow()
    rng = random.Random(seed)
    summary = DemoSummary()
    world, summary.users_created = _load_world(count, rng, now)
    db.session.commit()
    first = now - SPAN
    for offset in range(0, count, batch):
        lives = []
        for i in range(offset, min(offset + batch, count)):
            x = Life(world, first + SPAN * ((i + rng.random()) / count))
            with contextlib.suppress(Future):
                live(x)
            finish(x)
            lives.append(x)
        _write(lives, summary)
        db.session.commit()
        summary.seconds = time.perf_counter() - started
        if progress:
            progress(summary)
    return summary
