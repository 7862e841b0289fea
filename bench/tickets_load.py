"""Load benchmark for the ticket pages: seeds 100,000 tickets (the `flask tickets demo`
data) into a fresh database, starts gunicorn on 127.0.0.1 and drives, signed in as an
agent, the ticket list, a filtered list, a search and ticket pages with concurrent
keep-alive clients. It prints figures; it never passes or fails.

    .venv/bin/python bench/tickets_load.py
    .venv/bin/python bench/tickets_load.py --tickets 1000000
    .venv/bin/python bench/tickets_load.py --sqlite

See bench/README.md for the options and how to read the table.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from _harness import (
    HOST,
    Database,
    Scenario,
    Server,
    client_levels,
    describe_machine,
    existing_postgres,
    free_port,
    local_redis,
    measure_and_report,
    migrate,
    portal_env,
    prepare_postgres,
    request,
    sign_in,
)

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/portal_bench_tickets"
TARGET_P95_MS = 100.0
TARGET_KEYS = ("list", "filter", "search")
AGENT_EMAIL = "bench-agent@example.com"
SEED = 20261122
DETAIL_SAMPLE = 2000


def seed(db: Database, env: dict[str, str], count: int, agent_password: str) -> dict[str, Any]:
    """The demo tickets through portal.tickets.demo, in this process, then one agent to
    sign in as. Returns the seeding figures."""
    from sqlalchemy import insert, text

    from portal.extensions import db as portal_db
    from portal.tickets.demo import seed_tickets
    from portal.timeutil import utcnow
    from portal.users.models import User
    from portal.users.passwords import hash_password

    app = portal_app(env)
    step = max(count // 10, 1)
    shown = [0]

    def progress(summary: Any) -> None:
        if summary.tickets >= shown[0] + step or summary.tickets == count:
            shown[0] = summary.tickets
            print(
                f"            {summary.tickets:>9,} tickets  {summary.seconds:7.1f} s  "
                f"({summary.per_second:,.0f}/s)",
                flush=True,
            )

    with app.app_context():
        summary = seed_tickets(count, SEED, progress=progress)
        now = utcnow()
        portal_db.session.execute(
            insert(User.__table__),
            [
                {
                    "email": AGENT_EMAIL,
                    "name": "Bench Agent",
                    "role": "agent",
                    "is_active": True,
                    "password_hash": hash_password(agent_password),
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
        portal_db.session.commit()
        vacuumed = time.perf_counter()
        if db.kind == "postgresql":
            # Autovacuum would vacuum and analyse tables this size within minutes of the
            # load (its insert threshold): start from there, not from a cold heap.
            with portal_db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        vacuumed = time.perf_counter() - vacuumed
        portal_db.session.remove()
        portal_db.engine.dispose()
    figures = {
        "tickets": summary.tickets,
        "seconds": round(summary.seconds, 2),
        "tickets_per_second": round(summary.per_second, 1),
        "replies": summary.replies,
        "changes": summary.changes,
        "sla_events": summary.sla_events,
        "sla_warnings": summary.warnings,
        "incident_reviews": summary.reviews,
        "users_created": summary.users_created,
        "by_status": summary.by_status,
        "vacuum_analyze_seconds": round(vacuumed, 2),
    }
    return figures


def portal_app(env: dict[str, str]) -> Any:
    from portal import create_app

    names = ("PORTAL_ENV", "SECRET_KEY", "DATABASE_URL", "STORAGE_DIR", "REDIS_URL", "MAIL_SERVER")
    return create_app({name: env[name] for name in names})


def targets_for(env: dict[str, str], agent_password: str | None = None) -> dict[str, Any]:
    """What the scenarios need from the seeded data; with a password, (re)sets the bench
    agent's, so a kept database can be measured again without seeding it again."""
    from sqlalchemy import func, select, update

    from portal.extensions import db as portal_db
    from portal.tickets.demo import SEARCH_WORDS
    from portal.tickets.models import OPEN_STATUSES, Ticket
    from portal.users.models import User
    from portal.users.passwords import hash_password

    with portal_app(env).app_context():
        session = portal_db.session
        if agent_password is not None:
            changed = session.execute(
                update(User)
                .where(User.email == AGENT_EMAIL)
                .values(password_hash=hash_password(agent_password), must_change_password=False)
            ).rowcount
            if not changed:
                sys.exit(f"no {AGENT_EMAIL} in this database: run once without --reuse")
            session.commit()
        open_high = (
            select(Ticket.team_id, func.count())
            .where(Ticket.status.in_(OPEN_STATUSES), Ticket.priority == "high")
            .group_by(Ticket.team_id)
            .order_by(func.count().desc())
            .limit(1)
        )
        team_id, _ = session.execute(open_high).one()
        low, high = session.execute(select(func.min(Ticket.id), func.max(Ticket.id))).one()
        session.remove()
        portal_db.engine.dispose()
    rng = random.Random(SEED)
    return {
        "team_id": team_id,
        "words": SEARCH_WORDS,
        "ids": [rng.randint(low, high) for _ in range(DETAIL_SAMPLE)],
    }


