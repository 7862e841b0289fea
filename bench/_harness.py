"""What the load benchmarks share: a fresh database (SQLite, or a local PostgreSQL whose
name says "bench"), the real migrations, gunicorn on 127.0.0.1, a sign-in through the real
form, closed-loop keep-alive clients for a bounded time, and the figures table.

Used by users_load.py and tickets_load.py; see bench/README.md.
"""

from __future__ import annotations

import http.client
import os
import platform
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"  # the only address these scripts ever connect to over HTTP


# --------------------------------------------------------------------------- setup


@dataclass
class Database:
    url: str  # as given to the portal (postgresql:// or sqlite:///)
    kind: str
    version: str = ""

    @property
    def sqlalchemy_url(self) -> str:
        # The same rewrite portal/config.py makes: psycopg 3 is the driver shipped.
        if self.url.startswith("postgresql://"):
            return "postgresql+psycopg://" + self.url[len("postgresql://") :]
        return self.url


def _bench_database(url: str) -> tuple[str, Any]:
    """The database name and the admin URL, refusing anything but a local *bench* one."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.host not in (None, "127.0.0.1", "localhost", "::1"):
        sys.exit(f"refusing to drop a database on {parsed.host!r}: local PostgreSQL only")
    name = parsed.database or ""
    if "bench" not in name:
        sys.exit(f"refusing to drop database {name!r}: its name must contain 'bench'")
    return name, parsed.set(drivername="postgresql", database="postgres")


def existing_postgres(url: str) -> Database:
    """The (local, *bench*-named) database a previous run left, as it is."""
    import psycopg

    name, admin_url = _bench_database(url)
    with psycopg.connect(admin_url.render_as_string(hide_password=False), autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if found is None:
        sys.exit(f"no database {name!r} to reuse: run once without --reuse")
    return Database(url, "postgresql", version)


def prepare_postgres(url: str) -> Database:
    """Drop and recreate the (local, *bench*-named) database the URL names."""
    import psycopg
    from psycopg import sql

    name, admin_url = _bench_database(url)
    with psycopg.connect(admin_url.render_as_string(hide_password=False), autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return Database(url, "postgresql", version)


def local_redis(url: str) -> str:
    """`url` emptied first (it names a local, numbered bench database), or "" (jobs inline,
    the in-process stand-in) when nothing answers there."""
    if not url:
        return ""
    from redis import Redis, RedisError
    from sqlalchemy.engine import make_url

    parsed = make_url(url.replace("redis://", "postgresql://", 1))
    if parsed.host not in ("127.0.0.1", "localhost", "::1") or not parsed.database:
        sys.exit(f"refusing to empty {url}: a local Redis and a database number only")
    try:
        Redis.from_url(url, socket_connect_timeout=1).flushdb()
    except RedisError as exc:
        print(f"redis     : {url} does not answer ({exc}); in-process stand-in instead")
        return ""
    return url


def portal_env(db: Database, tmp: Path, port: int, redis_url: str = "") -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PORTAL_ENV": "development",
            "SECRET_KEY": secrets.token_hex(32),
            "DATABASE_URL": db.url,
            "STORAGE_DIR": str(tmp / "storage"),
            "REDIS_URL": redis_url,
            "MAIL_SERVER": "",
            "LOGIN_RATE_LIMIT": "1000000 per minute",
            "BASE_URL": f"http://{HOST}:{port}",
        }
    )
    env.pop("FLASK_APP", None)
    return env


def venv_bin(name: str) -> str:
    for candidate in (Path(sys.executable).parent / name, ROOT / ".venv" / "bin" / name):
        if candidate.exists():
            return str(candidate)
    sys.exit(f"{name} not found next to {sys.executable} nor in .venv/bin")


def _flask(env: dict[str, str], *args: str, timeout: int) -> float:
    """Run `flask --app portal ARGS…` to its end (exit on failure): its seconds."""
    start = time.perf_counter()
    result = subprocess.run(
        [venv_bin("flask"), "--app", "portal", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode:
        sys.exit(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - start


def migrate(env: dict[str, str]) -> float:
    return _flask(env, "db", "upgrade", timeout=300)


def rebuild_rollups(env: dict[str, str]) -> float:
    """`flask reports rebuild-rollups`: tickets seeded by plain SQL bypass the portal, which
    keeps its daily ticket counts only for the changes it makes itself."""
    return _flask(env, "reports", "rebuild-rollups", timeout=600)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn in its own session; terminate() stops exactly the process started here."""

    def __init__(
        self, env: dict[str, str], port: int, workers: int, log_path: Path, threads: int = 1
    ) -> None:
        self.port, self.log_path = port, log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in terminate()
        self.proc = subprocess.Popen(
            [
                venv_bin("gunicorn"),
                "--workers",
                str(workers),
                # More than one thread makes gunicorn use gthread workers (keep-alive).
                "--threads",
                str(threads),
                "--bind",
                f"{HOST}:{port}",
                "--chdir",
                str(ROOT),
                "--log-level",
                "warning",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_healthy(self, timeout: float = 60.0) -> float:
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            if self.proc.poll() is not None:
                sys.exit(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                status, _, _ = request("GET", self.port, "/api/health", timeout=2)
                if status == 200:
                    return time.perf_counter() - start
            except OSError:
                pass
            time.sleep(0.2)
        sys.exit(f"gunicorn not healthy after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def cpu_seconds(self) -> float | None:
        """User+system CPU of the gunicorn master and its workers so far (Linux /proc only)."""
        pids = [self.proc.pid]
        try:
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        stat = Path(f"/proc/{entry}/stat").read_text()
                    except OSError:
                        continue
                    if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                        pids.append(int(entry))
            ticks = 0
            for pid in pids:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError, IndexError):
            return None
        return ticks / os.sysconf("SC_CLK_TCK")

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # gunicorn's graceful stop of its workers
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


# --------------------------------------------------------------------------- HTTP


def request(
    method: str,
    port: int,
    path: str,
    headers: dict[str, str] | None = None,
    body: str | None = None,
    timeout: float = 30,
) -> tuple[int, http.client.HTTPMessage, str]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def _cookies(headers: http.client.HTTPMessage) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for value in headers.get_all("Set-Cookie") or []:
        jar.load(value)
    return {name: morsel.value for name, morsel in jar.items()}


def sign_in(
    port: int,
    email: str,
    password: str,
    check_path: str = "/users/",
    marker: str = 'id="users-table"',
    what: str = "the users table",
) -> str:
    """GET /login for the CSRF token, POST it; returns the Cookie header of the session,
    once `check_path` answers with `marker` in the page."""
    status, headers, body = request("GET", port, "/login")
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', body)
    if status != 200 or match is None:
        sys.exit(f"GET /login answered {status} without a csrf_token field")
    jar = _cookies(headers)
    form = urlencode({"email": email, "password": password, "csrf_token": match.group(1)})
    status, headers, body = request(
        "POST",
        port,
        "/login",
        body=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items()),
        },
    )
    jar.update(_cookies(headers))
    if status != 302 or "session" not in jar:
        sys.exit(f"POST /login answered {status}, not a redirect with a session:\n{body[:500]}")
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    status, _, body = request("GET", port, check_path, headers={"Cookie": cookie})
    if status != 200 or marker not in body:
        sys.exit(f"signed in, but GET {check_path} answered {status} without {what}")
    return cookie


@dataclass
class Scenario:
    key: str
    label: str
    path: str  # as reported; requests go to it unless `paths` is given
    headers: dict[str, str]
    # Each request picks one of these at random (e.g. one ticket page among many).
    paths: tuple[str, ...] = ()


@dataclass
class Result:
    scenario: str
    path: str
    clients: int
    seconds: float
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    connections: int
    server_cpu_ms_per_request: float | None
    client_cpu_ms_per_request: float
    loadavg_1m: float
    steal_pct: float | None = None
    error_kinds: dict[str, int] = field(default_factory=dict)


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = (len(sorted_values) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def run_scenario(
    server: Server,
    scenario: Scenario,
    clients: int,
    seconds: float,
    warmup: float,
    stop: threading.Event,
) -> Result:
    """`clients` threads, each with its own keep-alive connection, for `seconds` after
    `warmup`. Only requests started inside the measured window are counted."""
    port = server.port
    ready = threading.Barrier(clients + 1)
    window: dict[str, float] = {}
    per_thread: list[tuple[list[float], dict[str, int], int]] = []
    lock = threading.Lock()

    def client() -> None:
        latencies: list[float] = []
        errors: dict[str, int] = {}
        connections = 0
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        try:
            ready.wait(timeout=60)
        except threading.BrokenBarrierError:
            return
        start, end = window["start"], window["end"]
        pick = random.Random().choice
        try:
            while not stop.is_set():
                began = time.perf_counter()
                if began >= end:
                    break
                if conn.sock is None:
                    connections += began >= start
                path = pick(scenario.paths) if scenario.paths else scenario.path
                try:
                    conn.request("GET", path, headers=scenario.headers)
                    response = conn.getresponse()
                    response.read()
                    kind = None if response.status == 200 else str(response.status)
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    kind = type(exc).__name__
                took = time.perf_counter() - began
                if began >= start:
                    latencies.append(took)
                    if kind:
                        errors[kind] = errors.get(kind, 0) + 1
        finally:
            conn.close()
            with lock:
                per_thread.append((latencies, errors, connections))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    window["start"] = time.perf_counter() + warmup
    window["end"] = window["start"] + seconds
    ready.wait(timeout=60)
    time.sleep(max(0.0, window["start"] - time.perf_counter()))
    server_cpu, client_cpu, ticks = server.cpu_seconds(), time.process_time(), cpu_ticks()
    for thread in threads:
        # Bounded: a client stops starting requests at window end; one request times out at 30 s.
        thread.join(timeout=seconds + warmup + 60)
    elapsed = max(time.perf_counter(), window["end"]) - window["start"]
    client_cpu = time.process_time() - client_cpu
    stolen = steal_percent(ticks, cpu_ticks())
    server_end = server.cpu_seconds()
    server_cpu = None if server_cpu is None or server_end is None else server_end - server_cpu
    latencies = sorted(x for lat, _, _ in per_thread for x in lat)
    errors: dict[str, int] = {}
    for _, errs, _ in per_thread:
        for kind, n in errs.items():
            errors[kind] = errors.get(kind, 0) + n
    ms = [x * 1000 for x in latencies]
    return Result(
        scenario=scenario.label,
        path=scenario.path,
        clients=clients,
        seconds=round(elapsed, 2),
        requests=len(ms),
        errors=sum(errors.values()),
        rps=round(len(ms) / elapsed, 1),
        p50_ms=round(percentile(ms, 50), 1),
        p95_ms=round(percentile(ms, 95), 1),
        p99_ms=round(percentile(ms, 99), 1),
        max_ms=round(ms[-1], 1) if ms else float("nan"),
        connections=sum(c for _, _, c in per_thread),
        server_cpu_ms_per_request=round(server_cpu * 1000 / len(ms), 2)
        if server_cpu is not None and ms
        else None,
        client_cpu_ms_per_request=round(client_cpu * 1000 / len(ms), 2) if ms else float("nan"),
        loadavg_1m=round(os.getloadavg()[0], 2),
        steal_pct=stolen,
        error_kinds=errors,
    )


def cpu_ticks() -> list[int] | None:
    """The machine's CPU time counters (/proc/stat), or None where there are none."""
    try:
        with open("/proc/stat") as stat:
            return [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def steal_percent(before: list[int] | None, after: list[int] | None) -> float | None:
    """The share of the run's CPU time a hypervisor gave to other machines: on a shared
    virtual machine this, not the portal, can be what slows a run down."""
    if before is None or after is None or len(before) < 8 or len(after) < 8:
        return None
    spent = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(spent[:8])  # user nice system idle iowait irq softirq steal
    return round(100 * spent[7] / total, 1) if total else None


# --------------------------------------------------------------------------- report


def print_table(results: list[Result]) -> None:
    head = (
        f"{'scenario':<34} {'clients':>7} {'requests':>8} {'errors':>6} {'req/s':>7} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} {'srv cpu':>7} {'load1':>5} "
        f"{'steal':>5}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        cpu = "n/a" if r.server_cpu_ms_per_request is None else f"{r.server_cpu_ms_per_request:.1f}"
        steal = "n/a" if r.steal_pct is None else f"{r.steal_pct:.0f}%"
        print(
            f"{r.scenario:<34} {r.clients:>7} {r.requests:>8} {r.errors:>6} {r.rps:>7.1f} "
            f"{r.p50_ms:>7.1f} {r.p95_ms:>7.1f} {r.p99_ms:>7.1f} {r.max_ms:>7.1f} {cpu:>7} "
            f"{r.loadavg_1m:>5.1f} {steal:>5}"
        )
    print(
        "srv cpu = CPU ms per request of the gunicorn processes (user+system); "
        "load1 = 1-min load average at the end of the run; steal = share of the machine's "
        "CPU time the hypervisor gave to other guests during the run"
    )
    for r in results:
        if r.error_kinds:
            print(f"  errors in {r.scenario} @ {r.clients}: {r.error_kinds}")


def describe_machine(db: Database) -> tuple[int, int, tuple[float, float, float]]:
    """Print the machine, database and load-average lines; returns (cores, usable, load)."""
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    print(
        f"machine   : {cores} cores ({usable} usable), {platform.machine()}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    print(f"database  : {db.kind} {db.version}  ({db.url})")
    load_start = os.getloadavg()
    print(f"load avg  : {' '.join(f'{x:.2f}' for x in load_start)} (1/5/15 min) before the run")
    return cores, usable, load_start


def print_run_notes(
    results: list[Result], usable: int, workers: int, load_start: tuple[float, float, float]
) -> tuple[float, float, float]:
    """The lines after the table: load, reconnections, and what may inflate latencies."""
    load_end = os.getloadavg()
    print(f"load avg  : {' '.join(f'{x:.2f}' for x in load_end)} (1/5/15 min) after the run")
    reconnects = sum(r.connections for r in results)
    print(
        f"connections opened during measurement: {reconnects} for "
        f"{sum(r.requests for r in results)} requests (gunicorn sync workers close the "
        "connection after each response, so clients reconnect)"
    )
    if usable and usable < workers + 1:
        print(
            f"note: {usable} usable cores shared by {workers} gunicorn workers and the "
            "client threads: latencies include CPU contention with the load generator."
        )
    if usable and max(load_start[0], load_end[0]) > usable / 2:
        print(
            f"note: other processes were busy on this machine (1-min load up to "
            f"{max(load_start[0], load_end[0]):.1f} on {usable} cores): latencies are inflated."
        )
    return load_end


def measure_and_report(
    server: Server,
    chosen: list[Scenario],
    args: Any,
    usable: int,
    load_start: tuple[float, float, float],
    stop: threading.Event,
    target_keys: tuple[str, ...],
    target_p95_ms: float,
) -> tuple[list[Result], tuple[float, float, float]]:
    """Run every scenario at every client level, print the table, the notes and one
    target line per targeted scenario at 10 clients; returns the results and the load."""
    print(
        f"load      : {args.seconds:g} s measured (+{args.warmup:g} s warm-up) per run, "
        f"clients {args.client_levels}, keep-alive http.client per client thread"
    )
    print()
    results = [
        run_scenario(server, scenario, clients, args.seconds, args.warmup, stop)
        for clients in args.client_levels
        for scenario in chosen
    ]
    print_table(results)
    print()
    load_end = print_run_notes(results, usable, args.workers, load_start)
    labels = {s.label: s.key for s in chosen}
    for key in target_keys:
        measured = next(
            (r for r in results if labels.get(r.scenario) == key and r.clients == 10), None
        )
        if measured is None:
            continue
        verdict = "within" if measured.p95_ms < target_p95_ms else "ABOVE"
        print(
            f"target: {key} p95 under {target_p95_ms:.0f} ms at 10 clients; measured "
            f"{measured.p95_ms:.1f} ms ({verdict} target)"
        )
    return results, load_end


def client_levels(text: str) -> list[int]:
    """The --clients option: "10,50" gives [10, 50]; ValueError on anything else."""
    return [int(c) for c in text.split(",") if c.strip()]
