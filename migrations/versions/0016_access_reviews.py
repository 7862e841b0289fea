"""access reviews: campaigns, their frozen rosters and the reminders they sent

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 09:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "access_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("reviewer_rule", sa.String(length=12), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=True),
        sa.Column("roster_hash", sa.String(length=64), nullable=False),
        sa.Column("roster_count", sa.Integer(), nullable=False),
        sa.Column("started_by_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("escalated_at", sa.DateTime(), nullable=True),
        sa.Column("completed_by_id", sa.Integer(), nullable=True),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("chain_head_id", sa.Integer(), nullable=True),
        sa.Column("chain_head_hash", sa.String(length=64), nullable=True),
        sa.Column("evidence_pdf_key", sa.String(length=80), nullable=True),
        sa.Column("evidence_csv_key", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_access_reviews_team_id_teams")
        ),
        sa.ForeignKeyConstraint(
            ["started_by_id"], ["users.id"], name=op.f("fk_access_reviews_started_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["completed_by_id"],
            ["users.id"],
            name=op.f("fk_access_reviews_completed_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_reviews")),
        # One campaign per month started by the scheduler, however often its job runs.
        sa.UniqueConstraint("period", name=op.f("uq_access_reviews_period")),
    )
    with op.batch_alter_table("access_reviews", schema=None) as batch_op:
        batch_op.create_index("ix_access_reviews_status", ["status"], unique=False)
        batch_op.create_index("ix_access_reviews_started_at", ["started_at"], unique=False)

    op.create_table(
        "access_review_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("decision", sa.String(length=12), nullable=True),
        sa.Column("new_role", sa.String(length=20), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("applied_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["access_reviews.id"],
            name=op.f("fk_access_review_items_review_id_access_reviews"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_access_review_items_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["users.id"], name=op.f("fk_access_review_items_reviewer_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["users.id"],
            name=op.f("fk_access_review_items_decided_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_review_items")),
        sa.UniqueConstraint("review_id", "user_id", name="uq_access_review_items_review_user"),
    )
    with op.batch_alter_table("access_review_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_access_review_items_reviewer", ["reviewer_id", "review_id"], unique=False
        )

    op.create_table(
        "access_review_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["access_reviews.id"],
            name=op.f("fk_access_review_reminders_review_id_access_reviews"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"],
            ["users.id"],
            name=op.f("fk_access_review_reminders_reviewer_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_review_reminders")),
        sa.UniqueConstraint(
            "review_id", "reviewer_id", "day", name="uq_access_review_reminders_once_a_day"
        ),
    )


def downgrade():
    op.drop_table("access_review_reminders")
    with op.batch_alter_table("access_review_items", schema=None) as batch_op:
        batch_op.drop_index("ix_access_review_items_reviewer")
    op.drop_table("access_review_items")
    with op.batch_alter_table("access_reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_access_reviews_started_at")
        batch_op.drop_index("ix_access_reviews_status")
    op.drop_table("access_reviews")
