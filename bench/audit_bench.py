"""The audit trail at 10,000,000 events on PostgreSQL: the viewer filtered by one person
and a date range under concurrent clients (p50/p95), then `flask audits verify` over the
whole chain (events/s, peak memory). Figures only; it never fails on them.

    .venv/bin/python bench/audit_bench.py                  # seeds 10,000,000 events
    .venv/bin/python bench/audit_bench.py --events 1000000
    .venv/bin/python bench/audit_bench.py --reuse          # the database the last run left

Seeding writes a valid chain: each row is hashed by the portal's own canonical form
(portal.audits.chain) in this process and streamed in with COPY, with the secondary
indexes dropped during the load and built after it. Three years of events, one every
few seconds, by a thousand people and the system. See bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from _harness import (
    HOST,
    ROOT,
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
    sign_in,
    venv_bin,
)
from reports_load import make_admin

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/portal_bench_audit"
TARGET_P95_MS = 100.0
TARGET_EVENTS_PER_SECOND = 200_000
PEOPLE = 1000
SPAN = timedelta(days=3 * 365)
COPY_BLOCK = 4 << 20

ACTIONS = (
    ("auth.login", "user"),
    ("auth.login", "user"),
    ("auth.login_failed", "user"),
    ("ticket.created", "ticket"),
    ("ticket.updated", "ticket"),
    ("ticket.updated", "ticket"),
    ("ticket.replied", "ticket"),
    ("change.submitted", "changerequest"),
    ("change.approved", "changerequest"),
    ("user.role_changed", "user"),
    ("export.downloaded", "export"),
)
DATA = (
    '{"after":{"status":"in_progress"},"before":{"status":"assigned"}}',
    '{"after":{"priority":"high"},"before":{"priority":"medium"}}',
    '{"email":"someone@example.com","reason":"wrong password"}',
    '{"kind":"tickets","rows":1250,"sha256":"9f2c"}',
    "{}",
)


def _copy_text(value: object) -> str:
    """A value in COPY's text format (nothing seeded holds a tab, newline or backslash)."""
    return "\\N" if value is None else str(value)


def chained_lines(events: int, people: list[tuple[int, str]], rng: random.Random) -> Iterator[str]:
    """The events as COPY text lines, each hashed over the one before it."""
    from portal.audits.chain import GENESIS_HASH, canonical_with_data_text

    ips = [f"10.{i // 250 % 250}.{i % 250}.{i % 7 + 1}" for i in range(5000)]
    agent = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
    first = datetime.now().replace(microsecond=0) - SPAN
    step = SPAN / events
    prev = GENESIS_HASH
    sha256, choice, randrange = hashlib.sha256, rng.choice, rng.randrange
    for event_id in range(1, events + 1):
        created = first + step * event_id
        if randrange(10):
            actor_id, label = choice(people)
            ip, ua = choice(ips), agent
        else:
            actor_id, label, ip, ua = None, "system", None, None
        action, target_type = choice(ACTIONS)
        target_id = str(randrange(1, 100_000))
        data = choice(DATA)
        row = (event_id, created, actor_id, label, ip, ua, action, target_type, target_id,
               None, prev)  # fmt: skip
        digest = sha256(canonical_with_data_text(row, data)).hexdigest()
        yield (
            "\t".join(
                _copy_text(v)
                for v in (
                    event_id,
                    created.isoformat(" "),
                    actor_id,
                    label,
                    ip,
                    ua,
                    action,
                    target_type,
                    target_id,
                    data,
                    prev,
                    digest,
                )  # fmt: skip
            )
            + "\n"
        )
        prev = digest


