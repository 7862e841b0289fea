"""Reading the scheduled audits for their pages and PDF: the runs, one run's results in
the registry's order, and the findings a run saw (new, still open) or closed (resolved).
Each page runs a fixed number of queries whatever the number of findings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort
from sqlalchemy import ColumnElement, and_, case, func, or_, select

from ..extensions import db
from ..paging import Page, paginate
from .check_models import SEVERITY_RANK, CheckResult, CheckRun, Finding
from .checks import BY_KEY, Check, checks_for

RUNS_PER_PAGE = 25
FINDINGS_PER_PAGE = 50


def get_run_or_404(run_id: int) -> CheckRun:
    run = db.session.get(CheckRun, run_id) if 0 < run_id < 2**31 else None
    if run is None:
        abort(404)
    return run


def get_finding_or_404(finding_id: int) -> Finding:
    finding = db.session.get(Finding, finding_id) if 0 < finding_id < 2**31 else None
    if finding is None:
        abort(404)
    return finding


def runs_page(schedule: str, page: int) -> Page[CheckRun]:
    stmt = select(CheckRun).order_by(CheckRun.period_start.desc(), CheckRun.id.desc())
    if schedule:
        stmt = stmt.where(CheckRun.schedule == schedule)
    return paginate(stmt, page, RUNS_PER_PAGE)


def _in_run(run: CheckRun) -> ColumnElement[bool]:
    """The findings run `run` saw, and those it closed."""
    seen = and_(Finding.first_seen_run_id <= run.id, Finding.last_seen_run_id >= run.id)
    return and_(Finding.schedule == run.schedule, or_(seen, Finding.resolved_run_id == run.id))


def _comparison(run: CheckRun) -> Any:
    return case(
        (Finding.resolved_run_id == run.id, "resolved"),
        (Finding.first_seen_run_id == run.id, "new"),
        else_="still open",
    )


@dataclass
class CheckRow:
    """One check of a run: its declaration, its result (None: not run, e.g. a check added
    since) and how its findings compare with the previous run."""

    check: Check
    result: CheckResult | None
    new: int = 0
    still_open: int = 0
    resolved: int = 0


def check_rows(run: CheckRun) -> list[CheckRow]:
    results = {
        r.check_key: r
        for r in db.session.scalars(select(CheckResult).where(CheckResult.run_id == run.id))
    }
    compared = _comparison(run).label("compared")
    counts = db.session.execute(
        select(Finding.check_key, compared, func.count())
        .where(_in_run(run))
        .group_by(Finding.check_key, compared)
    ).all()
    rows = {c.key: CheckRow(c, results.get(c.key)) for c in checks_for(run.schedule)}
    # A check removed from the registry since still shows its result.
    for key, result in results.items():
        if key not in rows and key in BY_KEY:
            rows[key] = CheckRow(BY_KEY[key], result)
    for key, how, n in counts:
        row = rows.get(key)
        if row is not None:
            attribute = "still_open" if how == "still open" else how
            setattr(row, attribute, getattr(row, attribute) + n)
    return list(rows.values())


def _ordered(run: CheckRun, check_key: str = "") -> Any:
    severity = case(SEVERITY_RANK, value=Finding.severity, else_=0)
    stmt = select(Finding, _comparison(run).label("compared")).where(_in_run(run))
    if check_key:
        stmt = stmt.where(Finding.check_key == check_key)
    return stmt.order_by(severity.desc(), Finding.check_key, Finding.id)


def findings_page(run: CheckRun, check_key: str, page: int) -> Page[Any]:
    """A page of (finding, compared) rows, the most severe first."""
    stmt = _ordered(run, check_key)
    count = select(func.count()).where(_in_run(run))
    if check_key:
        count = count.where(Finding.check_key == check_key)
    total = db.session.scalar(count) or 0
    pages = max(1, -(-total // FINDINGS_PER_PAGE))
    page = min(max(1, page), pages)
    rows = db.session.execute(
        stmt.limit(FINDINGS_PER_PAGE).offset((page - 1) * FINDINGS_PER_PAGE)
    ).all()
    return Page(list(rows), page, FINDINGS_PER_PAGE, total)


def run_findings(run: CheckRun, limit: int) -> list[Any]:
    """The first `limit` (finding, compared) rows of a run, for its PDF."""
    return list(db.session.execute(_ordered(run).limit(limit)).all())


def previous_run(run: CheckRun) -> CheckRun | None:
    return db.session.scalar(
        select(CheckRun)
        .where(CheckRun.schedule == run.schedule, CheckRun.period_start < run.period_start)
        .order_by(CheckRun.period_start.desc())
        .limit(1)
    )
