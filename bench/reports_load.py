"""Load benchmark for the dashboard and the service-desk report on PostgreSQL with
1,000,000 tickets: gunicorn on 127.0.0.1, signed in as an admin (who sees every panel),
concurrent keep-alive clients, p50/p95 printed. Figures only; it never fails on them.

    .venv/bin/python bench/reports_load.py            # seeds 1,000,000 tickets (SQL, ~30 s)
    .venv/bin/python bench/reports_load.py --reuse    # the database export_bench.py or
                                                      # the last run left

The tickets are seeded as bench/export_bench.py seeds them (plain SQL: ticket rows with
their SLA columns, people, teams), spread over the year, so a month holds ~80,000.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from _harness import (
    HOST,
    ROOT,
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
    rebuild_rollups,
    sign_in,
    venv_bin,
)
from export_bench import DEFAULT_URL, seed

TARGET_P95_MS = 200.0
TARGET_KEYS = ("home", "panels", "report")
PANELS = (
    "my_tickets",
    "my_approvals",
    "major_incidents",
    "sla_week",
    "backlog_trend",
    "week_changes",
    "running_exports",
)


def make_admin(env: dict[str, str]) -> tuple[str, str]:
    email = f"bench-admin-{secrets.token_hex(4)}@example.com"
    password = "bench-" + secrets.token_urlsafe(16)
    subprocess.run(
        [venv_bin("flask"), "--app", "portal", "users", "create-admin", "--email", email,
         "--name", "Bench Admin", "--password", password],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return email, password


def scenarios(cookie: str) -> list[Scenario]:
    headers = {"Cookie": cookie}
    htmx = {**headers, "HX-Request": "true"}
    return [
        Scenario("home", "GET / (the page; panels load after it)", "/", headers),
        Scenario(
            "panels",
            "GET a dashboard panel (htmx, one of 7)",
            "/reports/panels/*",
            htmx,
            tuple(f"/reports/panels/{name}" for name in PANELS),
        ),
        Scenario(
            "report", "GET /reports/service-desk (this month)", "/reports/service-desk", headers
        ),
        Scenario(
            "report-quarter",
            "GET /reports/service-desk?period=this_quarter (htmx)",
            "/reports/service-desk?period=this_quarter",
            htmx,
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--clients", default="10,50")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--only", default="", help="comma-separated scenario keys")
    args = parser.parse_args()
    args.client_levels = client_levels(args.clients)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="portal-reports-bench-"))
    stop = threading.Event()
    server = None
    try:
        db = (
            existing_postgres(args.database_url)
            if args.reuse
            else prepare_postgres(args.database_url)
        )
        port = free_port()
        redis_url = local_redis(args.redis_url)
        env = portal_env(db, tmp, port, redis_url)
        cores, usable, load_start = describe_machine(db)
        if not args.reuse:
            print(f"migrations: {migrate(env):.1f} s")
            print(f"seeded    : {args.tickets:,} tickets in {seed(db, args.tickets):.1f} s")
        # Seeded by SQL (here or by export_bench.py): count them into the daily rollup.
        print(f"rollups   : rebuilt in {rebuild_rollups(env):.1f} s")
        email, password = make_admin(env)
        server = Server(env, port, args.workers, tmp / "gunicorn.log")
        print(f"gunicorn  : {args.workers} sync workers on {HOST}:{port}, "
              f"healthy in {server.wait_healthy():.2f} s")  # fmt: skip
        cookie = sign_in(port, email, password, "/", 'id="dashboard"', "the dashboard")
        chosen = scenarios(cookie)
        if args.only:
            chosen = [s for s in chosen if s.key in set(args.only.split(","))]
        measure_and_report(
            server, chosen, args, usable, load_start, stop, TARGET_KEYS, TARGET_P95_MS
        )
    finally:
        stop.set()
        if server is not None:
            server.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
