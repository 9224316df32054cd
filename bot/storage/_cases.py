"""Handoff cases and their audit log: ``storage.cases``.

Every change of a case's state is one conditional UPDATE (``_change``): it only applies while the
case is still in the state the caller saw, so of two simultaneous claims (or closes, or reminders)
exactly one wins, and only the winner's audit entry is written, in the same transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, delete, select, union, update
from sqlalchemy.ext.asyncio import AsyncSession

from ._database import Database, aware, changed, language_code
from ._models import CASE_ACTIONS, AuditEntry, Case, CaseSetup, EndedTopic, Person, Referral
from ._records import AuditRow, CaseData, EndedTopicData, record
from ._retry import units_of_work

__all__ = ["CaseStore"]

# CaseData's fields, by name: the person's chat id comes from people, the rest from cases.
_CASE_COLUMNS = [
    Person.chat_id if field.name == "chat_id" else getattr(Case, field.name).label(field.name)
    for field in dataclasses.fields(CaseData)
]


@units_of_work  # a database briefly away or locked: each method is retried, bounded
class CaseStore:
    """Cases handed to caseworkers: open, claim, transfer, remind, close, rate; and the audit log."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _cases(self) -> Select[Any]:
        return select(*_CASE_COLUMNS).join(Person, Person.id == Case.person_id)

    async def _one(self, session: AsyncSession, *where: ColumnElement[bool]) -> CaseData | None:
        row = (await session.execute(self._cases().where(*where))).one_or_none()
        return None if row is None else record(CaseData, row)

    async def _change(
        self,
        session: AsyncSession,
        case_id: int,
        where: tuple[ColumnElement[bool], ...],
        values: Mapping[str, Any],
        action: str,
        actor_id: int | None = None,
        detail: str | None = None,
        *,
        now: datetime,
    ) -> bool:
        """UPDATE the case where ``where`` still holds; if it did, write the audit entry ``action``.
        False when the case was not in that state (closed, claimed, or another process was first)."""
        # The audit names the partner the case was with when it happened (before a transfer moves it).
        before = (
            await session.execute(
                select(Case.partner, Case.group_chat_id, Case.thread_id).where(Case.id == case_id)
            )
        ).one_or_none()
        partner = None if before is None else before.partner
        stmt = update(Case).where(Case.id == case_id, *where).values(**values)
        if await changed(session, stmt) != 1:
            return False
        await self._left_topic(session, case_id, before, values, action, now)
        session.add(
            AuditEntry(
                case_id=case_id,
                action=action,
                actor_id=actor_id,
                detail=detail,
                created_at=now,
                partner=partner,
            )
        )
        return True

    @staticmethod
    async def _left_topic(
        session: AsyncSession,
        case_id: int,
        before: Row[Any] | None,
        values: Mapping[str, Any],
        action: str,
        now: datetime,
    ) -> None:
        """Record the topic the case was in (``before`` the change) when the change ends it there:
        the case closed (or was erased), or moved to another topic (a transfer, a referral)."""
        if before is None or before.thread_id is None:
            return
        topic = (before.group_chat_id, before.thread_id)
        if values.get("status") == "closed":
            reason = "erased" if action == "erase" else "closed"
        elif "thread_id" in values and (values.get("group_chat_id", topic[0]), values["thread_id"]) != topic:
            reason = "moved"
        else:
            return
        await _end_topic(session, topic, case_id, reason, now)

    async def open(
        self,
        chat_id: int,
        *,
        city: str,
        language: str,
        key: str | None,
        urgent: bool,
        group_chat_id: int,
        remind_at: datetime | None,
        partner: str | None = None,
    ) -> tuple[CaseData, bool]:
        """Open a case for a person who has consented, with ``partner`` (the organisation it was routed
        to); returns (case, True), or (the open case, False)."""
        now = self._db.clock()
        async with self._db.session() as session, session.begin():
            person_id = await session.scalar(select(Person.id).where(Person.chat_id == chat_id))
            if person_id is None:
                raise LookupError("only a person who has agreed to the privacy notice can open a case")
            existing = await self._one(session, Case.person_id == person_id, Case.status == "open")
            if existing is not None:
                return existing, False
            row = Case(
                person_id=person_id,
                city=city,
                language=language_code(language),
                key=key,
                urgent=urgent,
                status="open",
                group_chat_id=group_chat_id,
                created_at=now,
                remind_at=None if remind_at is None else aware(remind_at, "remind_at"),
                reminders=0,
                partner=partner,
            )
            session.add(row)
            await session.flush()
            session.add(
                AuditEntry(case_id=row.id, action="open", detail=key, created_at=now, partner=partner)
            )
            # Its topic, card and notice come next; whoever comes after a crash continues them.
            session.add(CaseSetup(case_id=row.id, kind="open", step="topic", attempts=0, created_at=now))
            opened = await self._one(session, Case.id == row.id)
        assert opened is not None
        return opened, True

    async def set_topic(self, case_id: int, *, thread_id: int, card_message_id: int | None) -> None:
        """Where the case is discussed: its forum topic and the message id of its card."""
        async with self._db.session() as session, session.begin():
            await session.execute(
                update(Case)
                .where(Case.id == case_id)
                .values(thread_id=thread_id, card_message_id=card_message_id)
            )

    async def get(self, case_id: int) -> CaseData | None:
        async with self._db.session() as session, session.begin():
            return await self._one(session, Case.id == case_id)

    async def open_of(self, chat_id: int) -> CaseData | None:
        """The person's open case, if any."""
        async with self._db.session() as session, session.begin():
            return await self._one(session, Person.chat_id == chat_id, Case.status == "open")

    async def closed_of(self, chat_id: int) -> list[CaseData]:
        """The person's closed cases, oldest first (their messages may still be on a new case's card)."""
        stmt = (
            self._cases()
            .where(Person.chat_id == chat_id, Case.status == "closed")
            .order_by(Case.created_at, Case.id)
        )
        async with self._db.session() as session, session.begin():
            return [record(CaseData, row) for row in (await session.execute(stmt)).all()]

    async def in_topic(self, group_chat_id: int, thread_id: int) -> CaseData | None:
        """The open case discussed in a forum topic, if any."""
        async with self._db.session() as session, session.begin():
            return await self._one(
                session,
                Case.group_chat_id == group_chat_id,
                Case.thread_id == thread_id,
                Case.status == "open",
            )

    async def claim(self, case_id: int, staff_id: int) -> tuple[bool, CaseData | None]:
        """Make ``staff_id`` the owner if nobody owns the open case: one conditional UPDATE, so of two
        simultaneous claims exactly one wins. Returns (won, the case as it is now)."""
        now = self._db.clock()
        async with self._db.session() as session, session.begin():
            won = await self._change(
                session,
                case_id,
                (Case.status == "open", Case.owner_id.is_(None)),
                {"owner_id": staff_id, "claimed_at": now, "remind_at": None},
                "claim",
                staff_id,
                now=now,
            )
            return won, await self._one(session, Case.id == case_id)

    async def mark_urgent(self, case_id: int, remind_at: datetime | None) -> bool:
        """Mark an open case urgent (a message during the case looked like danger); False if it already
        was, or is closed. An unclaimed case is reminded at ``remind_at``."""
        now = self._db.clock()
        async with self._db.session() as session, session.begin():
            opened = (Case.status == "open", Case.urgent.is_(False))
            if not await self._change(session, case_id, opened, {"urgent": True}, "urgent", now=now):
                return False
            if remind_at is not None:
                await session.execute(
                    update(Case)
                    .where(Case.id == case_id, Case.owner_id.is_(None))
                    .values(remind_at=remind_at)
                )
            return True

    async def close(self, case_id: int, actor_id: int | None, action: str = "close") -> CaseData | None:
        """Close an open case (action ``close``, ``return``, ``erase``, or ``blocked``: the person blocked
        the bot); None if it was not open."""
        if action not in ("close", "return", "erase", "blocked"):
            raise ValueError(f"cannot close a case with action {action!r}")
        now = self._db.clock()
        closing = {"status": "closed", "closed_at": now, "remind_at": None}
        async with self._db.session() as session, session.begin():
            opened = (Case.status == "open",)
            if not await self._change(session, case_id, opened, closing, action, actor_id, now=now):
                return None
            return await self._one(session, Case.id == case_id)

    async def transfer(
        self,
        case_id: int,
        *,
        city: str,
        group_chat_id: int,
        thread_id: int,
        card_message_id: int | None,
        remind_at: datetime | None,
        actor_id: int,
        partner: str | None = None,
    ) -> CaseData | None:
        """Move an open case to another city's group (its ``partner`` there); it becomes unassigned."""
        moved = {
            "partner": partner,
            "city": city,
            "group_chat_id": group_chat_id,
            "thread_id": thread_id,
            "card_message_id": card_message_id,
            "owner_id": None,
            "claimed_at": None,
            "remind_at": remind_at,
            "reminders": 0,
        }
        async with self._db.session() as session, session.begin():
            opened = (Case.status == "open",)
            if not await self._change(
                session, case_id, opened, moved, "transfer", actor_id, city, now=self._db.clock()
            ):
                return None
            return await self._one(session, Case.id == case_id)

    async def due_reminders(self, now: datetime) -> list[CaseData]:
        """Open, unclaimed cases whose reminder time has come."""
        stmt = (
            self._cases()
            .where(
                Case.status == "open",
                Case.owner_id.is_(None),
                Case.thread_id.is_not(None),
                Case.remind_at <= aware(now, "now"),
            )
            .order_by(Case.remind_at)
        )
        async with self._db.session() as session, session.begin():
            return [record(CaseData, row) for row in (await session.execute(stmt)).all()]

    async def reminded(self, case: CaseData, next_at: datetime) -> bool:
        """Record a reminder and set the next one; False if another process did it first."""
        async with self._db.session() as session, session.begin():
            return await self._change(
                session,
                case.id,
                (Case.remind_at == case.remind_at, Case.owner_id.is_(None)),
                {"remind_at": aware(next_at, "next_at"), "reminders": Case.reminders + 1},
                "remind",
                now=self._db.clock(),
            )

    async def rate(self, case_id: int, chat_id: int, rating: int) -> bool:
        """The person's 1–5 rating of a closed case of theirs; only the first rating counts."""
        if not 1 <= rating <= 5:
            raise ValueError("rating must be between 1 and 5")
        async with self._db.session() as session, session.begin():
            person_id = select(Person.id).where(Person.chat_id == chat_id).scalar_subquery()
            theirs = (Case.person_id == person_id, Case.status == "closed", Case.rating.is_(None))
            return await self._change(
                session,
                case_id,
                theirs,
                {"rating": rating},
                "rating",
                detail=str(rating),
                now=self._db.clock(),
            )

    async def audit(
        self, case_id: int, action: str, actor_id: int | None = None, detail: str | None = None
    ) -> None:
        """Record a staff action (never message text)."""
        if action not in CASE_ACTIONS:
            raise ValueError(f"unknown case action {action!r}")
        async with self._db.session() as session, session.begin():
            partner = await session.scalar(select(Case.partner).where(Case.id == case_id))
            session.add(
                AuditEntry(
                    case_id=case_id,
                    action=action,
                    actor_id=actor_id,
                    detail=None if detail is None else detail[:128],
                    created_at=self._db.clock(),
                    partner=partner,
                )
            )

    # Topics a case has left

    async def ended_topic(self, group_chat_id: int, thread_id: int) -> EndedTopicData | None:
        """Why a forum topic no longer has an open case (closed, moved, erased); None if it never had
        one, or has one."""
        stmt = select(*_ENDED_COLUMNS).where(
            EndedTopic.group_chat_id == group_chat_id, EndedTopic.thread_id == thread_id
        )
        async with self._db.session() as session, session.begin():
            row = (await session.execute(stmt)).one_or_none()
        return None if row is None else record(EndedTopicData, row)

    async def tell_once(self, group_chat_id: int, thread_id: int) -> bool:
        """Note that staff in an ended topic have been told why; True only the first time (of two
        processes at once, one), so the notice is given once per topic."""
        stmt = (
            update(EndedTopic)
            .where(
                EndedTopic.group_chat_id == group_chat_id,
                EndedTopic.thread_id == thread_id,
                EndedTopic.told_at.is_(None),
            )
            .values(told_at=self._db.clock())
        )
        async with self._db.session() as session, session.begin():
            return await changed(session, stmt) == 1

    async def erase_topics(self, chat_id: int) -> list[EndedTopicData]:
        """Every forum topic that holds the person's messages: the topics of all their cases, open or
        closed, and those a case left for another (a transfer, a referral). Each is marked ``erased``
        (staff writing there are told once more). Call before the person is deleted."""
        person = select(Person.id).where(Person.chat_id == chat_id).scalar_subquery()
        person_cases = select(Case.id).where(Case.person_id == person)
        topics = union(
            select(Case.group_chat_id, Case.thread_id, Case.id.label("case_id")).where(
                Case.id.in_(person_cases), Case.thread_id.is_not(None)
            ),
            select(EndedTopic.group_chat_id, EndedTopic.thread_id, EndedTopic.case_id).where(
                EndedTopic.case_id.in_(person_cases)
            ),
            select(Referral.from_chat_id, Referral.from_thread_id, Referral.case_id).where(
                Referral.case_id.in_(person_cases), Referral.from_thread_id.is_not(None)
            ),
        ).subquery()
        now = self._db.clock()
        async with self._db.session() as session, session.begin():
            ordered = select(topics).order_by(topics.c.case_id, topics.c.thread_id)
            found: dict[tuple[int, int], int] = {}
            for row in (await session.execute(ordered)).all():
                found.setdefault((row.group_chat_id, row.thread_id), row.case_id)
            for topic, case_id in found.items():
                await _end_topic(session, topic, case_id, "erased", now)
        return [EndedTopicData(chat, thread, case, "erased", None) for (chat, thread), case in found.items()]

    async def topic_deleted(self, group_chat_id: int, thread_id: int) -> None:
        """The topic is gone (deleted in Telegram): nothing more can be said there."""
        async with self._db.session() as session, session.begin():
            await session.execute(
                delete(EndedTopic).where(
                    EndedTopic.group_chat_id == group_chat_id, EndedTopic.thread_id == thread_id
                )
            )

    async def audit_log(self, case_id: int) -> list[AuditRow]:
        """The case's audit entries, oldest first."""
        stmt = (
            select(
                AuditEntry.case_id,
                AuditEntry.action,
                AuditEntry.actor_id,
                AuditEntry.detail,
                AuditEntry.created_at,
                AuditEntry.partner,
            )
            .where(AuditEntry.case_id == case_id)
            .order_by(AuditEntry.id)
        )
        async with self._db.session() as session, session.begin():
            return [record(AuditRow, row) for row in (await session.execute(stmt)).all()]


_ENDED_COLUMNS = [getattr(EndedTopic, field.name) for field in dataclasses.fields(EndedTopicData)]


async def _end_topic(
    session: AsyncSession, topic: tuple[int, int], case_id: int, reason: str, now: datetime
) -> None:
    """Record (or record again, to be told anew) why ``topic`` no longer has its case."""
    chat_id, thread_id = topic
    await session.execute(
        delete(EndedTopic).where(EndedTopic.group_chat_id == chat_id, EndedTopic.thread_id == thread_id)
    )
    session.add(
        EndedTopic(group_chat_id=chat_id, thread_id=thread_id, case_id=case_id, reason=reason, created_at=now)
    )
