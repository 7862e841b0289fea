"""Risk and the approvals it calls for. Pure functions: no database, no app.

The risk matrix: score = impact × likelihood, each rated 1 (low) to 3 (high).

    likelihood →    1        2        3
    impact 1      1 low    2 low    3 medium
    impact 2      2 low    4 medium 6 high
    impact 3      3 medium 6 high   9 high

So a score of 1–2 is low, 3–4 medium, 6–9 high (5, 7 and 8 cannot occur).

Approvals needed: low 1, medium 2, high 3 of which at least one from an admin.
An emergency change needs 1 approval to start, whatever its risk (its retrospective
review comes before it closes). A standard change from a pre-approved template
needs none. One rejection rejects, whatever has been approved so far.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from ..errors import Conflict, Forbidden
from ..security import Permission, Role, role_has

RISKS = ("low", "medium", "high")
LEVELS = (1, 2, 3)
APPROVALS_NEEDED = {"low": 1, "medium": 2, "high": 3}
ADMIN_NEEDED = {"low": False, "medium": False, "high": True}
EMERGENCY_APPROVALS = 1


class _Vote(Protocol):
    approver_id: int
    approver_role: str
    decision: str


def score(impact: int, likelihood: int) -> int:
    if impact not in LEVELS or likelihood not in LEVELS:
        raise ValueError("impact and likelihood are rated 1 to 3")
    return impact * likelihood


def risk_of(impact: int, likelihood: int) -> str:
    value = score(impact, likelihood)
    if value <= 2:
        return "low"
    if value <= 4:
        return "medium"
    return "high"


@dataclass(frozen=True)
class Requirement:
    """The approvals a change needs before it is approved."""

    approvals: int
    admin: bool

    def describe(self) -> str:
        if self.approvals == 0:
            return "no approvals (pre-approved)"
        noun = "approval" if self.approvals == 1 else "approvals"
        return f"{self.approvals} {noun}" + (", one from an admin" if self.admin else "")


def requirement(change_type: str, risk: str, pre_approved: bool = False) -> Requirement:
    if pre_approved:
        return Requirement(0, False)
    if change_type == "emergency":
        return Requirement(EMERGENCY_APPROVALS, False)
    return Requirement(APPROVALS_NEEDED[risk], ADMIN_NEEDED[risk])


@dataclass(frozen=True)
class Tally:
    approvals: int
    admin_approvals: int
    rejections: int
    missing: int  # approvals still needed, the admin one included
    admin_missing: bool

    @property
    def rejected(self) -> bool:
        return self.rejections > 0

    @property
    def approved(self) -> bool:
        return not self.rejected and self.missing == 0

    def describe_missing(self) -> str:
        """What is still needed, phrased to follow "Needs …"."""
        if self.missing == 0:
            return "nothing more"
        noun = "approval" if self.missing == 1 else "approvals"
        if self.admin_missing and self.missing == 1:
            return "1 more approval from an admin"
        if self.admin_missing:
            return f"{self.missing} more {noun} (one from an admin)"
        return f"{self.missing} more {noun}"


def tally(votes: Iterable[_Vote], needed: Requirement) -> Tally:
    """Count one round's votes against what the change needs."""
    votes = list(votes)
    approvals = [v for v in votes if v.decision == "approve"]
    admins = [v for v in approvals if v.approver_role == Role.ADMIN]
    admin_missing = needed.admin and not admins
    missing = max(needed.approvals - len(approvals), 1 if admin_missing else 0)
    return Tally(
        approvals=len(approvals),
        admin_approvals=len(admins),
        rejections=sum(1 for v in votes if v.decision == "reject"),
        missing=missing,
        admin_missing=admin_missing,
    )


def check_voter(
    voter_id: int,
    voter_role: str,
    voter_active: bool,
    requester_id: int,
    implementer_id: int | None,
    voted_ids: Iterable[int],
) -> None:
    """Raise Forbidden (403) for someone who may never vote on this change, Conflict (409)
    for a second vote in the same round.

    Separation of duties: whoever asked for a change or will carry it out never
    approves it."""
    if not voter_active or not role_has(voter_role, Permission.CHANGES_APPROVE):
        raise Forbidden("Only approvers and admins vote on change requests.")
    if voter_id == requester_id:
        raise Forbidden("You requested this change, so you cannot vote on it.")
    if implementer_id is not None and voter_id == implementer_id:
        raise Forbidden("You are implementing this change, so you cannot vote on it.")
    if voter_id in set(voted_ids):
        raise Conflict("You have already voted on this change in this round.")