def probe(port: int, scenario: Scenario) -> str:
    """One request before the load: does the page answer, how big, how many matches."""
    path = scenario.paths[0] if scenario.paths else scenario.path
    started = time.perf_counter()
    status, _, body = request("GET", port, path, headers=scenario.headers, timeout=120)
    took = (time.perf_counter() - started) * 1000
    matched = re.search(r"of ([\d,]+)</p>", body)
    matches = f"{matched.group(1)} matching, " if matched else ""
    return f"{path} answered {status} in {took:.0f} ms, {matches}{len(body)} bytes"


def scenarios(targets: dict[str, Any], cookie: str, query: str) -> list[Scenario]:
    headers = {"Cookie": cookie}
    filtered = "/tickets/?" + urlencode(
        {"status": "open", "priority": "high", "team": targets["team_id"]}
    )
    words = (query,) if query else tuple(targets["words"])
    searches = tuple("/tickets/?" + urlencode({"q": word}) for word in words)
    details = tuple(f"/tickets/{i}" for i in targets["ids"])
    return [
        Scenario("list", "(a) ticket list, agent", "/tickets/", headers),
        Scenario("filter", "(b) open, high, one team", filtered, headers),
        Scenario("search", "(c) search, one word", "/tickets/?q=<word>", headers, searches),
        Scenario("detail", "(d) ticket page, random id", "/tickets/<id>", headers, details),
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_URL,
        help="postgresql://... (local, name containing 'bench'; dropped and recreated). "
        f"Default: {DEFAULT_URL}",
    )
    parser.add_argument(
        "--sqlite", action="store_true", help="use a fresh SQLite file in a temp dir instead"
    )
    parser.add_argument(
        "--tickets", type=int, default=100_000, help="tickets to seed (default 100000)"
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per worker; >1 uses gthread (default 1)"
    )
    parser.add_argument(
        "--clients", default="10,50", help="comma-separated concurrency levels (default 10,50)"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        help="measured seconds per scenario and level (default 10)",
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="unmeasured seconds before each run (default 1)"
    )
    parser.add_argument(
        "--query", default="", help="one search word (default: rotate over the demo's words)"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated scenario keys to run: list,filter,search,detail"
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/13",
        help="a local Redis database to empty and use, as production does (shared cache, "
        "queued jobs); '' for none. Default: redis://127.0.0.1:6379/13",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="no shared status counts: each request counts, as just after a ticket changed",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the PostgreSQL database the last run left, without seeding it again",
    )
    parser.add_argument("--json", dest="json_path", default="", help="also write figures here")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp dir (SQLite database, gunicorn log)"
    )
    args = parser.parse_args(argv)
    try:
        args.client_levels = client_levels(args.clients)
    except ValueError:
        parser.error("--clients takes whole numbers, e.g. 10,50")
    if not args.client_levels or min(args.client_levels) < 1 or args.seconds <= 0:
        parser.error("--clients must be positive and --seconds above 0")
    if args.tickets < 1:
        parser.error("--tickets must be at least 1")
    if args.reuse and args.sqlite:
        parser.error("--reuse works on PostgreSQL only (the SQLite file is temporary)")
    if not args.sqlite and not args.database_url.startswith("postgresql://"):
        parser.error("--database-url must be a postgresql:// URL (or use --sqlite)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C even if inherited ignored
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup below
    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    server: Server | None = None
    stop = threading.Event()
    try:
        if args.sqlite:
            import sqlite3

            db = Database(f"sqlite:///{tmp / 'bench.db'}", "sqlite", sqlite3.sqlite_version)
        elif args.reuse:
            db = existing_postgres(args.database_url)
        else:
            db = prepare_postgres(args.database_url)
        port = free_port()
        redis_url = local_redis(args.redis_url)
        env = portal_env(db, tmp, port, redis_url)
        print(f"redis     : {redis_url or 'none: jobs inline, in-process cache'}")
        if args.cold:
            # As if every request came just after a ticket changed: counts and banner asked.
            env["SHARED_CACHE_SECONDS"] = "0"
            print("cache     : off (--cold): every request counts the statuses itself")
        cores, usable, load_start = describe_machine(db)

        agent_password = "bench-" + secrets.token_urlsafe(16)
        figures: dict[str, Any] = {}
        migrated = 0.0
        if args.reuse:
            targets = targets_for(env, agent_password)
            print(f"reused    : {db.url} as the last run left it (no seeding)")
        else:
            migrated = migrate(env)
            print(f"migrations: {migrated:.2f} s")
            print(f"seeding   : {args.tickets:,} tickets through portal.tickets.demo", flush=True)
            figures = seed(db, env, args.tickets, agent_password)
            targets = targets_for(env)
            print(
                f"seeded    : {figures['tickets']:,} tickets in {figures['seconds']:.1f} s "
                f"({figures['tickets_per_second']:,.0f} tickets/s): "
                f"{figures['replies']:,} replies, {figures['changes']:,} field changes, "
                f"{figures['sla_events']:,} SLA events"
            )
            print(f"statuses  : {figures['by_status']}")
            if db.kind == "postgresql":
                print(f"vacuum    : VACUUM ANALYZE in {figures['vacuum_analyze_seconds']:.1f} s")

        server = Server(env, port, args.workers, tmp / "gunicorn.log", args.threads)
        booted = server.wait_healthy()
        print(
            f"gunicorn  : {args.workers} sync workers on {HOST}:{port}, healthy in {booted:.2f} s"
        )
        cookie = sign_in(
            port, AGENT_EMAIL, agent_password, "/tickets/", 'id="tickets-table"', "the tickets"
        )
        chosen = scenarios(targets, cookie, args.query)
        if args.only:
            keys = {k.strip() for k in args.only.split(",")}
            chosen = [s for s in chosen if s.key in keys]
        for scenario in chosen:
            print(f"probe     : {probe(port, scenario)}")
        results, load_end = measure_and_report(
            server, chosen, args, usable, load_start, stop, TARGET_KEYS, TARGET_P95_MS
        )
        if args.json_path:
            payload = {
                "database": {"kind": db.kind, "version": db.version, "url": db.url},
                "machine": {
                    "cores": cores,
                    "usable_cores": usable,
                    "python": platform.python_version(),
                },
                "loadavg_before": load_start,
                "loadavg_after": load_end,
                "gunicorn_workers": args.workers,
                "seed": figures,
                "filter_team_id": targets["team_id"],
                "migrations_seconds": migrated,
                "seconds": args.seconds,
                "warmup": args.warmup,
                "target": {"scenarios": TARGET_KEYS, "clients": 10, "p95_ms": TARGET_P95_MS},
                "results": [asdict(r) for r in results],
            }
            Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json_path).write_text(json.dumps(payload, indent=2, default=str) + "\n")
            print(f"figures written to {args.json_path}")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the server", file=sys.stderr)
        return 130
    finally:
        stop.set()
        if server is not None:
            server.terminate()
            if args.keep:
                print(f"gunicorn log: {server.log_path}")
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
