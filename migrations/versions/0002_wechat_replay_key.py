"""WeChat replay protection: the signed (timestamp, nonce) pair of each accepted message

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 20:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replay_key", sa.String(length=100), nullable=True))
        batch_op.create_unique_constraint("uq_inbound_message_replay_key", ["channel", "replay_key"])


def downgrade() -> None:
    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.drop_constraint("uq_inbound_message_replay_key", type_="unique")
        batch_op.drop_column("replay_key")
