"""Handoff cases (one forum topic each) and the audit log of staff actions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", Id, primary_key=True),
        sa.Column("person_id", Id, nullable=False),
        sa.Column("city", sa.String(64), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("key", sa.String(128), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column("group_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("thread_id", sa.BigInteger(), nullable=True),
        sa.Column("card_message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("claimed_at", Instant, nullable=True),
        sa.Column("closed_at", Instant, nullable=True),
        sa.Column("remind_at", Instant, nullable=True),
        sa.Column("reminders", sa.SmallInteger(), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_cases_person_id_people"), ondelete="CASCADE"
        ),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_cases_status")),
        sa.CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name=op.f("ck_cases_rating")),
    )
    op.create_index(op.f("ix_cases_person_id"), "cases", ["person_id"])
    op.create_index(
        "uq_cases_open_person",
        "cases",
        ["person_id"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index("ix_cases_topic", "cases", ["group_chat_id", "thread_id"])
    op.create_index(op.f("ix_cases_remind_at"), "cases", ["remind_at"])

    op.create_table(
        "audit",
        sa.Column("id", Id, primary_key=True),
        sa.Column("case_id", Id, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.String(128), nullable=True),
        sa.Column("created_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit")),
    )
    op.create_index(op.f("ix_audit_case_id"), "audit", ["case_id"])
    op.create_index(op.f("ix_audit_created_at"), "audit", ["created_at"])


def downgrade() -> None:
    op.drop_table("audit")
    op.drop_table("cases")
