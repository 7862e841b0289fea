"""change requests: services, freezes, standard templates, votes, history, reminders

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 02:25:05.538216

"""
import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('freeze_periods',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('ends_at', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_freeze_periods_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_freeze_periods'))
    )
    with op.batch_alter_table('freeze_periods', schema=None) as batch_op:
        batch_op.create_index('ix_freeze_periods_window', ['starts_at', 'ends_at'], unique=False)

    op.create_table('services',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_services_owner_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_services')),
    sa.UniqueConstraint('name', name=op.f('uq_services_name'))
    )
    op.create_table('standard_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('implementation_plan', sa.Text(), nullable=False),
    sa.Column('rollback_plan', sa.Text(), nullable=False),
    sa.Column('impact', sa.Integer(), nullable=False),
    sa.Column('likelihood', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_standard_templates_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_standard_templates')),
    sa.UniqueConstraint('name', name=op.f('uq_standard_templates_name'))
    )
    op.create_table('change_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=10), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('justification', sa.Text(), nullable=False),
    sa.Column('success_criteria', sa.Text(), nullable=False),
    sa.Column('impact', sa.Integer(), nullable=False),
    sa.Column('likelihood', sa.Integer(), nullable=False),
    sa.Column('risk', sa.String(length=6), nullable=False),
    sa.Column('implementation_plan', sa.Text(), nullable=False),
    sa.Column('rollback_plan', sa.Text(), nullable=False),
    sa.Column('window_start', sa.DateTime(), nullable=True),
    sa.Column('window_end', sa.DateTime(), nullable=True),
    sa.Column('requester_id', sa.Integer(), nullable=False),
    sa.Column('implementer_id', sa.Integer(), nullable=True),
    sa.Column('template_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('approval_round', sa.Integer(), nullable=False),
    sa.Column('rejection_reason', sa.Text(), nullable=True),
    sa.Column('freeze_reason', sa.Text(), nullable=True),
    sa.Column('validation_results', sa.Text(), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.Column('lessons_learned', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('scheduled_at', sa.DateTime(), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['implementer_id'], ['users.id'], name=op.f('fk_change_requests_implementer_id_users')),
    sa.ForeignKeyConstraint(['requester_id'], ['users.id'], name=op.f('fk_change_requests_requester_id_users')),
    sa.ForeignKeyConstraint(['template_id'], ['standard_templates.id'], name=op.f('fk_change_requests_template_id_standard_templates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_requests'))
    )
    with op.batch_alter_table('change_requests', schema=None) as batch_op:
        batch_op.create_index('ix_change_requests_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_change_requests_implementer_status', ['implementer_id', 'status'], unique=False)
        batch_op.create_index('ix_change_requests_requester_created', ['requester_id', 'created_at'], unique=False)
        batch_op.create_index('ix_change_requests_risk_status', ['risk', 'status'], unique=False)
        batch_op.create_index('ix_change_requests_status_window_start', ['status', 'window_start'], unique=False)
        batch_op.create_index('ix_change_requests_window', ['window_start', 'window_end'], unique=False)

    op.create_table('standard_template_services',
    sa.Column('template_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_standard_template_services_service_id_services'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['template_id'], ['standard_templates.id'], name=op.f('fk_standard_template_services_template_id_standard_templates'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('template_id', 'service_id', name=op.f('pk_standard_template_services'))
    )
    op.create_table('change_conflict_acks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('change_id', sa.Integer(), nullable=False),
    sa.Column('other_change_id', sa.Integer(), nullable=False),
    sa.Column('window_start', sa.DateTime(), nullable=False),
    sa.Column('window_end', sa.DateTime(), nullable=False),
    sa.Column('other_window_start', sa.DateTime(), nullable=False),
    sa.Column('other_window_end', sa.DateTime(), nullable=False),
    sa.Column('services', sa.String(length=500), nullable=False),
    sa.Column('acknowledged_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['acknowledged_by_id'], ['users.id'], name=op.f('fk_change_conflict_acks_acknowledged_by_id_users')),
    sa.ForeignKeyConstraint(['change_id'], ['change_requests.id'], name=op.f('fk_change_conflict_acks_change_id_change_requests'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['other_change_id'], ['change_requests.id'], name=op.f('fk_change_conflict_acks_other_change_id_change_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_conflict_acks'))
    )
    with op.batch_alter_table('change_conflict_acks', schema=None) as batch_op:
        batch_op.create_index('ix_change_conflict_acks_change_id', ['change_id', 'id'], unique=False)

    op.create_table('change_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('change_id', sa.Integer(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('field', sa.String(length=30), nullable=False),
    sa.Column('old_value', sa.Text(), nullable=True),
    sa.Column('new_value', sa.Text(), nullable=True),
    sa.Column('reason', sa.String(length=1000), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_change_history_actor_id_users')),
    sa.ForeignKeyConstraint(['change_id'], ['change_requests.id'], name=op.f('fk_change_history_change_id_change_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_history'))
    )
    with op.batch_alter_table('change_history', schema=None) as batch_op:
        batch_op.create_index('ix_change_history_change_id', ['change_id', 'id'], unique=False)

    op.create_table('change_reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('change_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('window_start', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['change_id'], ['change_requests.id'], name=op.f('fk_change_reminders_change_id_change_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_reminders')),
    sa.UniqueConstraint('change_id', 'kind', 'window_start', name=op.f('uq_change_reminders_change_id'))
    )
    op.create_table('change_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('change_id', sa.Integer(), nullable=False),
    sa.Column('findings', sa.Text(), nullable=False),
    sa.Column('emergency_justified', sa.Boolean(), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['change_id'], ['change_requests.id'], name=op.f('fk_change_reviews_change_id_change_requests'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reviewer_id'], ['users.id'], name=op.f('fk_change_reviews_reviewer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_reviews')),
    sa.UniqueConstraint('change_id', name=op.f('uq_change_reviews_change_id'))
    )
    op.create_table('change_services',
    sa.Column('change_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['change_id'], ['change_requests.id'], name=op.f('fk_change_services_change_id_change_requests'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_change_services_service_id_services')),
    sa.PrimaryKeyConstraint('change_id', 'service_id', name=op.f('pk_change_services'))
    )
    with op.batch_alter_table('change_services', schema=None) as batch_op:
        batch_op.create_index('ix_change_services_service_id', ['service_id'], unique=False)

    op.create_table('change_votes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('change_id', sa.Integer(), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('approver_id', sa.Integer(), nullable=False),
    sa.Column('decision', sa.String(length=7), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('approver_role', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['approver_id'], ['users.id'], name=op.f('fk_change_votes_approver_id_users')),
    sa.ForeignKeyConstraint(['change_id'], ['change_requests.id'], name=op.f('fk_change_votes_change_id_change_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_votes')),
    sa.UniqueConstraint('change_id', 'round', 'approver_id', name=op.f('uq_change_votes_change_id'))
    )
    with op.batch_alter_table('change_votes', schema=None) as batch_op:
        batch_op.create_index('ix_change_votes_approver_created', ['approver_id', 'created_at'], unique=False)

    op.create_table('change_tickets',
    sa.Column('change_id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['change_id'], ['change_requests.id'], name=op.f('fk_change_tickets_change_id_change_requests'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_change_tickets_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('change_id', 'ticket_id', name=op.f('pk_change_tickets'))
    )
    with op.batch_alter_table('change_tickets', schema=None) as batch_op:
        batch_op.create_index('ix_change_tickets_ticket_id', ['ticket_id'], unique=False)


def downgrade():
    with op.batch_alter_table('change_tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_change_tickets_ticket_id')

    op.drop_table('change_tickets')
    with op.batch_alter_table('change_votes', schema=None) as batch_op:
        batch_op.drop_index('ix_change_votes_approver_created')

    op.drop_table('change_votes')
    with op.batch_alter_table('change_services', schema=None) as batch_op:
        batch_op.drop_index('ix_change_services_service_id')

    op.drop_table('change_services')
    op.drop_table('change_reviews')
    op.drop_table('change_reminders')
    with op.batch_alter_table('change_history', schema=None) as batch_op:
        batch_op.drop_index('ix_change_history_change_id')

    op.drop_table('change_history')
    with op.batch_alter_table('change_conflict_acks', schema=None) as batch_op:
        batch_op.drop_index('ix_change_conflict_acks_change_id')

    op.drop_table('change_conflict_acks')
    op.drop_table('standard_template_services')
    with op.batch_alter_table('change_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_change_requests_window')
        batch_op.drop_index('ix_change_requests_status_window_start')
        batch_op.drop_index('ix_change_requests_risk_status')
        batch_op.drop_index('ix_change_requests_requester_created')
        batch_op.drop_index('ix_change_requests_implementer_status')
        batch_op.drop_index('ix_change_requests_created_at')

    op.drop_table('change_requests')
    op.drop_table('standard_templates')
    op.drop_table('services')
    with op.batch_alter_table('freeze_periods', schema=None) as batch_op:
        batch_op.drop_index('ix_freeze_periods_window')

    op.drop_table('freeze_periods')