"""`flask audits …`: prove the audit trail is whole."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from .services import verify

audits_cli = AppGroup("audits", help="The audit trail.")


@audits_cli.command("verify")
@click.option("--all-problems", is_flag=True, help="Report every problem, not only the first.")
def verify_command(all_problems: bool) -> None:
    """Check the hash chain; exit 1 naming the first bad row when it is broken."""
    result = verify(stop_at_first=not all_problems)
    if result.ok:
        click.echo(f"OK: {result.checked} events, chain intact (last id {result.last_id}).")
        return
    for problem in result.problems:
        click.echo(f"BROKEN: {problem}", err=True)
    raise SystemExit(1)
