"""The door check: a request from a blocked address is answered 403 before anything
else runs — before CSRF, the rate limiter, sign-in and the access check — so the
sign-in page, public links and static files are refused too.

It runs on every request, so it stays cheap:
- The active blocks are read once and shared in Redis (one round trip per request), under
  a generation that every committed ORM write to ip_blocks moves on (the listeners
  below), so an add or a lift holds in every process from its commit on. The list is
  kept under keys of its own rather than portal/cache.py's, whose answers are dropped
  wholesale when that cache is cleared: every request, static files included, asks
  for this one. LIST_KEPT_SECONDS only bounds what no listener sees (an edit behind the
  portal's back, a write while Redis was unreachable). With SHARED_CACHE_SECONDS=0
  (the default without Redis, where each process has its own stand-in and could not
  hear of another's writes) the few active rows are read by their index per request.
  Expiry needs no invalidation: each entry carries its end, checked on every match,
  so a block ends on the second.
- Matching is done with `ipaddress` on the parsed list, parsed once per list.
- Hits are counted in Redis and written to the rows in batches (portal/counters.py):
  an `UPDATE hits = hits + 1` per request would turn a flood into a flood of row writes
  contending for one row lock (and would make every refused request invalidate the
  cached list).
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from flask import (
    Flask,
    current_app,
    has_app_context,
    jsonify,
    make_response,
    render_template,
    request,
)
from redis import RedisError
from sqlalchemy import event, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import ORMExecuteState, Session
from werkzeug.wrappers import Response

from .. import jobs
from ..client import client_ip
from ..counters import BufferedCounter
from ..extensions import db
from ..timeutil import utcnow
from .block_models import IpBlock
from .blocks import Address, Network, parse_address

log = logging.getLogger(__name__)

BLOCKED_MESSAGE = "Requests from your address are blocked."
GENERATION_KEY = "portal:ip_blocks:generation"
LIST_KEY = "portal:ip_blocks:active"
LIST_KEPT_SECONDS = 3600


@dataclass(frozen=True)
class ActiveBlock:
    id: int
    network: Network
    expires_at: datetime


def _load_active() -> list[list[object]]:
    now = utcnow()
    rows = db.session.execute(
        select(IpBlock.id, IpBlock.network, IpBlock.expires_at)
        .where(IpBlock.lifted_at.is_(None), IpBlock.expires_at > now)
        .order_by(IpBlock.id)
    )
    return [[block_id, network, expires.isoformat()] for block_id, network, expires in rows]


@lru_cache(maxsize=16)
def _parsed(rows: tuple[tuple[int, str, str], ...]) -> tuple[ActiveBlock, ...]:
    blocks = [
        ActiveBlock(block_id, ipaddress.ip_network(network), datetime.fromisoformat(expires))
        for block_id, network, expires in rows
    ]
    # Narrowest first: a hit is counted on the most specific block that covers it.
    return tuple(sorted(blocks, key=lambda b: (-b.network.prefixlen, b.id)))


def _shared_rows() -> list[list[object]]:
    if current_app.config["SETTINGS"].SHARED_CACHE_SECONDS <= 0:
        return _load_active()
    try:
        conn = jobs.connection()
        generation_text, stored = conn.mget([GENERATION_KEY, LIST_KEY])
        generation = int(generation_text or 0)
        if stored is not None:
            stored_generation, rows = json.loads(stored)
            if stored_generation == generation:
                return rows  # type: ignore[no-any-return]
    except RedisError as exc:
        log.warning("blocked addresses not shared, reading them: %s", exc)
        return _load_active()
    rows = _load_active()
    try:
        conn.set(LIST_KEY, json.dumps([generation, rows]), ex=LIST_KEPT_SECONDS)
    except RedisError as exc:
        log.warning("blocked addresses not shared: %s", exc)
    return rows


def active_blocks() -> tuple[ActiveBlock, ...]:
    rows = _shared_rows()
    return _parsed(tuple((int(r[0]), str(r[1]), str(r[2])) for r in rows))  # type: ignore[call-overload]


# -- the generation: moved on by every committed write to ip_blocks --------------------------

_WROTE = "portal.ip_blocks_written"


def _note_flush(session: Session, _context: Any, _instances: Any) -> None:
    if any(isinstance(o, IpBlock) for o in (*session.new, *session.dirty, *session.deleted)):
        session.info[_WROTE] = True


def _note_statement(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) == IpBlock.__tablename__:
            state.session.info[_WROTE] = True


def _after_commit(session: Session) -> None:
    if session.info.pop(_WROTE, False) and has_app_context():
        try:
            jobs.connection().incr(GENERATION_KEY)
        except RedisError as exc:
            log.warning("blocked addresses changed, other processes not told: %s", exc)


def _after_rollback(session: Session) -> None:
    session.info.pop(_WROTE, None)


def _watch_writes() -> None:
    listeners = (
        ("before_flush", _note_flush),
        ("do_orm_execute", _note_statement),
        ("after_commit", _after_commit),
        ("after_rollback", _after_rollback),
    )
    for name, listener in listeners:
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)


def matching_block(address: str | Address | None) -> ActiveBlock | None:
    """The block in force now that covers `address`, or None."""
    ip = address if not isinstance(address, str | None) else parse_address(address)
    if ip is None:
        return None
    blocks = active_blocks()
    if not blocks:
        return None
    now = utcnow()
    for block in blocks:
        if block.expires_at > now and ip in block.network:
            return block
    return None


# -- counting hits ---------------------------------------------------------------------------


def _write_hits(hits: dict[str, int]) -> bool:
    # Through the session's connection, not the ORM: a count changes nothing the shared
    # list holds, so it must not make that list stale (portal/cache.py watches the ORM).
    try:
        connection = db.session.connection()
        for block_id, count in sorted((int(k), v) for k, v in hits.items()):
            connection.execute(
                update(IpBlock).where(IpBlock.id == block_id).values(hits=IpBlock.hits + count)
            )
        db.session.commit()
    except SQLAlchemyError:
        log.exception("could not write %s block hits", sum(hits.values()))
        db.session.rollback()
        return False
    return True


HITS = BufferedCounter("ip_block_hits", _write_hits)


def count_hit(block_id: int) -> None:
    HITS.add(str(block_id))


def flush_hits() -> int:
    """Move the hits counted in Redis onto their rows; returns how many were moved."""
    return HITS.flush()


def pending_hits(block_ids: Iterable[int]) -> dict[int, int]:
    """Hits counted but not yet written, per block (the list adds them to the rows')."""
    wanted = {str(block_id) for block_id in block_ids}
    return {int(key): count for key, count in HITS.pending().items() if key in wanted}


# -- the check -------------------------------------------------------------------------------


def _blocked_response() -> Response:
    if request.path.startswith("/api/"):
        response = jsonify(error="Forbidden", message=BLOCKED_MESSAGE, status=403)
        response.status_code = 403
        return response
    # A page of its own, without the layout: its stylesheets and scripts would be
    # refused too, and the layout would load the signed-in user for the menu.
    response = make_response(render_template("audits/blocked.html", message=BLOCKED_MESSAGE), 403)
    if request.headers.get("HX-Request") == "true":
        # A fragment request would swap this page into a corner of the old one.
        response.headers["HX-Refresh"] = "true"
    return response


def refuse_blocked() -> Response | None:
    try:
        block = matching_block(client_ip())
    except SQLAlchemyError:
        # Fail open: without the database nothing else answers either, and a broken
        # check must not turn into a 403 for everyone.
        log.exception("blocked addresses could not be read")
        db.session.rollback()
        return None
    if block is None:
        return None
    count_hit(block.id)
    log.debug("blocked %s %s (block %s)", request.method, request.path, block.id)
    return _blocked_response()


def init_guard(app: Flask) -> None:
    """Make the check the first before_request of all (extensions registered theirs
    earlier, in create_app)."""
    _watch_writes()
    functions = app.before_request_funcs.setdefault(None, [])
    if refuse_blocked not in functions:
        functions.insert(0, refuse_blocked)
