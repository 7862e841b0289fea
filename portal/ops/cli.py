"""`flask ops …`, `flask worker` and `flask scheduler`."""

from __future__ import annotations

import logging
import time

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select

from .. import jobs
from ..extensions import db
from ..users.models import User
from .demo import DEMO_ADMIN_EMAIL, seed_demo

ops_cli = AppGroup("ops", help="Operations: demo data and housekeeping.")


@ops_cli.command("seed-demo")
def seed_demo_command() -> None:
    """Create a demo admin and a few demo users when the database has no users."""
    if db.session.scalar(select(func.count()).select_from(User)):
        click.echo("Users exist already; no demo data added.")
        return
    password = seed_demo()
    click.echo("Demo accounts created. Sign in as the admin:")
    click.echo(f"  email:    {DEMO_ADMIN_EMAIL}")
    click.echo(f"  password: {password}")


@click.command("worker")
@click.option(
    "--queue",
    "queues",
    multiple=True,
    default=jobs.QUEUES,
    show_default=True,
    help="Queue to work (repeatable).",
)
@click.option("--burst", is_flag=True, help="Exit once the queues are empty.")
@with_appcontext
def worker_command(queues: tuple[str, ...], burst: bool) -> None:
    """Run an RQ worker whose jobs run inside the app context."""
    if current_app.config["SETTINGS"].jobs_inline:
        raise click.ClickException("REDIS_URL is not set: jobs run inline, no worker is needed.")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    worker = jobs.make_worker(app, list(queues))
    worker.work(burst=burst, with_scheduler=not burst, logging_level="INFO")


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the periodic jobs of portal/schedule.py on their intervals."""
    from ..schedule import PERIODIC

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.config["SETTINGS"].jobs_inline:
        _run_inline_schedule(PERIODIC)
        return
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=jobs.connection(app), logging_level="INFO")
    for entry in PERIODIC:
        scheduler.register(
            entry.func,
            queue_name=entry.queue,
            interval=entry.every_seconds,
            job_timeout=entry.timeout_seconds,
            name=entry.name,
        )
    scheduler.start()


def _run_inline_schedule(entries) -> None:  # type: ignore[no-untyped-def]
    log = logging.getLogger("portal.scheduler")
    logging.basicConfig(level=logging.INFO)
    next_run = {entry.name: 0.0 for entry in entries}
    while True:
        now = time.monotonic()
        for entry in entries:
            if now >= next_run[entry.name]:
                try:
                    result = entry.func()
                    log.info("%s: %s", entry.name, result)
                except Exception:
                    log.exception("%s failed", entry.name)
                next_run[entry.name] = now + entry.every_seconds
        time.sleep(max(1.0, min(next_run.values()) - time.monotonic()))
