"""The audit jobs that come round on a calendar, at volume, on PostgreSQL: a full weekly
audit run over 10,000 people and 1,000,000 tickets (seconds), and the retention job
archiving 1,000,000 audit events (rows/s). Figures only; it never fails on them.

    .venv/bin/python bench/audit_jobs_bench.py weekly    # on export_bench.py's database
    .venv/bin/python bench/audit_jobs_bench.py archive   # on audit_bench.py's database

`weekly` tops export_bench.py's 2,000 people up to 10,000 (with a session each, a few
dormant, a few admins) and runs `flask audits run weekly`, first removing an earlier
bench run of the same week so it runs again. `archive` sets the audit policy so that
the oldest `--events` events have expired and runs `flask retention run`: the events
are written to the archive, read back, sealed and deleted. That database then starts
after them; run audit_bench.py again for a whole one. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import ROOT, existing_postgres, portal_env, venv_bin
from audit_bench import DEFAULT_URL as AUDIT_URL
from export_bench import DEFAULT_URL as TICKETS_URL

PEOPLE = 10_000


def _flask(env: dict[str, str], *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    out = subprocess.run(
        [venv_bin("flask"), "--app", "portal", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    seconds = time.perf_counter() - started
    if out.returncode not in (0, 1):
        sys.exit(f"flask {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return seconds, (out.stdout + out.stderr).strip()


def weekly(url: str) -> None:
    import psycopg

    db = existing_postgres(url)
    env = portal_env(db, Path(tempfile.mkdtemp(prefix="portal-audit-jobs-")), 0)
    _flask(env, "db", "upgrade")
    with psycopg.connect(db.url) as conn:
        have = conn.execute("SELECT count(*) FROM users").fetchone()[0]  # type: ignore[index]
        conn.execute(
            """INSERT INTO users (email, name, role, is_active, password_version,
                   must_change_password, timezone, failed_logins, created_at, updated_at,
                   last_login_at)
               SELECT 'staff' || g || '@example.com', 'Staff ' || g,
                      CASE WHEN g %% 100 = 0 THEN 'admin' ELSE 'agent' END, true, 1, false,
                      'UTC', 0, now() - interval '400 days',
                      now() - interval '400 days', now() - (g %% 200) * interval '1 day'
               FROM generate_series(%s::int, %s::int) AS g""",
            (have + 1, PEOPLE),
        )
        conn.execute(
            """INSERT INTO user_sessions (token_hash, user_id, password_version, ip,
                   created_at, last_seen_at)
               SELECT md5(id::text || 'bench'), id, 1, '10.0.0.1',
                      now() - (id % 40) * interval '1 day', now() - interval '1 hour'
               FROM users u
               WHERE NOT EXISTS (SELECT 1 FROM user_sessions s WHERE s.user_id = u.id)"""
        )
        # A bench database's findings are the bench's own: start the week afresh.
        conn.execute("DELETE FROM audit_findings")
        conn.execute("DELETE FROM audit_check_runs WHERE schedule = 'weekly'")
        people = conn.execute("SELECT count(*) FROM users").fetchone()[0]  # type: ignore[index]
        tickets = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]  # type: ignore[index]
        conn.execute("ANALYZE")
    print(f"database  : {people:,} people, {tickets:,} tickets ({db.url})")
    seconds, said = _flask(env, "audits", "run", "weekly")
    print(f"weekly    : `flask audits run weekly` in {seconds:.1f} s (process start included)")
    for line in said.splitlines()[-12:]:
        print(f"            {line}")


def archive(url: str, events: int) -> None:
    import psycopg

    db = existing_postgres(url)
    tmp = Path(tempfile.mkdtemp(prefix="portal-archive-bench-"))
    env = {**portal_env(db, tmp, 0), "ARCHIVE_DIR": str(tmp / "archive")}
    _flask(env, "db", "upgrade")
    with psycopg.connect(db.url) as conn:
        first, count = conn.execute("SELECT min(id), count(*) FROM audit_events").fetchone()  # type: ignore[misc]
        cutoff = conn.execute(
            "SELECT created_at FROM audit_events WHERE id >= %s ORDER BY id LIMIT 1",
            (first + events,),
        ).fetchone()[0]  # type: ignore[index]
        days = conn.execute("SELECT extract(day FROM now() - %s::timestamp)", (cutoff,)).fetchone()
        conn.execute(
            "UPDATE retention_policies SET days = %s WHERE kind = 'audit_events'", (int(days[0]),)
        )
        due = conn.execute(
            "SELECT count(*) FROM audit_events WHERE created_at < now() - %s * interval '1 day'",
            (int(days[0]),),
        ).fetchone()[0]  # type: ignore[index]
    print(f"database  : {count:,} audit events from id {first:,}; {due:,} older than "
          f"{int(days[0])} days ({db.url})")  # fmt: skip
    seconds, said = _flask(env, "retention", "run")
    size = sum(f.stat().st_size for f in (tmp / "archive").rglob("*") if f.is_file())
    print(f"archive   : {due:,} events archived, verified, sealed and deleted in {seconds:.1f} s "
          f"({due / seconds:,.0f} rows/s, process start included); archive {size / 2**20:.0f} MiB")  # fmt: skip
    for line in said.splitlines()[-8:]:
        print(f"            {line}")
    seconds, said = _flask(env, "audits", "verify", "--archive", str(tmp / "archive"))
    print(
        f"verify    : the archive alone in {seconds:.1f} s: {said.splitlines()[-1] if said else ''}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("job", choices=("weekly", "archive"))
    parser.add_argument("--database-url", default="")
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    os.environ.pop("FLASK_APP", None)
    if args.job == "weekly":
        weekly(args.database_url or TICKETS_URL)
    else:
        archive(args.database_url or AUDIT_URL, args.events)
    return 0


if __name__ == "__main__":
    sys.exit(main())
