"""`flask audits …`: prove the audit trail is whole, and checkpoint its head."""

from __future__ import annotations

import time
from pathlib import Path

import click
from flask.cli import AppGroup

from . import checkpoints
from .runs import chain_broken_alert
from .verification import Mark, verify

audits_cli = AppGroup("audits", help="The audit trail.")


@audits_cli.command("verify")
@click.option("--all-problems", is_flag=True, help="Report every problem, not only the first.")
@click.option(
    "--checkpoints",
    "checkpoint_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Checkpoints exported earlier (a file under AUDIT_CHECKPOINT_DIR, or lines from "
    "the checkpoint emails): the database must still hold every head they saw.",
)
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
@click.option(
    "--archive",
    "archive_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Prove the audit segments retention archived (ARCHIVE_DIR, or one run's folder) "
    "from the archive files alone, instead of the database's chain.",
)
def verify_command(
    all_problems: bool, checkpoint_file: Path | None, quiet: bool, archive_dir: Path | None
) -> None:
    """Check the hash chain (and the checkpoints); exit 1 naming what is broken."""
    if archive_dir is not None:
        _verify_archive(archive_dir)
        return
    marks: list[Mark] = []
    if checkpoint_file is not None:
        try:
            marks = checkpoints.read_marks(checkpoint_file)
        except checkpoints.CheckpointFileError as exc:
            raise click.ClickException(str(exc)) from exc
    started = time.monotonic()

    def progress(checked: int, total: int) -> None:
        if not quiet:
            click.echo(f"\r{checked:,} / {total:,} events", nl=False, err=True)

    result = verify(progress=progress, stop_at_first=not all_problems, checkpoints=marks)
    if not quiet and result.checked:
        click.echo("", err=True)
    seconds = time.monotonic() - started
    if result.ok:
        against = f", {len(marks)} checkpoints hold" if marks else ""
        click.echo(
            f"OK: {result.checked} events, chain intact (last id {result.last_id}){against}; "
            f"{seconds:.1f} s."
        )
        return
    for problem in result.problems:
        click.echo(f"BROKEN: {problem}", err=True)
    chain_broken_alert(result.summary())
    raise SystemExit(1)


def _verify_archive(directory: Path) -> None:
    from ..retention.audit_segment import prove_archive

    proofs = prove_archive(directory)
    if not proofs:
        raise click.ClickException(f"{directory} holds no archived audit segment.")
    broken = False
    for proof in proofs:
        where = f"rows {proof.first_id}..{proof.last_id} ({proof.count} events) in {proof.folder}"
        if proof.ok:
            click.echo(f"OK: {where}, sealed by {proof.seal_hash}")
        for problem in proof.problems:
            broken = True
            click.echo(f"BROKEN: {where}: {problem}", err=True)
    if broken:
        raise SystemExit(1)


@audits_cli.command("checkpoint")
def checkpoint_command() -> None:
    """Checkpoint the chain's head now: the database, the file and the security contacts."""
    checkpoint = checkpoints.write_checkpoint("manual")
    if checkpoint is None:
        click.echo("No new checkpoint: the chain is empty or its head is checkpointed already.")
        return
    click.echo(
        f"Checkpoint: {checkpoint.event_count} events up to #{checkpoint.last_id} "
        f"({checkpoint.last_hash}), appended to {checkpoints.export_file()}."
    )


@audits_cli.command("run")
@click.argument("schedule", type=click.Choice(["daily", "weekly", "monthly", "quarterly"]))
def run_audits_command(schedule: str) -> None:
    """Run a schedule's audit checks for its last ended period (once per period)."""
    from ..errors import ServiceError
    from .check_services import run_schedule

    try:
        run, created = run_schedule(schedule)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    period = f"{run.period_start:%Y-%m-%d %H:%M} to {run.period_end:%Y-%m-%d %H:%M} UTC"
    if not created:
        click.echo(f"Nothing to do: {run.number} already audited {period}.")
        return
    summary = run.summary
    click.echo(
        f"{run.number} ({schedule}, {period}): {run.status}; {summary.get('new', 0)} new, "
        f"{summary.get('open', 0)} still open, {summary.get('resolved', 0)} resolved findings."
    )
    if run.status == "failed":
        raise SystemExit(1)
