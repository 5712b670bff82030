"""Learned phrasing suggestions and the welcome pins

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 23:34:09.782688
"""

from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "phrasing_suggestion",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("faq_id", sa.String(length=64), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("first_at", sa.DateTime(), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phrasing_suggestion")),
        sa.UniqueConstraint("faq_id", "key", name=op.f("uq_phrasing_suggestion_faq_id")),
    )
    with op.batch_alter_table("phrasing_suggestion", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_phrasing_suggestion_faq_id"), ["faq_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_phrasing_suggestion_status"), ["status"], unique=False)

    op.create_table(
        "suggestion_ref",
        sa.Column("ref", sa.String(length=120), nullable=False),
        sa.Column("suggestion_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_suggestion_ref")),
    )
    with op.batch_alter_table("suggestion_ref", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_suggestion_ref_suggestion_id"), ["suggestion_id"], unique=False)

    op.create_table(
        "welcome_pin",
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("faq_id", sa.String(length=64), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_welcome_pin")),
    )


def downgrade() -> None:
    op.drop_table("welcome_pin")
    with op.batch_alter_table("suggestion_ref", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_suggestion_ref_suggestion_id"))

    op.drop_table("suggestion_ref")
    with op.batch_alter_table("phrasing_suggestion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phrasing_suggestion_status"))
        batch_op.drop_index(batch_op.f("ix_phrasing_suggestion_faq_id"))

    op.drop_table("phrasing_suggestion")
