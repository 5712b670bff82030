"""Staff notifications: staff_user.email and the staff_notice table (handoff/staff_alerts.py)

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-02 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=200), nullable=True))
    op.create_table(
        "staff_notice",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event", sa.String(length=120), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("ticket_no", sa.String(length=40), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("queued_at", sa.DateTime(), nullable=True),
        sa.Column("delivery_key", sa.String(length=160), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_notice")),
        sa.UniqueConstraint("event", "recipient", name="uq_staff_notice_event_recipient"),
    )
    with op.batch_alter_table("staff_notice", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_notice_queued_at"), ["queued_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_staff_notice_ticket_no"), ["ticket_no"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("staff_notice", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_notice_ticket_no"))
        batch_op.drop_index(batch_op.f("ix_staff_notice_queued_at"))
    op.drop_table("staff_notice")
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.drop_column("email")
