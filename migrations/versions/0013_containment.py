"""blocked addresses and compromised accounts

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 09:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "ip_blocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(length=43), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("lifted_at", sa.DateTime(), nullable=True),
        sa.Column("lifted_by_id", sa.Integer(), nullable=True),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_ip_blocks_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["lifted_by_id"], ["users.id"], name=op.f("fk_ip_blocks_lifted_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ip_blocks")),
    )
    with op.batch_alter_table("ip_blocks", schema=None) as batch_op:
        batch_op.create_index("ix_ip_blocks_active", ["lifted_at", "expires_at"], unique=False)

    # Plain ALTER TABLE (SQLite has had ADD and DROP COLUMN since 3.35): a batch
    # operation would copy the users table and lose its expression index on lower(name).
    op.add_column("users", sa.Column("compromised_at", sa.DateTime(), nullable=True))


def downgrade():
    op.drop_column("users", "compromised_at")

    with op.batch_alter_table("ip_blocks", schema=None) as batch_op:
        batch_op.drop_index("ix_ip_blocks_active")

    op.drop_table("ip_blocks")
