"""Sensitive words; ticket category and flag reason (the conversation issue)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sensitive_word",
        sa.Column("word", sa.String(length=50), nullable=False),
        sa.Column("added_by", sa.String(length=100), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("word", name=op.f("pk_sensitive_word")),
    )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("category", sa.String(length=8), server_default="咨询", nullable=False))
        batch_op.add_column(sa.Column("flag_reason", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_column("flag_reason")
        batch_op.drop_column("category")
    op.drop_table("sensitive_word")
