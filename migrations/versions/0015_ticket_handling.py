"""Ticket handling: merged duplicates (status 已合并, ticket.merged_into)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_OLD = "status IN ('待受理', '办理中', '待补正', '已答复', '已办结')"  # as 0013 left it
_NEW = "status IN ('待受理', '办理中', '待补正', '已答复', '已办结', '已合并')"


def upgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merged_into", sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f("ix_ticket_merged_into"), ["merged_into"], unique=False)
        batch_op.drop_constraint(batch_op.f("ck_ticket_status"), type_="check")
        batch_op.create_check_constraint("status", _NEW)


def downgrade() -> None:
    op.execute("UPDATE ticket SET status = '已办结' WHERE status = '已合并'")
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_ticket_status"), type_="check")
        batch_op.create_check_constraint("status", _OLD)
        batch_op.drop_index(batch_op.f("ix_ticket_merged_into"))
        batch_op.drop_column("merged_into")
