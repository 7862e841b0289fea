"""`flask retention …`: what the retention policies would remove."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..timeutil import iso_utc
from . import policies

retention_cli = AppGroup("retention", help="Retention and archival of old records.")


@retention_cli.command("run")
@click.option("--dry-run", is_flag=True, help="List what would go, per kind; change nothing.")
def run_command(dry_run: bool) -> None:
    """Archive and delete the records older than their policy (--dry-run: list them)."""
    if not dry_run:
        _real_run()
        return
    total = 0
    for item in policies.due_now():
        total += item.count
        click.echo(
            f"{item.kind.key}: {item.count} would go ({item.kind.since} before "
            f"{iso_utc(item.cutoff)}, kept {item.policy.days} days)"
        )
    click.echo(f"exports: expired by reports cleanup after {policies.export_retention_days()} days")
    click.echo(f"Dry run: {total} records would go; nothing was changed.")


def _real_run() -> None:
    from .run import run_retention

    run = run_retention()
    if run.status != "done":
        raise click.ClickException(f"Retention run {run.id} failed: {run.error}")
    for kind, count in run.counts.items():
        click.echo(f"{kind}: {count} archived and deleted")
    where = f"archive {run.archive_path} (manifest sha256 {run.manifest_sha256})"
    click.echo(
        f"Retention run {run.id}: {run.removed} records; "
        + (where if run.archive_path else "nothing to archive")
    )
