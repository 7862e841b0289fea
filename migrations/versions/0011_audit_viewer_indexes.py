"""audit_events: indexes for the audit log viewer's filters, each ending in the id

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 09:00:00

"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    # (action, id) and (target_type, target_id, id) take over from the shorter indexes:
    # they answer the same lookups and also give a filtered page in id order.
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_action")
        batch_op.drop_index("ix_audit_events_target")
        batch_op.create_index("ix_audit_events_action_id", ["action", "id"], unique=False)
        batch_op.create_index(
            "ix_audit_events_target_id", ["target_type", "target_id", "id"], unique=False
        )
        batch_op.create_index("ix_audit_events_ip_id", ["ip", "id"], unique=False)


def downgrade():
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_ip_id")
        batch_op.drop_index("ix_audit_events_target_id")
        batch_op.drop_index("ix_audit_events_action_id")
        batch_op.create_index("ix_audit_events_target", ["target_type", "target_id"], unique=False)
        batch_op.create_index("ix_audit_events_action", ["action"], unique=False)
