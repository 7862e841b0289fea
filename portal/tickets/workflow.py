"""The ticket status workflow: one transition table, checked in one place."""

from __future__ import annotations

from ..errors import Conflict

# new → assigned → in progress ⇄ pending → resolved → closed, with reopen.
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"assigned", "in_progress", "pending", "resolved"}),
    "assigned": frozenset({"new", "in_progress", "pending", "resolved"}),
    "in_progress": frozenset({"assigned", "pending", "resolved"}),
    "pending": frozenset({"in_progress", "resolved"}),
    "resolved": frozenset({"closed", "in_progress"}),
    "closed": frozenset({"in_progress"}),
}
REOPEN_FROM = frozenset({"resolved", "closed"})


def allowed_moves(status: str) -> list[str]:
    order = ("new", "assigned", "in_progress", "pending", "resolved", "closed")
    return [s for s in order if s in TRANSITIONS.get(status, frozenset())]


def check_transition(current: str, target: str) -> None:
    """Raise Conflict (HTTP 409) naming the move when the table does not allow it."""
    if target not in TRANSITIONS:
        raise Conflict(f"“{target}” is not a ticket status.")
    if target not in TRANSITIONS.get(current, frozenset()):
        allowed = ", ".join(allowed_moves(current)) or "none"
        raise Conflict(
            f"A ticket cannot move from {current.replace('_', ' ')} to "
            f"{target.replace('_', ' ')}. Allowed from here: {allowed.replace('_', ' ')}."
        )
