"""Policy library: validity (replaced_by, expires_on), tags, relations, the tag catalogue, the FAQ
review list, service links (faq.service_url, policy.service_url) and their link health

Revision ID: 0010
Revises: 0006
Create Date: 2026-12-01 23:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("faq", schema=None) as batch_op:
        batch_op.add_column(sa.Column("service_url", sa.String(length=500), nullable=True))
    with op.batch_alter_table("policy", schema=None) as batch_op:
        batch_op.add_column(sa.Column("service_url", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("tags_text", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("expires_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("replaced_by", sa.String(length=64), nullable=True))
    op.create_table(
        "policy_relation",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("policy_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("other_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["other_id"], ["policy.id"], name=op.f("fk_policy_relation_other_id_policy"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["policy.id"], name=op.f("fk_policy_relation_policy_id_policy"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_relation")),
        sa.UniqueConstraint("policy_id", "kind", "other_id", name=op.f("uq_policy_relation_policy_id")),
    )
    with op.batch_alter_table("policy_relation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_policy_relation_other_id"), ["other_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_policy_relation_policy_id"), ["policy_id"], unique=False)
    op.create_table(
        "tag_catalogue",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("synonyms", sa.JSON(), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_tag_catalogue")),
    )
    op.create_table(
        "faq_review",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("faq_id", sa.String(length=64), nullable=False),
        sa.Column("unit", sa.String(length=200), nullable=True),
        sa.Column("policy_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=12), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faq_review")),
    )
    with op.batch_alter_table("faq_review", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_faq_review_faq_id"), ["faq_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_faq_review_unit"), ["unit"], unique=False)
    op.create_table(
        "link_status",
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("fails", sa.Integer(), nullable=False),
        sa.Column("broken", sa.Boolean(), nullable=False),
        sa.Column("last_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("final_url", sa.String(length=500), nullable=True),
        sa.Column("checked_at", sa.DateTime(), nullable=True),
        sa.Column("ok_at", sa.DateTime(), nullable=True),
        sa.Column("broken_since", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("url", name=op.f("pk_link_status")),
    )
    with op.batch_alter_table("link_status", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_link_status_broken"), ["broken"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("link_status", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_link_status_broken"))
    op.drop_table("link_status")
    with op.batch_alter_table("faq_review", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_faq_review_unit"))
        batch_op.drop_index(batch_op.f("ix_faq_review_faq_id"))
    op.drop_table("faq_review")
    op.drop_table("tag_catalogue")
    with op.batch_alter_table("policy_relation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_relation_policy_id"))
        batch_op.drop_index(batch_op.f("ix_policy_relation_other_id"))
    op.drop_table("policy_relation")
    with op.batch_alter_table("policy", schema=None) as batch_op:
        batch_op.drop_column("replaced_by")
        batch_op.drop_column("expires_on")
        batch_op.drop_column("tags_text")
        batch_op.drop_column("tags")
        batch_op.drop_column("service_url")
    with op.batch_alter_table("faq", schema=None) as batch_op:
        batch_op.drop_column("service_url")
