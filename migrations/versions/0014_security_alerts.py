"""security alerts, raised once per condition and window

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 09:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "security_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"],
            ["users.id"],
            name=op.f("fk_security_alerts_acknowledged_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_alerts")),
        # One alert per condition and window, whoever inserts first.
        sa.UniqueConstraint("kind", "key", "window_start", name="uq_security_alerts_condition"),
    )
    with op.batch_alter_table("security_alerts", schema=None) as batch_op:
        batch_op.create_index("ix_security_alerts_raised_at", ["raised_at"], unique=False)

    op.create_table(
        "rate_limit_hits",
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("hour", sa.DateTime(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("ip", "hour", name=op.f("pk_rate_limit_hits")),
    )
    with op.batch_alter_table("rate_limit_hits", schema=None) as batch_op:
        batch_op.create_index("ix_rate_limit_hits_hour", ["hour"], unique=False)


def downgrade():
    with op.batch_alter_table("rate_limit_hits", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_limit_hits_hour")
    op.drop_table("rate_limit_hits")

    with op.batch_alter_table("security_alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_security_alerts_raised_at")
    op.drop_table("security_alerts")
