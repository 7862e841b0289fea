"""Load benchmark for the change pages: seeds 20,000 change requests (fixed seed, Core bulk
inserts) into a fresh database, starts gunicorn on 127.0.0.1 and drives, signed in as an
approver, the change calendar's month view and the filtered change list with concurrent
keep-alive clients. It prints figures; it never passes or fails.

    .venv/bin/python bench/changes_load.py
    .venv/bin/python bench/changes_load.py --changes 100000 --seconds 5
    .venv/bin/python bench/changes_load.py --sqlite

See bench/README.md for the options and how to read the table.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

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

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/portal_bench_changes"
TARGET_P95_MS = 100.0
TARGET_KEYS = ("calendar", "list")
APPROVER_EMAIL = "bench-approver@example.com"
SEED = 20261122
LIST_PATH = "/changes/?status=scheduled&risk=high"
# No one signs in as the seeded people: this is not a hash any password verifies against.
UNUSABLE_HASH = "!bench-no-sign-in"
BATCH = 5000

# Share of each status, as a year of a mid-sized estate looks: most changes are done.
STATUS_WEIGHTS: dict[str, float] = {
    "draft": 5,
    "submitted": 3,
    "in_review": 4,
    "approved": 4,
    "rejected": 4,
    "scheduled": 12,
    # Only the changes whose window is open right now: a few dozen at once.
    "implementing": 0.2,
    "validating": 0.2,
    "completed": 45.6,
    "failed": 3,
    "closed": 19,
}
PAST = ("completed", "failed", "closed")
RUNNING = ("implementing", "validating")
DECIDED = ("approved", "rejected", "scheduled", *RUNNING, *PAST)
WORDS = (
    "Upgrade",
    "Patch",
    "Migrate",
    "Rotate keys on",
    "Resize",
    "Fail over",
    "Reconfigure",
    "Decommission",
)
SERVICE_NAMES = (
    "Web shop",
    "Payments",
    "Search",
    "Identity",
    "Mail relay",
    "Data warehouse",
    "VPN",
    "DNS",
    "CDN",
    "Billing",
    "CRM",
    "Wiki",
    "Build farm",
    "Object store",
    "Message bus",
    "Monitoring",
    "Backups",
    "HR portal",
    "Telephony",
    "Print service",
)


def _risk(impact: int, likelihood: int) -> str:
    score = impact * likelihood
    return "low" if score <= 2 else "medium" if score <= 4 else "high"


def _window(rng: random.Random, status: str, now: datetime) -> tuple[datetime, datetime] | None:
    """Windows over about six months either side of now, placed as the status implies."""
    hours = rng.choice((1, 1, 2, 2, 3, 4, 6, 8, 24, 48))
    if status in PAST:
        start = now - timedelta(days=rng.uniform(1, 182))
    elif status in RUNNING:
        start = now - timedelta(hours=rng.uniform(0, hours))
    elif status == "scheduled":
        start = now + timedelta(days=rng.uniform(0.1, 182))
    elif rng.random() < 0.6:
        start = now + timedelta(days=rng.uniform(1, 182))
    else:
        return None
    start = start.replace(minute=rng.choice((0, 30)), second=0, microsecond=0)
    return start, start + timedelta(hours=hours)


def _insert(session: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    from sqlalchemy import insert

    for i in range(0, len(rows), BATCH):
        session.execute(insert(table), rows[i : i + BATCH])


def seed(db: Database, env: dict[str, str], count: int, password: str) -> dict[str, Any]:
    """People, services, changes, their services and votes, in one transaction per table
    kind; returns the seeding figures."""
    from sqlalchemy import text

    from portal.changes.models import ChangeRequest, ChangeVote, change_services
    from portal.changes.setup_models import Service
    from portal.extensions import db as portal_db
    from portal.timeutil import utcnow
    from portal.users.models import User
    from portal.users.passwords import hash_password

    rng = random.Random(SEED)
    started = time.perf_counter()
    now = utcnow()
    app = portal_app(env)
    with app.app_context():
        session = portal_db.session
        people: list[dict[str, Any]] = []
        roles = ["requester"] * 400 + ["agent"] * 60 + ["approver"] * 25 + ["admin"] * 5
        for n, role in enumerate(roles, start=1):
            people.append(
                {
                    "id": n,
                    "email": f"bench-{role}-{n}@example.com",
                    "name": f"Bench {role.capitalize()} {n}",
                    "role": role,
                    "is_active": True,
                    "password_hash": UNUSABLE_HASH,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        me_id = len(people) + 1
        people.append(
            {
                "id": me_id,
                "email": APPROVER_EMAIL,
                "name": "Bench Approver",
                "role": "approver",
                "is_active": True,
                "password_hash": hash_password(password),
                "created_at": now,
                "updated_at": now,
            }
        )
        _insert(session, User.__table__, people)
        by_role: dict[str, list[int]] = {}
        for person in people[:-1]:
            by_role.setdefault(person["role"], []).append(person["id"])
        creators = by_role["requester"] + by_role["agent"]
        voters = by_role["approver"] + by_role["admin"]
        services = [
            {"id": i, "name": name, "description": "", "owner_id": rng.choice(by_role["agent"])}
            | {"is_active": True, "created_at": now}
            for i, name in enumerate(SERVICE_NAMES, start=1)
        ]
        _insert(session, Service.__table__, services)

        statuses = list(STATUS_WEIGHTS)
        weights = list(STATUS_WEIGHTS.values())
        changes, links, votes = [], [], []
        by_status: dict[str, int] = {}
        for change_id in range(1, count + 1):
            status = rng.choices(statuses, weights)[0]
            by_status[status] = by_status.get(status, 0) + 1
            impact, likelihood = rng.randint(1, 3), rng.randint(1, 3)
            risk = _risk(impact, likelihood)
            window = _window(rng, status, now)
            created = now - timedelta(days=rng.uniform(0, 200))
            if window is not None:
                created = min(created, window[0] - timedelta(days=1))
            requester = rng.choice(creators)
            changes.append(
                {
                    "id": change_id,
                    "type": rng.choices(("normal", "standard", "emergency"), (85, 10, 5))[0],
                    "title": f"{rng.choice(WORDS)} {rng.choice(SERVICE_NAMES)} #{change_id}",
                    "description": "Bench change.",
                    "justification": "Keeps the estate current.",
                    "success_criteria": "Monitoring stays green.",
                    "impact": impact,
                    "likelihood": likelihood,
                    "risk": risk,
                    "implementation_plan": "1. Drain. 2. Apply. 3. Restore.",
                    "rollback_plan": "Restore the snapshot.",
                    "window_start": window[0] if window else None,
                    "window_end": window[1] if window else None,
                    "requester_id": requester,
                    "implementer_id": rng.choice(by_role["agent"]) if rng.random() < 0.7 else None,
                    "status": status,
                    "approval_round": 1,
                    "validation_results": "",
                    "outcome": "",
                    "lessons_learned": "",
                    "created_at": created,
                    "updated_at": created,
                    "status_changed_at": created,
                }
            )
            for service_id in rng.sample(range(1, len(services) + 1), rng.randint(1, 3)):
                links.append({"change_id": change_id, "service_id": service_id})
            if status in DECIDED:
                needed = {"low": 1, "medium": 2, "high": 3}[risk]
                chosen = rng.sample(voters, needed)
                if risk == "high" and not set(chosen) & set(by_role["admin"]):
                    chosen[-1] = rng.choice(by_role["admin"])
                for n, approver in enumerate(chosen):
                    rejected = status == "rejected" and n == len(chosen) - 1
                    votes.append(
                        {
                            "change_id": change_id,
                            "round": 1,
                            "approver_id": approver,
                            "decision": "reject" if rejected else "approve",
                            "comment": "",
                            "approver_role": "admin"
                            if approver in by_role["admin"]
                            else "approver",
                            "created_at": created + timedelta(hours=n + 1),
                        }
                    )
        _insert(session, ChangeRequest.__table__, changes)
        _insert(session, change_services, links)
        _insert(session, ChangeVote.__table__, votes)
        session.commit()
        seconds = time.perf_counter() - started
        analysed = time.perf_counter()
        if db.kind == "postgresql":
            with portal_db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                # Ids were given explicitly: move the sequences past them, so rows made by
                # hand on the database left behind get fresh ids.
                for table in ("users", "services", "change_requests", "change_votes"):
                    conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))"
                        )
                    )
                conn.execute(text("VACUUM ANALYZE"))
        analysed = time.perf_counter() - analysed
        session.remove()
        portal_db.engine.dispose()
    return {
        "changes": count,
        "seconds": round(seconds, 2),
        "changes_per_second": round(count / seconds, 1) if seconds else None,
        "service_links": len(links),
        "votes": len(votes),
        "by_status": dict(sorted(by_status.items())),
        "vacuum_analyze_seconds": round(analysed, 2),
    }


def reset_approver_password(env: dict[str, str], password: str) -> None:
    """Give the bench approver of a kept database a fresh password to sign in with."""
    from sqlalchemy import update

    from portal.extensions import db as portal_db
    from portal.users.models import User
    from portal.users.passwords import hash_password

    with portal_app(env).app_context():
        changed = portal_db.session.execute(
            update(User)
            .where(User.email == APPROVER_EMAIL)
            .values(password_hash=hash_password(password), must_change_password=False)
        ).rowcount
        if not changed:
            sys.exit(f"no {APPROVER_EMAIL} in this database: run once without --reuse")
        portal_db.session.commit()
        portal_db.session.remove()
        portal_db.engine.dispose()


def portal_app(env: dict[str, str]) -> Any:
    from portal import create_app

    names = ("PORTAL_ENV", "SECRET_KEY", "DATABASE_URL", "STORAGE_DIR", "REDIS_URL", "MAIL_SERVER")
    return create_app({name: env[name] for name in names})


def month_paths(today: date) -> tuple[str, ...]:
    """The month view of each month from six before to six after this one."""
    paths = []
    for offset in range(-6, 7):
        index = today.year * 12 + today.month - 1 + offset
        first = date(index // 12, index % 12 + 1, 1)
        paths.append(f"/changes/calendar?view=month&date={first.isoformat()}")
    return tuple(paths)


def probe(port: int, path: str, headers: dict[str, str]) -> tuple[int, str]:
    started = time.perf_counter()
    status, _, body = request("GET", port, path, headers=headers, timeout=120)
    took = (time.perf_counter() - started) * 1000
    changes = body.count("CR-0")
    return (
        status,
        f"{path} answered {status} in {took:.0f} ms, {changes} change links, {len(body)} bytes",
    )


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
        "--changes", type=int, default=20_000, help="changes to seed (default 20000)"
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per worker; >1 uses gthread (default 1)"
    )
    parser.add_argument("--clients", default="10", help="comma-separated levels (default 10)")
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="measured seconds per run (default 10)"
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="unmeasured seconds before each run (default 1)"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated scenario keys to run: calendar,week,list"
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/11",
        help="a local Redis database to empty and use, as production does; '' for none. "
        "Default: redis://127.0.0.1:6379/11",
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
    if args.changes < 1:
        parser.error("--changes must be at least 1")
    if args.reuse and args.sqlite:
        parser.error("--reuse works on PostgreSQL only (the SQLite file is temporary)")
    if not args.sqlite and not args.database_url.startswith("postgresql://"):
        parser.error("--database-url must be a postgresql:// URL (or use --sqlite)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
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
        cores, usable, load_start = describe_machine(db)

        password = "bench-" + secrets.token_urlsafe(16)
        figures: dict[str, Any] = {}
        migrated = 0.0
        if args.reuse:
            # Migrations only: a kept database may be a revision behind the code measured.
            migrated = migrate(env)
            reset_approver_password(env, password)
            print(f"reused    : {db.url} as the last run left it (no seeding)")
        else:
            migrated = migrate(env)
            print(f"migrations: {migrated:.2f} s")
            print(
                f"seeding   : {args.changes:,} changes (Core bulk inserts, seed {SEED})",
                flush=True,
            )
            figures = seed(db, env, args.changes, password)
            print(
                f"seeded    : {figures['changes']:,} changes in {figures['seconds']:.1f} s "
                f"({figures['changes_per_second']:,.0f} changes/s): "
                f"{figures['service_links']:,} service links, {figures['votes']:,} votes"
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
            port,
            APPROVER_EMAIL,
            password,
            "/changes/calendar",
            'id="calendar-grid"',
            "the calendar",
        )
        headers = {"Cookie": cookie}
        today = date.today()
        months = month_paths(today)
        weeks = tuple(
            f"/changes/calendar?view=week&date={(today + timedelta(weeks=w)).isoformat()}"
            for w in range(-26, 27)
        )
        chosen = [
            Scenario("calendar", "(a) calendar month, ±6 months", months[6], headers, months),
            Scenario("list", "(b) list, scheduled + high risk", LIST_PATH, headers),
            Scenario("week", "(c) calendar week, ±26 weeks", weeks[26], headers, weeks),
        ]
        if args.only:
            keys = {k.strip() for k in args.only.split(",")}
            chosen = [s for s in chosen if s.key in keys]
        for scenario in list(chosen):
            status, line = probe(port, scenario.path, headers)
            print(f"probe     : {line}")
            if scenario.key == "list" and status == 404:
                print(f"skipped   : {LIST_PATH} is not there yet (404): no list scenario")
                chosen.remove(scenario)
            elif status != 200:
                print(f"warning   : {scenario.path} answered {status}; its errors will show")
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
