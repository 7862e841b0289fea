"""scheduled audits: runs per schedule and period, check results, findings

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 10:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "audit_check_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule", sa.String(length=10), nullable=False),
        sa.Column("period_start", sa.DateTime(), nullable=False),
        sa.Column("period_end", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["users.id"],
            name=op.f("fk_audit_check_runs_requested_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_check_runs")),
        # A period is audited once per schedule, whoever runs it first.
        sa.UniqueConstraint("schedule", "period_start", name="uq_audit_check_runs_period"),
    )
    with op.batch_alter_table("audit_check_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_check_runs_period_start", ["period_start", "id"], unique=False
        )

    op.create_table(
        "audit_check_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("check_key", sa.String(length=60), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("failing", sa.Integer(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["audit_check_runs.id"],
            name=op.f("fk_audit_check_results_run_id_audit_check_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_check_results")),
        sa.UniqueConstraint("run_id", "check_key", name="uq_audit_check_results_check"),
    )

    op.create_table(
        "audit_findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule", sa.String(length=10), nullable=False),
        sa.Column("check_key", sa.String(length=60), nullable=False),
        sa.Column("subject_key", sa.String(length=120), nullable=False),
        sa.Column("severity", sa.String(length=6), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("recommendation", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("first_seen_run_id", sa.Integer(), nullable=False),
        sa.Column("last_seen_run_id", sa.Integer(), nullable=False),
        sa.Column("resolved_run_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.Column("accepted_by_id", sa.Integer(), nullable=True),
        sa.Column("accepted_at", sa.DateTime(), nullable=True),
        sa.Column("accepted_reason", sa.Text(), nullable=True),
        sa.Column("accepted_until", sa.DateTime(), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["first_seen_run_id"],
            ["audit_check_runs.id"],
            name=op.f("fk_audit_findings_first_seen_run_id_audit_check_runs"),
        ),
        sa.ForeignKeyConstraint(
            ["last_seen_run_id"],
            ["audit_check_runs.id"],
            name=op.f("fk_audit_findings_last_seen_run_id_audit_check_runs"),
        ),
        sa.ForeignKeyConstraint(
            ["resolved_run_id"],
            ["audit_check_runs.id"],
            name=op.f("fk_audit_findings_resolved_run_id_audit_check_runs"),
        ),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"],
            ["users.id"],
            name=op.f("fk_audit_findings_acknowledged_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["accepted_by_id"], ["users.id"], name=op.f("fk_audit_findings_accepted_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_audit_findings_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_findings")),
    )
    with op.batch_alter_table("audit_findings", schema=None) as batch_op:
        # One open episode per check and subject: what the next run matches against.
        batch_op.create_index(
            "uq_audit_findings_open_subject",
            ["check_key", "subject_key"],
            unique=True,
            sqlite_where=sa.text("resolved_run_id IS NULL"),
            postgresql_where=sa.text("resolved_run_id IS NULL"),
        )
        batch_op.create_index(
            "ix_audit_findings_last_seen", ["last_seen_run_id", "check_key"], unique=False
        )
        batch_op.create_index("ix_audit_findings_resolved_run", ["resolved_run_id"], unique=False)
        batch_op.create_index(
            "ix_audit_findings_state_severity", ["state", "severity"], unique=False
        )


def downgrade():
    with op.batch_alter_table("audit_findings", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_findings_state_severity")
        batch_op.drop_index("ix_audit_findings_resolved_run")
        batch_op.drop_index("ix_audit_findings_last_seen")
        batch_op.drop_index("uq_audit_findings_open_subject")
    op.drop_table("audit_findings")
    op.drop_table("audit_check_results")
    with op.batch_alter_table("audit_check_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_check_runs_period_start")
    op.drop_table("audit_check_runs")
