"""Topics a case has left (closed, moved on, or erased with the person): staff writing there are told
once, and /forget finds every topic that holds the person's messages.

Topics of cases closed before this revision are added, already told (nobody is told about old ones).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ended_topics",
        sa.Column("group_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("thread_id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", Id, nullable=False),
        sa.Column("reason", sa.String(8), nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("told_at", Instant, nullable=True),
        sa.PrimaryKeyConstraint("group_chat_id", "thread_id", name=op.f("pk_ended_topics")),
        sa.CheckConstraint("reason IN ('closed', 'moved', 'erased')", name=op.f("ck_ended_topics_reason")),
    )
    op.create_index(op.f("ix_ended_topics_case_id"), "ended_topics", ["case_id"])
    op.create_index(op.f("ix_ended_topics_created_at"), "ended_topics", ["created_at"])
    op.execute(
        "INSERT INTO ended_topics (group_chat_id, thread_id, case_id, reason, created_at, told_at) "
        "SELECT group_chat_id, thread_id, MAX(id), 'closed', MAX(closed_at), MAX(closed_at) FROM cases "
        "WHERE status = 'closed' AND thread_id IS NOT NULL AND closed_at IS NOT NULL "
        "GROUP BY group_chat_id, thread_id"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ended_topics_created_at"), table_name="ended_topics")
    op.drop_index(op.f("ix_ended_topics_case_id"), table_name="ended_topics")
    op.drop_table("ended_topics")
