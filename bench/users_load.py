"""Load benchmark for the users pages: seeds 10,000 users, starts gunicorn on
127.0.0.1 and drives the users list, its htmx fragment and the sign-in page
with concurrent keep-alive clients. It prints figures; it never passes or fails.

    .venv/bin/python bench/users_load.py
    .venv/bin/python bench/users_load.py --database-url postgresql://postgres@127.0.0.1:5432/portal_bench

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
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from _harness import (
    HOST,
    Database,
    Result,
    Scenario,
    Server,
    client_levels,
    describe_machine,
    free_port,
    migrate,
    portal_env,
    prepare_postgres,
    print_run_notes,
    print_table,
    request,
    run_scenario,
    sign_in,
)

TARGET_P95_MS = 50.0
ROLES_WEIGHTED = (("requester", 60), ("agent", 20), ("approver", 10), ("auditor", 7), ("admin", 3))
_FIRST_NAMES = (
    "Ada Alan Amara Ana Andrea Anton Bianca Brian Carla Chen Daniel Diana Elena Ethan "
    "Fatima Frank Grace Hannah Ivan Jana Johan Karen Kenji Lara Liam Maria Marta Mohammed "
    "Nadia Noah Olga Oscar Priya Rafael Sara Stefan Tomas Uma Victor Zoe"
)
_LAST_NAMES = (
    "Andersen Bauer Brown Castro Dubois Evans Fischer Garcia Hansen Ivanova Jensen Kim "
    "Kowalski Larsen Lopez Martin Meyer Nakamura Novak Olsen Patel Petrov Quinn Rossi "
    "Sanchez Schmidt Silva Smith Tanaka Torres Umarov Vargas Wagner Weber Wong Xu Young "
    "Zhang Ziegler Nguyen"
)
FIRST, LAST = _FIRST_NAMES.split(), _LAST_NAMES.split()
DOMAINS = ("example.com", "example.org", "corp.example.net")
ADMIN_EMAIL = "bench-admin@example.com"


def seed_users(db: Database, count: int, admin_password: str) -> dict[str, Any]:
    """Bulk-insert `count` users plus one admin with SQLAlchemy Core; one argon2 hash reused."""
    from sqlalchemy import create_engine, func, insert, select, text

    from portal.timeutil import utcnow
    from portal.users.models import User
    from portal.users.passwords import hash_password

    rng = random.Random(20261121)
    started = time.perf_counter()
    shared_hash = hash_password(secrets.token_urlsafe(16))
    admin_hash = hash_password(admin_password)
    hashed = time.perf_counter()

    now = utcnow()
    roles = [r for r, _ in ROLES_WEIGHTED]
    weights = [w for _, w in ROLES_WEIGHTED]
    base = {
        "password_version": 1,
        "must_change_password": False,
        "timezone": "UTC",
        "failed_logins": 0,
        "first_failed_login_at": None,
    }
    rows: list[dict[str, Any]] = [
        {
            **base,
            "email": ADMIN_EMAIL,
            "name": "Bench Admin",
            "role": "admin",
            "is_active": True,
            "password_hash": admin_hash,
            "locked_until": None,
            "last_login_at": None,
            "created_at": now,
            "updated_at": now,
        }
    ]
    for i in range(1, count + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        created = now - timedelta(days=rng.randint(0, 1500))
        roll = rng.random()
        rows.append(
            {
                **base,
                "email": f"{first}.{last}.{i}@{rng.choice(DOMAINS)}".lower(),
                "name": f"{first} {last}",
                "role": rng.choices(roles, weights)[0],
                "is_active": roll >= 0.08,  # ~8% deactivated
                "password_hash": shared_hash,
                "locked_until": now + timedelta(minutes=10)
                if 0.08 <= roll < 0.09
                else None,  # ~1% locked
                "last_login_at": created + timedelta(hours=rng.randint(1, 900))
                if rng.random() < 0.7
                else None,
                "created_at": created,
                "updated_at": created,
            }
        )
    engine = create_engine(db.sqlalchemy_url)
    try:
        with engine.begin() as conn:
            for start in range(0, len(rows), 2000):
                conn.execute(insert(User.__table__), rows[start : start + 2000])
        inserted = time.perf_counter()
        if db.kind == "postgresql":
            # Autovacuum would analyse a table this size within a minute: start from there.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
        with engine.connect() as conn:
            total = conn.scalar(select(func.count()).select_from(User.__table__))
            by_role = dict(conn.execute(select(User.role, func.count()).group_by(User.role)).all())
            inactive = conn.scalar(
                select(func.count()).select_from(User.__table__).where(User.is_active.is_(False))
            )
    finally:
        engine.dispose()
    done = time.perf_counter()
    return {
        "users": total,
        "by_role": by_role,
        "deactivated": inactive,
        "hash_seconds": round(hashed - started, 3),
        "insert_seconds": round(inserted - hashed, 3),
        "seconds": round(done - started, 3),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="postgresql://... (local, name containing 'bench'; dropped and "
        "recreated). Default: a fresh SQLite file in a temp dir",
    )
    parser.add_argument("--users", type=int, default=10_000, help="users to seed (default 10000)")
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
        "--query", default="an", help="search fragment for the htmx scenario (default 'an')"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated scenario keys to run: list,fragment,login"
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
    if args.database_url and not args.database_url.startswith("postgresql://"):
        parser.error("--database-url must be a postgresql:// URL (SQLite is the default)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C even if inherited ignored
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup below
    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    server: Server | None = None
    stop = threading.Event()
    try:
        if args.database_url:
            db = prepare_postgres(args.database_url)
        else:
            import sqlite3

            db = Database(f"sqlite:///{tmp / 'bench.db'}", "sqlite", sqlite3.sqlite_version)
        port = free_port()
        env = portal_env(db, tmp, port)
        cores, usable, load_start = describe_machine(db)

        migrated = migrate(env)
        print(f"migrations: {migrated:.2f} s")
        admin_password = "bench-" + secrets.token_urlsafe(16)
        seed = seed_users(db, args.users, admin_password)
        print(
            f"seeding   : {seed['users']} users in {seed['seconds']:.2f} s "
            f"(argon2 x2 {seed['hash_seconds']:.2f} s, insert {seed['insert_seconds']:.2f} s); "
            f"roles {seed['by_role']}, deactivated {seed['deactivated']}"
        )

        server = Server(env, port, args.workers, tmp / "gunicorn.log", args.threads)
        booted = server.wait_healthy()
        print(
            f"gunicorn  : {args.workers} sync workers on {HOST}:{port}, healthy in {booted:.2f} s"
        )
        cookie = sign_in(port, ADMIN_EMAIL, admin_password)

        fragment_path = "/users/?" + urlencode({"q": args.query, "role": "agent"})
        status, _, body = request(
            "GET", port, fragment_path, headers={"Cookie": cookie, "HX-Request": "true"}
        )
        matched = re.search(r"of (\d+)</p>", body)
        print(
            f"fragment  : q={args.query!r} role=agent answered {status}, "
            f"{matched.group(1) if matched else 'no'} matching users, {len(body)} bytes "
            f"({'no <html>' if '<html' not in body else 'a full page'})"
        )
        if status != 200:
            print(f"            the fragment failed; gunicorn log tail:\n{server.log_tail(8)}")

        scenarios = [
            Scenario("list", "(a) users list, full page", "/users/", {"Cookie": cookie}),
            Scenario(
                "fragment",
                "(b) users search, htmx fragment",
                fragment_path,
                {"Cookie": cookie, "HX-Request": "true"},
            ),
            Scenario("login", "(c) sign-in page, anonymous", "/login", {}),
        ]
        if args.only:
            keys = {k.strip() for k in args.only.split(",")}
            scenarios = [s for s in scenarios if s.key in keys]
        print(
            f"load      : {args.seconds:g} s measured (+{args.warmup:g} s warm-up) per run, "
            f"clients {args.client_levels}, keep-alive http.client per client thread"
        )
        print()
        results: list[Result] = []
        for clients in args.client_levels:
            for scenario in scenarios:
                results.append(
                    run_scenario(server, scenario, clients, args.seconds, args.warmup, stop)
                )
        print_table(results)
        print()
        load_end = print_run_notes(results, usable, args.workers, load_start)
        target = next((r for r in results if r.path == "/users/" and r.clients == 10), None)
        if target:
            verdict = "within" if target.p95_ms < TARGET_P95_MS else "ABOVE"
            print(
                f"target: users list p95 < {TARGET_P95_MS:.0f} ms at 10 clients; measured "
                f"{target.p95_ms:.1f} ms ({verdict} target)"
            )
        else:
            print(
                f"target: users list p95 < {TARGET_P95_MS:.0f} ms at 10 clients "
                "(not measured in this run)"
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
                "seed": seed,
                "migrations_seconds": migrated,
                "seconds": args.seconds,
                "warmup": args.warmup,
                "query": args.query,
                "target": {"scenario": "/users/", "clients": 10, "p95_ms": TARGET_P95_MS},
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
