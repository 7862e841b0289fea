"""Daily ticket counts kept beside the tickets, so a figure over the whole history (the
backlog at a moment) sums a few rows per day instead of scanning every ticket.

portal/reports/rollups.py keeps them in the transaction of every ticket change and
rebuilds them from the tickets on demand (`flask reports rebuild-rollups`).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db

# Tickets without a team are counted under team 0 (a key column cannot be NULL).
NO_TEAM = 0


class TicketDayCount(db.Model):
    """How many tickets of one team, priority and type were created, and how many ended
    (stopped being open), on one UTC calendar day.

    A ticket ends at the earlier of its resolved_at and closed_at, and never before it was
    created (a row written with an earlier end is counted as ending when it was created).
    A reopened ticket no longer has an end, so reopening takes its end away again.
    """

    __tablename__ = "ticket_day_counts"

    day: Mapped[date] = mapped_column(primary_key=True)
    # No foreign key: the counts outlive any team they name.
    team_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    priority: Mapped[str] = mapped_column(String(10), primary_key=True)
    type: Mapped[str] = mapped_column(String(10), primary_key=True)
    created: Mapped[int] = mapped_column(default=0)
    ended: Mapped[int] = mapped_column(default=0)
