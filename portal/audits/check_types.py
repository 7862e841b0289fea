"""What a check function receives and returns. Kept apart from the registry (checks.py) so
the modules of check functions and the registry can import it without a cycle."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Evidence rows kept per finding (the total is kept beside them).
EVIDENCE_ROWS = 50
# Failing subjects tracked one by one per check and run; past that, the check says how
# many failed and leaves the findings it could not see as they were (see Outcome.complete).
MAX_FINDINGS_PER_CHECK = 500


@dataclass(frozen=True)
class Context:
    """The period a run audits, [period_start, period_end) in naive UTC. Checks of a
    state (who has not signed in for 90 days) measure it at `as_of`, the period's end,
    so a run describes its period whenever it is run."""

    schedule: str
    period_start: datetime
    period_end: datetime

    @property
    def as_of(self) -> datetime:
        return self.period_end


@dataclass
class Draft:
    """One failing subject as a check saw it."""

    subject_key: str
    title: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    rows_total: int | None = None  # when more rows exist than `rows` holds
    severity: str | None = None  # the check's own unless set

    @property
    def evidence(self) -> dict[str, Any]:
        rows = self.rows[:EVIDENCE_ROWS]
        total = self.rows_total if self.rows_total is not None else len(self.rows)
        return {"rows": rows, "total": max(total, len(rows))}


@dataclass
class Outcome:
    """A check's answer: `total` objects looked at, the failing ones as drafts (at most
    MAX_FINDINGS_PER_CHECK of them) and how many failed in all."""

    total: int
    drafts: list[Draft] = field(default_factory=list)
    failing_total: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failing(self) -> int:
        return self.failing_total if self.failing_total is not None else len(self.drafts)

    @property
    def complete(self) -> bool:
        """Whether every failing subject has its draft: only then may a finding the run
        did not see be closed as passing."""
        return self.failing <= len(self.drafts)

    @property
    def passed(self) -> int:
        return max(0, self.total - self.failing)


def iso(value: datetime | None) -> str | None:
    """A stored time as evidence text (JSON holds no datetimes)."""
    return value.isoformat(timespec="seconds") if value is not None else None
