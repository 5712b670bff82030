"""专题 cases opened when the questions of one topic concentrate (special_case)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "special_case",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("no", sa.String(length=20), nullable=False),
        sa.Column("unit", sa.String(length=200), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("representative", sa.Text(), nullable=False),
        sa.Column("samples", sa.JSON(), nullable=False),
        sa.Column("askers", sa.Integer(), nullable=False),
        sa.Column("questions", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=12), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("closed_by", sa.String(length=100), nullable=True),
        sa.Column("emailed_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_special_case_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_special_case")),
        sa.UniqueConstraint("no", name=op.f("uq_special_case_no")),
    )
    with op.batch_alter_table("special_case", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_special_case_opened_at"), ["opened_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_special_case_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_special_case_unit"), ["unit"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("special_case", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_special_case_unit"))
        batch_op.drop_index(batch_op.f("ix_special_case_status"))
        batch_op.drop_index(batch_op.f("ix_special_case_opened_at"))
    op.drop_table("special_case")
