"""retention: one policy per kind of record (seeded with the runbooks' defaults), runs

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 09:00:00

"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# The runbooks' defaults, as portal/retention/kinds.py has them (written out: a migration
# must not change when the code does).
DEFAULTS = {
    "audit_events": 3 * 365,
    "tickets": 7 * 365,
    "change_requests": 7 * 365,
    "sessions": 90,
    "sent_mail": 90,
}


def upgrade():
    policies = op.create_table(
        "retention_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["users.id"], name=op.f("fk_retention_policies_updated_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_policies")),
        sa.UniqueConstraint("kind", name=op.f("uq_retention_policies_kind")),
    )
    now = datetime.utcnow().replace(microsecond=0)  # noqa: DTZ003 (naive UTC, as every column)
    op.bulk_insert(
        policies,
        [{"kind": kind, "days": days, "updated_at": now} for kind, days in DEFAULTS.items()],
    )

    op.create_table(
        "retention_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("archive_path", sa.String(length=500), nullable=True),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_runs")),
    )
    with op.batch_alter_table("retention_runs", schema=None) as batch_op:
        batch_op.create_index("ix_retention_runs_started_at", ["started_at"], unique=False)


def downgrade():
    op.drop_table("retention_runs")
    op.drop_table("retention_policies")
