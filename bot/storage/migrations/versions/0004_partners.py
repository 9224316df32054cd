"""Partner organisations: the partner a case is with, and referrals between partners.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Cases from before keep no partner: they are with their city's default partner.
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("partner", sa.String(64), nullable=True))
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("partner", sa.String(64), nullable=True))
    op.create_table(
        "referrals",
        sa.Column("id", Id, primary_key=True),
        sa.Column("case_id", Id, nullable=False),
        sa.Column("city", sa.String(64), nullable=False),
        sa.Column("from_partner", sa.String(64), nullable=False),
        sa.Column("to_partner", sa.String(64), nullable=False),
        sa.Column("consent", sa.Boolean(), nullable=True),
        sa.Column("from_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("from_thread_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("claimed_at", Instant, nullable=True),
        sa.Column("reminded_at", Instant, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_referrals_case_id_cases"), ondelete="CASCADE"
        ),
    )
    op.create_index(op.f("ix_referrals_case_id"), "referrals", ["case_id"])
    op.create_index(op.f("ix_referrals_created_at"), "referrals", ["created_at"])


def downgrade() -> None:
    op.drop_table("referrals")
    with op.batch_alter_table("audit") as batch:
        batch.drop_column("partner")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("partner")
