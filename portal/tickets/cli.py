"""`flask tickets …`: demo volume and the periodic sweep, from the shell."""

from __future__ import annotations

import click
from flask.cli import AppGroup

tickets_cli = AppGroup("tickets", help="Tickets: demo volume data and the periodic sweep.")


@tickets_cli.command("demo")
@click.option(
    "--count",
    type=click.IntRange(1, 10_000_000),
    default=1000,
    show_default=True,
    help="Tickets to add.",
)
@click.option("--seed", type=int, default=None, help="Random seed, for the same data again.")
def demo_command(count: int, seed: int | None) -> None:
    """Add COUNT realistic tickets filed over the last 90 days, with their replies,
    field history and SLA events as the services would have left them (and demo
    requesters and agents, who cannot sign in, when there are few).

    This is seeding, not anyone's action: no audit events are written and no email is
    sent. Meant for development and load tests, not for a production database.
    """
    from .demo import DemoSummary, seed_tickets

    step, shown = max(count // 20, 1), [0]

    def report(progress: DemoSummary) -> None:
        # About twenty lines whatever the count: every batch would be 500 lines for 1M.
        if progress.tickets >= shown[0] + step or progress.tickets == count:
            shown[0] = progress.tickets
            click.echo(
                f"  {progress.tickets:>9,} / {count:,} tickets  "
                f"{progress.seconds:6.1f} s  ({progress.per_second:,.0f}/s)"
            )

    summary = seed_tickets(count, seed, progress=report)
    statuses = ", ".join(f"{k} {v:,}" for k, v in sorted(summary.by_status.items()))
    click.echo(
        f"Added {summary.tickets:,} tickets in {summary.seconds:.1f} s "
        f"({summary.per_second:,.0f} tickets/s): {summary.replies:,} replies, "
        f"{summary.changes:,} field changes, {summary.sla_events:,} SLA events, "
        f"{summary.warnings:,} SLA warnings, {summary.reviews:,} incident reviews; "
        f"{summary.users_created:,} demo users created."
    )
    click.echo(f"Statuses: {statuses}.")


@tickets_cli.command("sweep")
def sweep_command() -> None:
    """Run the periodic ticket sweep once: SLA states and warnings, auto-resolve, auto-close."""
    from .sweep import run_sweep

    click.echo(run_sweep().summary())


@tickets_cli.command("recompute-sla")
def recompute_sla_command() -> None:
    """Replay every ticket's SLA clocks and store their due times, states and figures
    (after an upgrade that added figures, or a calendar fixed by hand in the database)."""
    from .sla import recompute_all

    done = recompute_all(progress=lambda n: click.echo(f"  {n:,} tickets"))
    click.echo(f"Recomputed the SLA figures of {done:,} tickets.")
