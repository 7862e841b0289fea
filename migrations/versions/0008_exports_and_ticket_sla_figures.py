"""exports: their own rows; tickets keep each SLA clock's state and business time

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 05:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('exports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('query', sa.Text(), nullable=False),
    sa.Column('scope', sa.String(length=40), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('rows_done', sa.BigInteger(), nullable=False),
    sa.Column('rows_total', sa.BigInteger(), nullable=True),
    sa.Column('file_key', sa.String(length=100), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_exports_requested_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exports')),
    sa.UniqueConstraint('job_id', name=op.f('uq_exports_job_id'))
    )
    with op.batch_alter_table('exports', schema=None) as batch_op:
        batch_op.create_index('ix_exports_requested_by_created', ['requested_by_id', 'created_at'], unique=False)
        batch_op.create_index('ix_exports_status', ['status'], unique=False)

    # Tickets filed before this revision get these on their next change or sweep;
    # `flask tickets recompute-sla` fills them in for all at once.
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('response_state', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('resolution_state', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('response_seconds', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('resolution_seconds', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('paused_seconds', sa.Integer(), nullable=True))


def downgrade():
    # A plain DROP COLUMN (SQLite 3.35+): batch mode would copy the tickets table, and the
    # search triggers of 0004 that name it break on the copy.
    for column in ('paused_seconds', 'resolution_seconds', 'response_seconds',
                   'resolution_state', 'response_state'):
        op.execute(f'ALTER TABLE tickets DROP COLUMN {column}')

    with op.batch_alter_table('exports', schema=None) as batch_op:
        batch_op.drop_index('ix_exports_status')
        batch_op.drop_index('ix_exports_requested_by_created')

    op.drop_table('exports')
