"""tickets: indexes on first response and resolution times, for reports and the dashboard

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 06:12:00

"""
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_tickets_first_response_at', 'tickets', ['first_response_at'])
    op.create_index('ix_tickets_resolved_at', 'tickets', ['resolved_at'])


def downgrade():
    op.drop_index('ix_tickets_resolved_at', table_name='tickets')
    op.drop_index('ix_tickets_first_response_at', table_name='tickets')
