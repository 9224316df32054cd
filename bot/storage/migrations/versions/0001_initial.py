"""People, recent conversation turns, anonymous feedback and unanswered questions.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", Id, primary_key=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("language", sa.String(2), nullable=True),
        sa.Column("city", sa.String(64), nullable=True),
        sa.Column("consent_at", Instant, nullable=True),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("last_seen_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
        sa.UniqueConstraint("chat_id", name=op.f("uq_people_chat_id")),
    )
    op.create_index(op.f("ix_people_last_seen_at"), "people", ["last_seen_at"])

    op.create_table(
        "turns",
        sa.Column("id", Id, primary_key=True),
        sa.Column("person_id", Id, nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("key", sa.String(128), nullable=True),
        sa.Column("created_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_turns")),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_turns_person_id_people"), ondelete="CASCADE"
        ),
        sa.CheckConstraint("role IN ('user', 'bot', 'staff')", name=op.f("ck_turns_role")),
    )
    op.create_index("ix_turns_person_id_id", "turns", ["person_id", "id"])
    op.create_index(op.f("ix_turns_created_at"), "turns", ["created_at"])

    op.create_table(
        "feedback",
        sa.Column("id", Id, primary_key=True),
        sa.Column("city", sa.String(64), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("helpful", sa.Boolean(), nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )

    op.create_table(
        "unanswered",
        sa.Column("id", Id, primary_key=True),
        sa.Column("city", sa.String(64), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("text", sa.String(500), nullable=False),
        sa.Column("key", sa.String(128), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unanswered")),
    )
    op.create_index(op.f("ix_unanswered_created_at"), "unanswered", ["created_at"])


def downgrade() -> None:
    op.drop_table("unanswered")
    op.drop_table("feedback")
    op.drop_table("turns")
    op.drop_table("people")
