"""Export every ticket as CSV on PostgreSQL, the way a user's export runs: a real
`flask worker` on Redis picks the job up and writes the file. Prints rows/s, the file's
size and the worker's peak RSS, next to PostgreSQL's own COPY of the same table (the
ceiling) and the row-by-row Python writer on the same rows (what SQLite uses).

    .venv/bin/python bench/export_bench.py                 # 1,000,000 tickets
    .venv/bin/python bench/export_bench.py --reuse         # the database the last run left

Seeding is plain SQL (generate_series), not the demo's histories: an export reads the
ticket rows and their people, team and category, which is what is seeded. Prints
figures only; it never fails on them. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import (
    ROOT,
    Database,
    existing_postgres,
    local_redis,
    migrate,
    portal_env,
    prepare_postgres,
    venv_bin,
)

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/portal_bench_exports"
TARGET_ROWS_PER_SECOND = 250_000
TARGET_RSS_MB = 150

SEED_SQL = """
INSERT INTO users (email, name, role, is_active, password_version, must_change_password,
                   timezone, failed_logins, created_at, updated_at)
SELECT 'person' || g || '@example.com',
       (ARRAY['Ana','Ben','Chloé','Dev','Eve','Farid','Gus','Hana'])[1 + g % 8] || ' '
         || (ARRAY['Okafor','Smith','Müller','Ng','"Quoted"','O''Brien','Roy','Li'])[1 + g / 8 % 8],
       CASE WHEN g <= 60 THEN 'agent' ELSE 'requester' END, true, 1, false,
       'Europe/Paris', 0, now(), now()
FROM generate_series(1, 2000) AS g;

INSERT INTO tickets (type, subject, description, category_id, priority, status, team_id,
                     assignee_id, requester_id, level, created_at, updated_at,
                     status_changed_at, first_response_at, resolved_at, closed_at,
                     response_due_at, resolution_due_at, sla_state, response_state,
                     resolution_state, response_seconds, resolution_seconds, paused_seconds)
SELECT CASE WHEN g % 10 = 0 THEN 'incident' ELSE 'request' END,
       CASE WHEN g % 1000 = 0 THEN '=HYPERLINK("http://x","' || g || '")'
            ELSE (ARRAY['Printer jams on floor','VPN drops, again','Invoice "missing"',
                        'Password reset','Laptop fan noise'])[1 + g % 5] || ' #' || g END,
       '', 1 + g % 4,
       (ARRAY['critical','high','medium','low'])[1 + g % 4],
       status, 1 + g % 5,
       CASE WHEN status = 'new' THEN NULL ELSE (SELECT min(id) FROM users) + g % 60 END,
       (SELECT min(id) FROM users) + 60 + g % 1940,
       (ARRAY['L1','L2','L3'])[1 + g % 3],
       ts, ts, ts,
       CASE WHEN status <> 'new' THEN ts + interval '40 minutes' END,
       CASE WHEN status IN ('resolved', 'closed') THEN ts + interval '2 days' END,
       CASE WHEN status = 'closed' THEN ts + interval '9 days' END,
       ts + interval '4 hours', ts + interval '3 days',
       (ARRAY['on_track','at_risk','breached','met'])[1 + g % 4],
       CASE WHEN status <> 'new' THEN (ARRAY['met','met','met','breached'])[1 + g % 4]
            ELSE 'on_track' END,
       CASE WHEN status IN ('resolved', 'closed')
            THEN (ARRAY['met','met','breached'])[1 + g % 3] ELSE 'on_track' END,
       CASE WHEN status <> 'new' THEN 2400 + g % 600 END,
       CASE WHEN status IN ('resolved', 'closed') THEN 90000 + g % 9000 END,
       (g % 7) * 3600
FROM generate_series(1, %(count)s) AS g,
     -- One ticket every 30 seconds back from now: a year of a busy desk at 1,000,000.
     LATERAL (SELECT localtimestamp - g * interval '30 seconds') AS t(ts),
     -- Last week's tickets in every status, the month before mostly done, older all done:
     -- a backlog of a few tens of thousands, as a desk this size carries.
     LATERAL (SELECT CASE
         WHEN ts > localtimestamp - interval '7 days'
              THEN (ARRAY['new','assigned','in_progress','pending','resolved','closed'])[1 + g % 6]
         WHEN ts > localtimestamp - interval '30 days'
              THEN (ARRAY['pending','in_progress','resolved','closed','closed','closed'])[1 + g % 6]
         ELSE (ARRAY['resolved','closed','closed','closed'])[1 + g % 4] END) AS s(status);
"""


def seed(db: Database, count: int) -> float:
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(db.url) as conn:
        # Seeding only: skip the search triggers (an export never reads the search table).
        conn.execute("SET TimeZone = 'UTC'")  # stored times are UTC
        conn.execute("SET session_replication_role = replica")
        conn.execute(SEED_SQL.replace("%(count)s", str(int(count))))
        conn.execute("SET session_replication_role = origin")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE tickets")
        conn.execute("VACUUM ANALYZE users")
    return time.perf_counter() - started


def copy_baseline(db: Database) -> tuple[int, float]:
    """PostgreSQL's own COPY of the ticket rows, formatted by nothing: the ceiling."""
    import psycopg

    with psycopg.connect(db.url) as conn, conn.cursor() as cur:
        started, size = time.perf_counter(), 0
        with cur.copy("COPY (SELECT * FROM tickets) TO STDOUT (FORMAT CSV)") as copy:
            for data in copy:
                size += len(data)
        return cur.rowcount, time.perf_counter() - started


