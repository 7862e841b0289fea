"""ticket list: team + priority + status index

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 01:10:00

"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_tickets_team_priority_status", "tickets", ["team_id", "priority", "status"])


def downgrade():
    op.drop_index("ix_tickets_team_priority_status", table_name="tickets")
