"""`flask reports …`: exports and their cleanup from the shell, through the same
services and writer as the pages."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

reports_cli = AppGroup("reports", help="Reports: CSV exports, the monthly PDF and cleanup.")


class _FileSink:
    """csv_writer writes to a stored file; the command writes to the file it was given."""

    def __init__(self, out) -> None:  # type: ignore[no-untyped-def]
        self.out = out
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return self.out.write(data)


@reports_cli.command(
    "export", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
@click.argument("kind")
@click.option(
    "--as",
    "as_email",
    default=None,
    help="Export what this person sees, in their time zone (default: everything, in TIMEZONE).",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.pass_context
def export_command(ctx: click.Context, kind: str, as_email: str | None, output: Path) -> None:
    """Export the list KIND (tickets, changes, users) to a CSV file, with the list's filters
    given as options: `flask reports export tickets --as a@b.c --status open -o F.csv`.

    With --as, the rows are those that person sees in the list with those filters; without
    it, every row (whoever runs this already holds the database)."""
    from flask import current_app

    from ..audits import record
    from ..extensions import db
    from ..users.models import User
    from . import csv_writer
    from .sources import SOURCES

    source = SOURCES.get(kind)
    if source is None:
        raise click.BadParameter(f"choose one of {', '.join(SOURCES)}", param_hint="KIND")
    if as_email is None:
        zone = current_app.config["SETTINGS"].TIMEZONE
        user = User(id=0, role="admin", name="command line", email="", timezone=zone)
        user.is_active = True
    else:
        user = db.session.scalar(select(User).where(User.email == as_email.strip().lower()))
        if user is None or not source.allows(user):
            raise click.ClickException(f"{as_email} may not export {kind}.")
    filters = source.read_filters(_filter_args(ctx.args))
    plan = source.plan(filters, user)
    total = csv_writer.count_rows(plan)
    with (
        output.open("wb") as out,
        click.progressbar(length=total, label=f"{kind}", file=sys.stderr) as bar,
    ):
        shown = [0]

        def progress(done: int) -> None:
            bar.update(min(done, total) - shown[0])
            shown[0] = min(done, total)

        rows = csv_writer.write_csv(
            plan,
            _FileSink(out),  # type: ignore[arg-type]
            user.timezone or "UTC",
            progress,
            expected=total,
        )
        progress(rows)
    record(
        "export.written_by_command",
        None if user.id == 0 else user,
        None,
        kind=kind,
        filters=source.query_string(filters),
        rows=rows,
        output=output.name,
    )
    db.session.commit()
    click.echo(f"Wrote {rows:,} rows to {output}.")


def _filter_args(extra: list[str]) -> MultiDict[str, str]:
    """`--status open --mine` → status=open&mine=1: the list's query string as options."""
    args: MultiDict[str, str] = MultiDict()
    i = 0
    while i < len(extra):
        name = extra[i]
        if not name.startswith("--"):
            raise click.UsageError(f"unexpected argument {name!r}")
        key, _, value = name[2:].partition("=")
        if not value:
            if i + 1 < len(extra) and not extra[i + 1].startswith("--"):
                value, i = extra[i + 1], i + 1
            else:
                value = "1"
        args.add(key.replace("-", "_"), value)
        i += 1
    return args


@reports_cli.command("monthly")
@click.option("--month", required=True, help="The month, YYYY-MM.")
@click.option(
    "--as",
    "as_email",
    default=None,
    help="Build it for this person, in their time zone (default: TIMEZONE).",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True)
def monthly_command(month: str, as_email: str | None, output: Path) -> None:
    """Write the monthly operations report of --month to a PDF file (what the Monthly
    report page builds): `flask reports monthly --month 2026-10 --output F.pdf`."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from ..audits import record
    from ..extensions import db
    from ..users.models import User
    from .monthly_figures import parse_month
    from .monthly_pdf import TOTAL_STEPS, build_monthly_pdf
    from .services import zone_of
    from .sources import DOCUMENTS

    user = None
    if as_email is not None:
        user = db.session.scalar(select(User).where(User.email == as_email.strip().lower()))
        if user is None or not DOCUMENTS["monthly_report"].allows(user):
            raise click.ClickException(f"{as_email} may not run reports.")
    zone = zone_of(user) if user else _portal_zone()
    first = parse_month(month, datetime.now(ZoneInfo(zone)).date())
    if isinstance(first, str):
        raise click.BadParameter(first, param_hint="--month")
    reader = f"{user.name} <{user.email}>" if user else "the command line"
    with (
        output.open("wb") as out,
        click.progressbar(length=TOTAL_STEPS, label=f"{first:%Y-%m}", file=sys.stderr) as bar,
    ):
        shown = [0]

        def progress(done: int, total: int) -> None:
            bar.update(done - shown[0])
            shown[0] = done

        pages = build_monthly_pdf(first, zone, reader, out, progress)
    record(
        "export.written_by_command",
        user,
        None,
        kind="monthly_report",
        month=f"{first:%Y-%m}",
        pages=pages,
        output=output.name,
    )
    db.session.commit()
    click.echo(f"Wrote the {first:%Y-%m} report ({pages} pages) to {output}.")


def _portal_zone() -> str:
    from flask import current_app

    return str(current_app.config["SETTINGS"].TIMEZONE)


@reports_cli.command("rebuild-rollups")
def rebuild_rollups_command() -> None:
    """Recompute the daily ticket counts (what the backlog figure sums) from the tickets.
    The portal keeps them as tickets change; run this after loading tickets by SQL, or to
    repair them."""
    from .rollups import rebuild

    done = rebuild()
    click.echo(
        f"Rebuilt the daily ticket counts: {done.rows:,} rows (were {done.rows_before:,}) "
        f"from {done.tickets:,} tickets in {done.seconds:.2f} s."
    )


@reports_cli.command("cleanup")
def cleanup_command() -> None:
    """Expire exports past EXPORT_RETENTION_DAYS, fail those whose worker died, remove
    partial files (what the periodic job does)."""
    from .tasks import cleanup_exports

    click.echo(cleanup_exports())