def seed(db: Database, events: int) -> float:
    import psycopg

    started = time.perf_counter()
    rng = random.Random(7)
    with psycopg.connect(db.url) as conn:
        conn.execute(
            """INSERT INTO users (email, name, role, is_active, password_version,
                   must_change_password, timezone, failed_logins, created_at, updated_at)
               SELECT 'person' || g || '@example.com', 'Person ' || g,
                      CASE WHEN g %% 50 = 0 THEN 'admin' ELSE 'agent' END, true, 1, false,
                      'UTC', 0, now(), now()
               FROM generate_series(1, %s) AS g""",
            (PEOPLE,),
        )
        people = conn.execute("SELECT id, email FROM users ORDER BY id").fetchall()
        # Secondary indexes and the unique hash are built once after the load, not row
        # by row during it; the primary key stays.
        indexes = conn.execute(
            """SELECT indexname, indexdef FROM pg_indexes AS i
               WHERE tablename = 'audit_events'
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = i.indexname)"""
        ).fetchall()
        uniques = conn.execute(
            """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
               WHERE conrelid = 'audit_events'::regclass AND contype = 'u'"""
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        for name, _ in uniques:
            conn.execute(f'ALTER TABLE audit_events DROP CONSTRAINT "{name}"')
        conn.commit()

        columns = (
            "id, created_at, actor_id, actor_label, ip, user_agent, action, target_type, "
            "target_id, data, prev_hash, hash"
        )
        with conn.cursor().copy(f"COPY audit_events ({columns}) FROM STDIN") as copy:
            block: list[str] = []
            size = 0
            for line in chained_lines(events, people, rng):
                block.append(line)
                size += len(line)
                if size >= COPY_BLOCK:
                    copy.write("".join(block))
                    block, size = [], 0
            copy.write("".join(block))
        conn.commit()
        for _, definition in indexes:
            conn.execute(definition)
        for name, definition in uniques:
            conn.execute(f'ALTER TABLE audit_events ADD CONSTRAINT "{name}" {definition}')
        conn.execute("ANALYZE audit_events")
        conn.commit()
    return time.perf_counter() - started


def viewer_paths(db: Database, count: int = 60) -> tuple[str, ...]:
    """One person and a 30-day range each: the question an auditor asks most."""
    import psycopg

    rng = random.Random(11)
    with psycopg.connect(db.url) as conn:
        first, last = conn.execute(
            "SELECT min(created_at), max(created_at) FROM audit_events"
        ).fetchone()
        people = [r[0] for r in conn.execute("SELECT email FROM users WHERE email LIKE 'person%'")]
    days = max((last - first).days - 30, 1)
    paths = []
    for _ in range(count):
        start = (first + timedelta(days=rng.randrange(days))).date()
        end = start + timedelta(days=29)
        paths.append(f"/audits/?actor={rng.choice(people)}&from={start}&to={end}")
    return tuple(paths)


def verify_chain(env: dict[str, str]) -> tuple[float, int, str]:
    """`flask audits verify` as an operator runs it: seconds, peak RSS (KiB, its worker
    processes included) and the line it printed."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [venv_bin("flask"), "--app", "portal", "audits", "verify"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = proc.communicate()[0]
    seconds = time.perf_counter() - started
    # The largest of the waited-for descendants: the command and its checking processes.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    lines = [line for line in output.splitlines() if line.strip()]
    return seconds, peak, lines[-1] if lines else "(no output)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--clients", default="10,50")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--skip-load", action="store_true", help="verification only")
    args = parser.parse_args()
    args.client_levels = client_levels(args.clients)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="portal-audit-bench-"))
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
            seconds = seed(db, args.events)
            print(f"seeded    : {args.events:,} chained events in {seconds:.1f} s "
                  f"({args.events / seconds:,.0f}/s, hashing included)")  # fmt: skip
        if not args.skip_load:
            email, password = make_admin(env)
            server = Server(env, port, args.workers, tmp / "gunicorn.log")
            print(f"gunicorn  : {args.workers} sync workers on {HOST}:{port}, "
                  f"healthy in {server.wait_healthy():.2f} s")  # fmt: skip
            cookie = sign_in(port, email, password, "/", 'id="dashboard"', "the dashboard")
            headers = {"Cookie": cookie}
            scenarios = [
                Scenario(
                    "viewer",
                    "GET /audits/?actor=…&from=…&to=… (one person, 30 days; 60 variants)",
                    "/audits/?actor=&from=&to=",
                    headers,
                    viewer_paths(db),
                ),
                Scenario("newest", "GET /audits/ (newest events, no filter)", "/audits/", headers),
            ]
            measure_and_report(
                server, scenarios, args, usable, load_start, stop, ("viewer",), TARGET_P95_MS
            )
            server.terminate()
            server = None
        seconds, peak_kib, said = verify_chain(env)
        match = re.search(r"([\d,]+) events", said)
        checked = int(match.group(1).replace(",", "")) if match else args.events
        own = re.search(r"([\d.]+) s\.?$", said)
        walk = float(own.group(1)) if own else seconds
        rate = checked / walk
        verdict = "met" if rate > TARGET_EVENTS_PER_SECOND else "NOT met"
        print(f"verify    : {said}")
        print(f"verify    : {checked:,} events: {rate:,.0f} events/s over the walk itself, "
              f"{checked / seconds:,.0f}/s from the command's start to its exit "
              f"({seconds:.1f} s), peak RSS {peak_kib / 1024:.0f} MiB")  # fmt: skip
        print(f"target    : verification over {TARGET_EVENTS_PER_SECOND:,} events/s ({verdict})")
    finally:
        stop.set()
        if server is not None:
            server.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
