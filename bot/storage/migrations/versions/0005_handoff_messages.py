"""Relayed message pairs (for edits) and the steps of opening a case (for repair after a crash).

- ``handoff_messages``: each message relayed during a case and its copy's message id on the other side;
- ``case_setup``: the next step of a case being opened or transferred (topic, card, notice);
- ``turns.message_id``: which Telegram message a turn was, so an edited question is answered at most
  once more, and only when the correction changes what it is about.

Open cases from before that never got a topic are given a setup row, so the reconciler repairs them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "case_setup",
        sa.Column("case_id", Id, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("step", sa.String(8), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("lease_until", Instant, nullable=True),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("to_city", sa.String(64), nullable=True),
        sa.Column("to_thread_id", sa.BigInteger(), nullable=True),
        sa.Column("to_card_message_id", sa.BigInteger(), nullable=True),
        sa.Column("from_group_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("from_thread_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_setup")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_setup_case_id_cases"), ondelete="CASCADE"
        ),
        sa.CheckConstraint("kind IN ('open', 'transfer')", name=op.f("ck_case_setup_kind")),
        sa.CheckConstraint("step IN ('topic', 'card', 'notice')", name=op.f("ck_case_setup_step")),
    )
    op.create_table(
        "handoff_messages",
        sa.Column("id", Id, primary_key=True),
        sa.Column("case_id", Id, nullable=False),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("copy_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("copy_id", sa.BigInteger(), nullable=False),
        sa.Column("part", sa.SmallInteger(), nullable=False),
        sa.Column("broken", sa.Boolean(), nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_messages")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_handoff_messages_case_id_cases"), ondelete="CASCADE"
        ),
        sa.CheckConstraint("origin IN ('person', 'staff')", name=op.f("ck_handoff_messages_origin")),
    )
    op.create_index("ix_handoff_messages_source", "handoff_messages", ["case_id", "origin", "source_id"])
    op.create_index(op.f("ix_handoff_messages_created_at"), "handoff_messages", ["created_at"])
    with op.batch_alter_table("turns") as batch:
        batch.add_column(sa.Column("message_id", sa.BigInteger(), nullable=True))
    op.execute(
        "INSERT INTO case_setup (case_id, kind, step, attempts, created_at) "
        "SELECT id, 'open', 'topic', 0, created_at FROM cases "
        "WHERE status = 'open' AND thread_id IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("message_id")
    op.drop_table("handoff_messages")
    op.drop_table("case_setup")
