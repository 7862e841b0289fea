"""scheduled reports: subscriptions and one delivery per subscription and period

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 06:25:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('report_subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('report', sa.String(length=30), nullable=False),
    sa.Column('frequency', sa.String(length=10), nullable=False),
    sa.Column('filters', sa.Text(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_report_subscriptions_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_subscriptions')),
    sa.UniqueConstraint('token', name=op.f('uq_report_subscriptions_token'))
    )
    with op.batch_alter_table('report_subscriptions', schema=None) as batch_op:
        batch_op.create_index('ix_report_subscriptions_user', ['user_id', 'ended_at'], unique=False)

    op.create_table('report_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=10), nullable=False),
    sa.Column('export_id', sa.Integer(), nullable=True),
    sa.Column('emailed_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['export_id'], ['exports.id'], name=op.f('fk_report_deliveries_export_id_exports')),
    sa.ForeignKeyConstraint(['subscription_id'], ['report_subscriptions.id'], name=op.f('fk_report_deliveries_subscription_id_report_subscriptions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_deliveries')),
    sa.UniqueConstraint('subscription_id', 'period', name='uq_report_deliveries_period')
    )


def downgrade():
    op.drop_table('report_deliveries')
    with op.batch_alter_table('report_subscriptions', schema=None) as batch_op:
        batch_op.drop_index('ix_report_subscriptions_user')

    op.drop_table('report_subscriptions')