def queue_export(env: dict[str, str], query: str) -> int:
    code = f"""
from portal import create_app
from portal.extensions import db
from portal.reports import services
from portal.users.models import User
from werkzeug.datastructures import MultiDict
from urllib.parse import parse_qsl
app = create_app()
with app.test_request_context("/"):
    agent = db.session.scalar(db.select(User).where(User.role == "agent").order_by(User.id))
    export = services.request_export("tickets", MultiDict(parse_qsl({query!r})), agent)
    print(export.id)
"""
    out = subprocess.run(
        [venv_bin("python"), "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if out.returncode:
        sys.exit(f"could not queue the export:\n{out.stderr}")
    return int(out.stdout.strip().splitlines()[-1])


def run_worker(env: dict[str, str]) -> tuple[float, int]:
    """A burst worker on the exports queue: wall seconds and peak RSS (KiB, the job's
    process included: RQ runs each job in a forked child, waited for by the worker)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [venv_bin("flask"), "--app", "portal", "worker", "--burst", "--queue", "exports"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"worker failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return seconds, usage.ru_maxrss


def export_row(env: dict[str, str], export_id: int) -> dict[str, str]:
    code = f"""
from portal import create_app
from portal.extensions import db
from portal.reports.models import Export
app = create_app()
with app.app_context():
    e = db.session.get(Export, {export_id})
    print(e.status, e.rows_done, e.size, e.started_at.isoformat(), e.finished_at.isoformat(),
          e.error or "")
"""
    out = subprocess.run(
        [venv_bin("python"), "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    status, rows, size, started, finished, *error = out.stdout.split()
    return {
        "status": status,
        "rows": rows,
        "size": size,
        "started": started,
        "finished": finished,
        "error": " ".join(error),
    }


def python_writer(env: dict[str, str], limit: int) -> tuple[int, float]:
    """The row-by-row writer (SQLite's path) over the first `limit` rows, in-process."""
    code = f"""
import time, zoneinfo
from portal import create_app
from portal.extensions import db
from portal.reports import csv_writer
from portal.reports.sources import SOURCES
from portal.users.models import User
from werkzeug.datastructures import MultiDict
class Sink:
    def write(self, data): return len(data)
app = create_app()
with app.test_request_context("/"):
    agent = db.session.scalar(db.select(User).where(User.role == "agent").order_by(User.id))
    plan = SOURCES["tickets"].plan(SOURCES["tickets"].read_filters(MultiDict()), agent)
    plan = type(plan)(plan.columns, plan.statement.limit({limit}), plan.listed)
    t = time.perf_counter()
    n = csv_writer._python_rows(plan, Sink(), zoneinfo.ZoneInfo("Europe/Paris"), lambda d: None)
    print(n, time.perf_counter() - t)
"""
    out = subprocess.run(
        [venv_bin("python"), "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if out.returncode:
        sys.exit(out.stderr)
    rows, seconds = out.stdout.split()[-2:]
    return int(rows), float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="measure the last run's database")
    parser.add_argument("--query", default="", help="the list's filters, e.g. status=closed")
    parser.add_argument(
        "--python-rows",
        type=int,
        default=200_000,
        help="rows for the row-by-row comparison (0: skip)",
    )
    args = parser.parse_args()

    redis_url = local_redis(args.redis_url)
    if not redis_url:
        sys.exit("a local Redis is needed: the export runs on a real worker")
    tmp = Path(tempfile.mkdtemp(prefix="portal-export-bench-"))
    prepare = existing_postgres if args.reuse else prepare_postgres
    db = prepare(args.database_url)
    env = portal_env(db, tmp, 0, redis_url)
    if not args.reuse:
        print(f"migrate   : {migrate(env):.1f} s")
        print(f"seed      : {args.tickets:,} tickets in {seed(db, args.tickets):.1f} s")
    print(f"database  : PostgreSQL {db.version}, {os.cpu_count()} cores")

    rows, seconds = copy_baseline(db)
    print(
        f"baseline  : COPY (SELECT * FROM tickets): {rows:,} rows in {seconds:.2f} s "
        f"({rows / seconds:,.0f} rows/s)"
    )

    export_id = queue_export(env, args.query)
    wall, rss_kib = run_worker(env)
    row = export_row(env, export_id)
    from datetime import datetime

    job_seconds = (
        datetime.fromisoformat(row["finished"]) - datetime.fromisoformat(row["started"])
    ).total_seconds()
    rows_done = int(row["rows"])
    rate = rows_done / job_seconds if job_seconds else 0
    rss_mb = rss_kib / 1024
    print(
        f"export    : {row['status']} {rows_done:,} rows, {int(row['size']) / 2**20:,.0f} MiB "
        f"in {job_seconds:.2f} s ({rate:,.0f} rows/s; worker start to exit {wall:.1f} s) "
        f"{row['error']}"
    )
    print(f"worker RSS: {rss_mb:,.0f} MiB peak")
    print(
        f"targets   : {TARGET_ROWS_PER_SECOND:,} rows/s "
        f"({'met' if rate >= TARGET_ROWS_PER_SECOND else 'NOT met'}), "
        f"peak RSS under {TARGET_RSS_MB} MB ({'met' if rss_mb < TARGET_RSS_MB else 'NOT met'})"
    )
    if args.python_rows:
        n, secs = python_writer(env, args.python_rows)
        print(
            f"python    : row-by-row writer (SQLite's path) {n:,} rows in {secs:.2f} s "
            f"({n / secs:,.0f} rows/s)"
        )


if __name__ == "__main__":
    main()
