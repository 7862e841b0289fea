"""ticket_day_counts: tickets created and ended per UTC day, team, priority and type

Filled from the tickets already there; and an index on tickets.closed_at, which the
backlog at a moment reads for the part of its day the counts do not cover.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-22 12:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# What portal/reports/rollups.py rebuild() computes, written out (a migration must not
# change when the code does). A ticket ends at the earlier of resolved_at and closed_at,
# never before it was created; no team counts as team 0.
EARLIER = """CASE WHEN resolved_at IS NULL THEN closed_at
         WHEN closed_at IS NULL OR resolved_at <= closed_at THEN resolved_at
         ELSE closed_at END"""
ENDED = f"CASE WHEN {EARLIER} < created_at THEN created_at ELSE {EARLIER} END"
FILL = """
INSERT INTO ticket_day_counts (day, team_id, priority, type, created, ended)
SELECT day, team_id, priority, type, sum(created), sum(ended)
FROM (
    SELECT {created_day} AS day, coalesce(team_id, 0) AS team_id, priority, type,
           1 AS created, 0 AS ended
    FROM tickets
    UNION ALL
    SELECT {ended_day}, coalesce(team_id, 0), priority, type, 0, 1
    FROM tickets
    WHERE resolved_at IS NOT NULL OR closed_at IS NOT NULL
) AS counted
GROUP BY day, team_id, priority, type
"""


def _fill_sql(dialect: str) -> str:
    if dialect == "sqlite":  # dates are 'YYYY-MM-DD' text there, as date() gives them
        days = {"created_day": "date(created_at)", "ended_day": f"date({ENDED})"}
    else:
        days = {"created_day": "CAST(created_at AS DATE)", "ended_day": f"CAST({ENDED} AS DATE)"}
    return FILL.format(**days)


def upgrade():
    op.create_table(
        "ticket_day_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("team_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("ended", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "team_id", "priority", "type", name=op.f("pk_ticket_day_counts")
        ),
    )
    op.execute(_fill_sql(op.get_bind().dialect.name))
    op.create_index("ix_tickets_closed_at", "tickets", ["closed_at"])


def downgrade():
    op.drop_index("ix_tickets_closed_at", table_name="tickets")
    op.drop_table("ticket_day_counts")
