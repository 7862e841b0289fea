"""job records: long jobs' own rows (who asked, progress, result file, error)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 02:52:31.031338

"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('job_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('subject_type', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('file_key', sa.String(length=100), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_job_records_requested_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_records')),
    sa.UniqueConstraint('job_id', name=op.f('uq_job_records_job_id'))
    )
    with op.batch_alter_table('job_records', schema=None) as batch_op:
        batch_op.create_index('ix_job_records_subject', ['subject_type', 'subject_id', 'created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('job_records', schema=None) as batch_op:
        batch_op.drop_index('ix_job_records_subject')

    op.drop_table('job_records')
