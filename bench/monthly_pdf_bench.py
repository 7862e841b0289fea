"""Build the monthly operations report PDF on PostgreSQL, the way `flask reports monthly`
builds it (the same function the job runs), for last month and the month before, on
the database `export_bench.py` seeds (1,000,000 tickets, about 86,000 a month). Prints
each build's seconds, the process's peak RSS, the file's size and pages.

    .venv/bin/python bench/monthly_pdf_bench.py               # the export bench's database
    .venv/bin/python bench/monthly_pdf_bench.py --runs 5

Needs that database (run `bench/export_bench.py` once). Prints figures only; it never
fails on them. Target (issue: reports): the PDF in under 5 s.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from _harness import ROOT, existing_postgres, migrate, portal_env, rebuild_rollups, venv_bin
from export_bench import DEFAULT_URL

TARGET_SECONDS = 5.0


def _months_back(today: date, back: int) -> str:
    month_index = today.year * 12 + today.month - 1 - back
    return f"{month_index // 12:04d}-{month_index % 12 + 1:02d}"


def build(env: dict[str, str], month: str, output: Path) -> tuple[float, int]:
    """One `flask reports monthly` run: wall seconds and peak RSS (KiB)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [venv_bin("flask"), "--app", "portal", "reports", "monthly", "--month", month,
         "--output", str(output)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"the build failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return seconds, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    db = existing_postgres(args.database_url)
    tmp = Path(tempfile.mkdtemp(prefix="portal-pdf-bench-"))
    env = portal_env(db, tmp, 0)
    print(f"migrate   : {migrate(env):.1f} s")
    print(f"rollups   : rebuilt in {rebuild_rollups(env):.1f} s (the seed is plain SQL)")
    print(f"database  : PostgreSQL {db.version}, {os.cpu_count()} cores")
    # The process start (Python, the app, its imports) is in each figure: about 1.5 s here.
    started = time.perf_counter()
    subprocess.run([venv_bin("flask"), "--app", "portal", "--help"], cwd=ROOT, env=env,
                   capture_output=True, check=True)  # fmt: skip
    print(f"startup   : `flask --help` alone takes {time.perf_counter() - started:.2f} s")
    worst = 0.0
    for back in (1, 2):
        month = _months_back(date.today(), back)
        for run in range(1, args.runs + 1):
            output = tmp / f"monthly-{month}-{run}.pdf"
            seconds, rss_kib = build(env, month, output)
            worst = max(worst, seconds)
            pages = len(re.findall(rb"/Type\s*/Page[^s]", output.read_bytes()))
            print(
                f"monthly   : {month} run {run}: {seconds:.2f} s, peak RSS "
                f"{rss_kib / 1024:,.0f} MiB, {output.stat().st_size / 1024:,.0f} KiB, "
                f"{pages} pages"
            )
    verdict = "met" if worst < TARGET_SECONDS else "NOT met"
    print(f"target    : under {TARGET_SECONDS:.0f} s, process start included ({verdict})")


if __name__ == "__main__":
    main()
