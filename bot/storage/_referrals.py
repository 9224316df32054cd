"""Referrals between partner organisations: ``storage.referrals``.

A referral moves an open case to another partner's staff group (one conditional UPDATE of the case, its
audit entry and the referral row, in one transaction), then records the person's consent to share their
conversation, when the other partner claimed it, and its reminders. Nothing personal is kept: partner
ids, the city, times and the consent.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ._cases import CaseStore
from ._database import Database, aware, changed
from ._models import AuditEntry, Case, Person, Referral
from ._records import CaseData, ReferralData, record
from ._retry import units_of_work

__all__ = ["ReferralStore"]

_COLUMNS = [getattr(Referral, field.name) for field in dataclasses.fields(ReferralData)]


@units_of_work  # a database briefly away or locked: each method is retried, bounded
class ReferralStore:
    """Refer a case to another partner; the person's consent; claimed; reminders."""

    def __init__(self, db: Database, cases: CaseStore) -> None:
        self._db = db
        self._cases = cases

    async def refer(
        self,
        case: CaseData,
        *,
        from_partner: str,
        to_partner: str,
        group_chat_id: int,
        thread_id: int,
        card_message_id: int | None,
        remind_at: datetime | None,
        actor_id: int,
    ) -> tuple[CaseData, ReferralData] | None:
        """Move the open ``case`` (as the caller saw it: still in its topic) to ``to_partner``'s group,
        unassigned, and record the referral; None when the case was closed or moved meanwhile."""
        now = self._db.clock()
        moved = {
            "partner": to_partner,
            "group_chat_id": group_chat_id,
            "thread_id": thread_id,
            "card_message_id": card_message_id,
            "owner_id": None,
            "claimed_at": None,
            "remind_at": None if remind_at is None else aware(remind_at, "remind_at"),
            "reminders": 0,
        }
        still = (
            Case.status == "open",
            Case.group_chat_id == case.group_chat_id,
            Case.thread_id == case.thread_id,
        )
        async with self._db.session() as session, session.begin():
            if not await self._cases._change(
                session, case.id, still, moved, "refer", actor_id, to_partner, now=now
            ):
                return None
            row = Referral(
                case_id=case.id,
                city=case.city,
                from_partner=from_partner,
                to_partner=to_partner,
                consent=None,
                from_chat_id=case.group_chat_id,
                from_thread_id=case.thread_id,
                created_at=now,
            )
            session.add(row)
            await session.flush()
            referred = await self._cases._one(session, Case.id == case.id)
            referral = await self._get(session, row.id)
        assert referred is not None and referral is not None
        return referred, referral

    async def _get(self, session: AsyncSession, referral_id: int) -> ReferralData | None:
        row = (await session.execute(select(*_COLUMNS).where(Referral.id == referral_id))).one_or_none()
        return None if row is None else record(ReferralData, row)

    async def get(self, referral_id: int) -> ReferralData | None:
        async with self._db.session() as session, session.begin():
            return await self._get(session, referral_id)

    async def of_case(self, case_id: int) -> list[ReferralData]:
        """The case's referrals, oldest first."""
        stmt = select(*_COLUMNS).where(Referral.case_id == case_id).order_by(Referral.id)
        async with self._db.session() as session, session.begin():
            return [record(ReferralData, row) for row in (await session.execute(stmt)).all()]

    async def withheld(self, case_id: int) -> bool:
        """The case's latest referral has no yes from the person: its conversation stays with the
        partners that had it (a later transfer or referral carries only topic, language and city)."""
        stmt = select(Referral.consent).where(Referral.case_id == case_id).order_by(Referral.id.desc())
        async with self._db.session() as session, session.begin():
            consent = (await session.execute(stmt.limit(1))).one_or_none()
        return consent is not None and consent.consent is not True

    async def answer(self, referral_id: int, chat_id: int, consent: bool) -> ReferralData | None:
        """The person's answer (only the first counts, only for a referral of their own case)."""
        now = self._db.clock()
        person_id = select(Person.id).where(Person.chat_id == chat_id).scalar_subquery()
        theirs = select(Case.id).where(Case.person_id == person_id).scalar_subquery()
        stmt = (
            update(Referral)
            .where(Referral.id == referral_id, Referral.consent.is_(None), Referral.case_id == theirs)
            .values(consent=consent)
        )
        async with self._db.session() as session, session.begin():
            if await changed(session, stmt) != 1:
                return None
            referral = await self._get(session, referral_id)
            assert referral is not None
            session.add(
                AuditEntry(
                    case_id=referral.case_id,
                    action="consent",
                    detail="yes" if consent else "no",
                    created_at=now,
                    partner=referral.to_partner,
                )
            )
            return referral

    async def claimed(self, case_id: int, partner: str) -> list[ReferralData]:
        """``partner`` claimed the case: its referrals to that partner not claimed before are now."""
        now = self._db.clock()
        waiting = (Referral.case_id == case_id, Referral.to_partner == partner, Referral.claimed_at.is_(None))
        async with self._db.session() as session, session.begin():
            ids = list(await session.scalars(select(Referral.id).where(*waiting)))
            done = []
            for referral_id in ids:
                stmt = update(Referral).where(Referral.id == referral_id, *waiting[2:]).values(claimed_at=now)
                if await changed(session, stmt) == 1:
                    done.append(referral_id)
            rows = await session.execute(select(*_COLUMNS).where(Referral.id.in_(done)).order_by(Referral.id))
            return [record(ReferralData, row) for row in rows.all()]

    async def due(self, now: datetime, after: timedelta) -> list[ReferralData]:
        """Referrals still waiting for the other partner (the case open and with it, unclaimed) whose
        last reminder, or the referral itself, is ``after`` old."""
        since = func.coalesce(Referral.reminded_at, Referral.created_at)
        stmt = (
            select(*_COLUMNS)
            .join(Case, Case.id == Referral.case_id)
            .where(
                Referral.claimed_at.is_(None),
                Case.status == "open",
                Case.partner == Referral.to_partner,
                Case.owner_id.is_(None),
                since <= aware(now, "now") - after,
            )
            .order_by(Referral.id)
        )
        async with self._db.session() as session, session.begin():
            return [record(ReferralData, row) for row in (await session.execute(stmt)).all()]

    async def reminded(self, referral: ReferralData) -> bool:
        """Record a reminder of the referral; False if another process did it first."""
        now = self._db.clock()
        same = (
            Referral.reminded_at.is_(None)
            if referral.reminded_at is None
            else Referral.reminded_at == referral.reminded_at
        )
        stmt = update(Referral).where(Referral.id == referral.id, same).values(reminded_at=now)
        async with self._db.session() as session, session.begin():
            if await changed(session, stmt) != 1:
                return False
            session.add(
                AuditEntry(
                    case_id=referral.case_id,
                    action="remind",
                    detail="referral",
                    created_at=now,
                    partner=referral.to_partner,
                )
            )
            return True
