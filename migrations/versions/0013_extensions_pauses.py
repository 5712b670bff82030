"""Time limits: the ticket's limit parts (limit_days, extension_days, paused_days), the 待补正 status,
延期 requests (ticket_extension) and 补正 requests (ticket_supplement)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_OLD = "status IN ('待受理', '办理中', '已答复', '已办结')"
_NEW = "status IN ('待受理', '办理中', '待补正', '已答复', '已办结')"


def upgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("limit_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("extension_days", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("paused_days", sa.Integer(), nullable=False, server_default="0"))
        batch_op.drop_constraint(op.f("ck_ticket_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_ticket_status"), _NEW)
    op.create_table(
        "ticket_extension",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("due_before", sa.Date(), nullable=False),
        sa.Column("due_after", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "status IN ('requested', 'approved', 'refused')", name=op.f("ck_ticket_extension_status")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_ticket_extension_ticket_id_ticket"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_extension")),
    )
    with op.batch_alter_table("ticket_extension", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_extension_ticket_id"), ["ticket_id"], unique=False)
    op.create_table(
        "ticket_supplement",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("paused_on", sa.Date(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column("resume_status", sa.String(length=8), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("via", sa.String(length=10), nullable=True),
        sa.Column("resumed_at", sa.DateTime(), nullable=True),
        sa.Column("paused_days", sa.Integer(), nullable=True),
        sa.Column("due_before", sa.Date(), nullable=False),
        sa.Column("due_after", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "status IN ('waiting', 'answered', 'expired', 'resumed')", name=op.f("ck_ticket_supplement_status")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_ticket_supplement_ticket_id_ticket"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_supplement")),
    )
    with op.batch_alter_table("ticket_supplement", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_supplement_deadline"), ["deadline"], unique=False)
        batch_op.create_index(batch_op.f("ix_ticket_supplement_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_ticket_supplement_ticket_id"), ["ticket_id"], unique=False)


def downgrade() -> None:
    op.drop_table("ticket_supplement")
    op.drop_table("ticket_extension")
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ticket_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_ticket_status"), _OLD)
        batch_op.drop_column("paused_days")
        batch_op.drop_column("extension_days")
        batch_op.drop_column("limit_days")
