"""The durable inbox of Telegram updates (and what was sent for each).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("update_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("chat_key", sa.String(64), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("data", sa.Text(), nullable=True),
        sa.Column("sent", sa.Text(), nullable=True),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_until", Instant, nullable=True),
        sa.Column("received_at", Instant, nullable=False),
        sa.Column("done_at", Instant, nullable=True),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_inbox")),
        sa.CheckConstraint("state IN ('pending', 'done', 'failed')", name=op.f("ck_inbox_state")),
    )
    # The claim looks for the oldest pending update of each chat.
    op.create_index(
        "ix_inbox_pending",
        "inbox",
        ["chat_key", "update_id"],
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(op.f("ix_inbox_done_at"), "inbox", ["done_at"])


def downgrade() -> None:
    op.drop_table("inbox")
