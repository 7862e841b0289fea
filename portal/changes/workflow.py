"""The change lifecycle: one transition table, with what each step requires, checked in
one place.

draft → submitted → in review → approved | rejected → scheduled → implementing →
validating → completed | failed (rolled back) → closed. A rejected change goes back to
its requester and can be resubmitted; a pre-approved standard change skips review.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import Conflict
from . import risk
from .models import STATUSES, ChangeRequest


def _filled(text: str | None) -> bool:
    return bool(text and text.strip())


def _approval_tally(change: ChangeRequest) -> risk.Tally:
    needed = risk.requirement(change.type, change.risk, change.is_pre_approved)
    return risk.tally(change.current_votes, needed)


@dataclass(frozen=True)
class Need:
    """Something a step requires: `what` names it when it is missing, or `refusal` says
    why the step is not for this change at all."""

    met: Callable[[ChangeRequest], bool]
    what: Callable[[ChangeRequest], str]
    verb: str = "Add"
    refusal: str | None = None


def _need(
    met: Callable[[ChangeRequest], bool], what: str, verb: str = "Add", refusal: str | None = None
) -> Need:
    return Need(met, lambda _change: what, verb, refusal)


IMPLEMENTATION_PLAN = _need(lambda c: _filled(c.implementation_plan), "an implementation plan")
ROLLBACK_PLAN = _need(lambda c: _filled(c.rollback_plan), "a rollback plan")
SERVICES = _need(lambda c: bool(c.services), "at least one affected service")
JUSTIFICATION = _need(
    lambda c: c.type == "standard" or _filled(c.justification), "a business justification"
)
NOT_PRE_APPROVED = _need(
    lambda c: not c.is_pre_approved,
    "",
    refusal="A change made from a pre-approved standard template skips review.",
)
PRE_APPROVED = _need(
    lambda c: c.is_pre_approved,
    "",
    refusal="Only a standard change made from a pre-approved template is approved without review.",
)
APPROVALS = Need(
    lambda c: _approval_tally(c).approved,
    lambda c: _approval_tally(c).describe_missing(),
    "Get",
)
REJECTION = _need(lambda c: _approval_tally(c).rejected, "a rejection with its reason", "Record")
WINDOW = _need(
    lambda c: c.window_start is not None and c.window_end is not None, "a planned window"
)
IMPLEMENTER = _need(lambda c: c.implementer_id is not None, "an implementer", "Name")
VALIDATION = _need(lambda c: _filled(c.validation_results), "validation results")
LESSONS = _need(
    lambda c: not (c.status == "failed" or c.is_emergency) or _filled(c.lessons_learned),
    "lessons learned",
)
RETROSPECTIVE = _need(
    lambda c: not c.is_emergency or (c.review is not None and c.review.is_complete),
    "a retrospective review",
)

SUBMIT = (IMPLEMENTATION_PLAN, ROLLBACK_PLAN, SERVICES, JUSTIFICATION)
CLOSE = (LESSONS, RETROSPECTIVE)

# (from, to) → what the step requires. A move not listed here is not allowed.
TRANSITIONS: dict[tuple[str, str], tuple[Need, ...]] = {
    ("draft", "submitted"): SUBMIT,
    ("rejected", "submitted"): SUBMIT,
    ("submitted", "in_review"): (NOT_PRE_APPROVED,),
    ("submitted", "approved"): (PRE_APPROVED,),
    ("in_review", "approved"): (APPROVALS,),
    ("in_review", "rejected"): (REJECTION,),
    ("approved", "scheduled"): (WINDOW,),
    ("scheduled", "implementing"): (IMPLEMENTER,),
    ("implementing", "validating"): (),
    ("validating", "completed"): (VALIDATION,),
    ("validating", "failed"): (VALIDATION,),
    ("completed", "closed"): CLOSE,
    ("failed", "closed"): CLOSE,
}

_DOING = {
    "submitted": "submitting",
    "in_review": "sending it for review",
    "approved": "approving",
    "rejected": "rejecting",
    "scheduled": "scheduling",
    "implementing": "starting the implementation",
    "validating": "starting validation",
    "completed": "completing",
    "failed": "marking it failed",
}


def _label(status: str) -> str:
    return status.replace("_", " ")


def _doing(change: ChangeRequest, target: str) -> str:
    if target != "closed":
        return _DOING[target]
    kinds = [
        k
        for k, on in (("failed", change.status == "failed"), ("emergency", change.is_emergency))
        if on
    ]
    if not kinds:
        return "closing"
    article = "an" if kinds[0] == "emergency" else "a"
    return f"closing {article} {' '.join(kinds)} change"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def allowed_moves(status: str) -> list[str]:
    targets = {to for (frm, to) in TRANSITIONS if frm == status}
    return [s for s in STATUSES if s in targets]


def missing(change: ChangeRequest, target: str) -> list[Need]:
    """The requirements of the step to `target` that `change` does not meet yet."""
    return [need for need in TRANSITIONS.get((change.status, target), ()) if not need.met(change)]


def check_allowed(status: str, target: str) -> None:
    """Raise Conflict when the table has no step from `status` to `target` at all."""
    if target not in STATUSES:
        raise Conflict(f"“{target}” is not a change status.")
    if (status, target) not in TRANSITIONS:
        allowed = ", ".join(_label(s) for s in allowed_moves(status)) or "none"
        raise Conflict(
            f"A change cannot move from {_label(status)} to {_label(target)}. "
            f"Allowed from here: {allowed}."
        )


def check_transition(change: ChangeRequest, target: str) -> None:
    """Raise Conflict (HTTP 409) when the table does not allow the move, naming what the
    step still needs ("Add a rollback plan before submitting.")."""
    check_allowed(change.status, target)
    unmet = missing(change, target)
    if unmet:
        refusal = next((need.refusal for need in unmet if need.refusal), None)
        if refusal:
            raise Conflict(refusal)
        verb = unmet[0].verb
        what = _join([need.what(change) for need in unmet])
        raise Conflict(f"{verb} {what} before {_doing(change, target)}.")
