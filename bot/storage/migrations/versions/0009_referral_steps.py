"""Referrals are taken step by step like transfers (a new topic, its card, the move, the notices).

``case_setup`` gets the kind ``refer``, the partner a referral goes to, and the referring caseworker's
note for the card (kept only until the card is posted: the row goes when the steps are done).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("case_setup") as batch:
        batch.add_column(sa.Column("to_partner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch.drop_constraint(op.f("ck_case_setup_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_case_setup_kind"), "kind IN ('open', 'transfer', 'refer')")


def downgrade() -> None:
    op.execute("DELETE FROM case_setup WHERE kind = 'refer'")
    with op.batch_alter_table("case_setup") as batch:
        batch.drop_constraint(op.f("ck_case_setup_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_case_setup_kind"), "kind IN ('open', 'transfer')")
        batch.drop_column("note")
        batch.drop_column("to_partner")
