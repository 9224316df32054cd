"""Usage counts for the city insights report: one row per question or 👍/👎, without text.

- ``usage``: city, language, question key, what happened (answered, "did you mean", not answered, a
  vote…), when, and a pseudonym: a random number standing for the person, so that a report can count
  how many different people a figure rests on (and hide it when they are fewer than k);
- ``usage_people``: which person a pseudonym belongs to. It goes with the person (``/forget``, or
  inactivity): the usage rows stay and can no longer be tied to anyone.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "usage_people",
        sa.Column("person_id", Id, nullable=False),
        sa.Column("pseudonym", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_usage_people")),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_usage_people_person_id_people"), ondelete="CASCADE"
        ),
        sa.UniqueConstraint("pseudonym", name=op.f("uq_usage_people_pseudonym")),
    )
    op.create_table(
        "usage",
        sa.Column("id", Id, nullable=False),
        sa.Column("city", sa.String(64), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("key", sa.String(128), nullable=True),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("pseudonym", sa.BigInteger(), nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage")),
    )
    op.create_index(op.f("ix_usage_created_at"), "usage", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_usage_created_at"), table_name="usage")
    op.drop_table("usage")
    op.drop_table("usage_people")
