"""The steps of opening, transferring or referring a case (``storage.steps``) and the map of relayed messages
(``storage.relayed``).

Opening a case takes three steps outside the database: a forum topic, the card in it, a word to the
person. A crash between any two must not leave a case nothing can reach, so the next step is stored
(``case_setup``, written with the case itself) and whoever comes next continues: the person's next
message, /human, or the reconciler. Two of them never take steps at once: each takes a short lease
first (one conditional UPDATE), and a lease left by a crash runs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.exc import IntegrityError

from ._database import Database, aware, changed
from ._models import Case, CaseSetup, HandoffMessage, Person
from ._records import CaseSetupData, CopyData
from ._retry import units_of_work

__all__ = ["CaseSteps", "RelayedMessages"]

_SETUP_COLUMNS = [
    CaseSetup.case_id,
    CaseSetup.kind,
    CaseSetup.step,
    CaseSetup.attempts,
    CaseSetup.created_at,
    CaseSetup.actor_id,
    CaseSetup.to_city,
    CaseSetup.to_thread_id,
    CaseSetup.to_card_message_id,
    CaseSetup.from_group_chat_id,
    CaseSetup.from_thread_id,
    CaseSetup.to_partner,
    CaseSetup.note,
]
STEPS = ("topic", "card", "notice")


@units_of_work  # a database briefly away or locked: each method is retried, bounded
class CaseSteps:
    """Where opening or transferring each case has got to."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, case_id: int) -> CaseSetupData | None:
        """The case's next step, or None when it is fully set up."""
        async with self._db.session() as session, session.begin():
            row = (
                await session.execute(select(*_SETUP_COLUMNS).where(CaseSetup.case_id == case_id))
            ).one_or_none()
        return None if row is None else CaseSetupData(*row)

    async def take(self, case_id: int, lease: timedelta) -> CaseSetupData | None:
        """Take the steps of this case for ``lease`` (counting an attempt); None when it has no steps
        left or someone else holds them."""
        now = self._db.clock()
        free = or_(CaseSetup.lease_until.is_(None), CaseSetup.lease_until <= now)
        stmt = (
            update(CaseSetup)
            .where(CaseSetup.case_id == case_id, free)
            .values(lease_until=now + lease, attempts=CaseSetup.attempts + 1)
        )
        async with self._db.session() as session, session.begin():
            if await changed(session, stmt) != 1:
                return None
            row = (await session.execute(select(*_SETUP_COLUMNS).where(CaseSetup.case_id == case_id))).one()
        return CaseSetupData(*row)

    async def release(self, case_id: int) -> None:
        """Let others take the remaining steps (now)."""
        async with self._db.session() as session, session.begin():
            await session.execute(
                update(CaseSetup).where(CaseSetup.case_id == case_id).values(lease_until=None)
            )

    async def advance(self, case_id: int, step: str, **values: int | None) -> None:
        """The step before ``step`` is done; ``values``: what it produced (``to_thread_id``, …)."""
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}")
        async with self._db.session() as session, session.begin():
            await session.execute(
                update(CaseSetup).where(CaseSetup.case_id == case_id).values(step=step, **values)
            )

    async def topic_made(self, case_id: int, thread_id: int) -> None:
        """A new case's topic exists: the case is in it, and its card comes next (one transaction, so a
        crash cannot leave the topic recorded but its step not, which would make a second one)."""
        async with self._db.session() as session, session.begin():
            await session.execute(
                update(Case).where(Case.id == case_id).values(thread_id=thread_id, card_message_id=None)
            )
            await session.execute(update(CaseSetup).where(CaseSetup.case_id == case_id).values(step="card"))

    async def card_posted(self, case_id: int, card_message_id: int) -> None:
        """A new case's card is in its topic; the notice to the person comes next (one transaction)."""
        async with self._db.session() as session, session.begin():
            await session.execute(
                update(Case).where(Case.id == case_id).values(card_message_id=card_message_id)
            )
            await session.execute(update(CaseSetup).where(CaseSetup.case_id == case_id).values(step="notice"))

    async def done(self, case_id: int) -> None:
        """Every step is done (or the rest was abandoned)."""
        async with self._db.session() as session, session.begin():
            await session.execute(delete(CaseSetup).where(CaseSetup.case_id == case_id))

    async def request_transfer(
        self,
        case_id: int,
        *,
        to_city: str,
        actor_id: int,
        to_partner: str | None = None,
        note: str | None = None,
    ) -> bool:
        """Record a transfer of the open case to ``to_city`` (with ``to_partner``: a referral to that
        partner organisation, in ``to_city``, with the caseworker's ``note`` for its card); False when it
        is closed or already being opened, transferred or referred. The case stays where it is until the
        new topic and card exist."""
        now = self._db.clock()
        async with self._db.session() as session, session.begin():
            row = (
                await session.execute(
                    select(Case.group_chat_id, Case.thread_id).where(
                        Case.id == case_id,
                        Case.status == "open",
                        ~exists().where(CaseSetup.case_id == Case.id),
                    )
                )
            ).one_or_none()
            if row is None:
                return False
            session.add(
                CaseSetup(
                    case_id=case_id,
                    kind="transfer" if to_partner is None else "refer",
                    step="topic",
                    attempts=0,
                    created_at=now,
                    actor_id=actor_id,
                    to_city=to_city,
                    from_group_chat_id=row.group_chat_id,
                    from_thread_id=row.thread_id,
                    to_partner=to_partner,
                    note=note or None,
                )
            )
            try:
                await session.flush()
            except IntegrityError:  # another transfer was recorded at the same moment
                return False
        return True

    async def pending(self, now: datetime) -> list[CaseSetupData]:
        """Cases with steps left that nobody is taking now, oldest first (for the reconciler)."""
        stmt = (
            select(*_SETUP_COLUMNS)
            .where(or_(CaseSetup.lease_until.is_(None), CaseSetup.lease_until <= aware(now, "now")))
            .order_by(CaseSetup.created_at)
        )
        async with self._db.session() as session, session.begin():
            return [CaseSetupData(*row) for row in (await session.execute(stmt)).all()]


@units_of_work  # a database briefly away or locked: each method is retried, bounded
class RelayedMessages:
    """Which copy on the other side belongs to a message relayed during a case (ids only)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self, case_id: int, origin: str, source_id: int, copy_chat_id: int, copy_ids: Sequence[int]
    ) -> None:
        """``source_id`` (written by the person or by ``staff``) was relayed as ``copy_ids``, in order."""
        now = self._db.clock()
        rows = [
            HandoffMessage(
                case_id=case_id,
                origin=origin,
                source_id=source_id,
                copy_chat_id=copy_chat_id,
                copy_id=copy_id,
                part=part,
                broken=False,
                created_at=now,
            )
            for part, copy_id in enumerate(copy_ids)
        ]
        if not rows:
            return
        async with self._db.session() as session, session.begin():
            session.add_all(rows)

    async def copies(self, case_id: int, origin: str, source_id: int) -> list[CopyData]:
        """The copies of a relayed message, in order (empty when it was never relayed)."""
        stmt = (
            select(
                HandoffMessage.copy_chat_id,
                HandoffMessage.copy_id,
                HandoffMessage.part,
                HandoffMessage.broken,
            )
            .where(
                HandoffMessage.case_id == case_id,
                HandoffMessage.origin == origin,
                HandoffMessage.source_id == source_id,
            )
            .order_by(HandoffMessage.part)
        )
        async with self._db.session() as session, session.begin():
            return [CopyData(*row) for row in (await session.execute(stmt)).all()]

    async def mark_broken(self, case_id: int, origin: str, source_id: int) -> None:
        """The copies can no longer be edited (the editor has been told)."""
        stmt = (
            update(HandoffMessage)
            .where(
                HandoffMessage.case_id == case_id,
                HandoffMessage.origin == origin,
                HandoffMessage.source_id == source_id,
            )
            .values(broken=True)
        )
        async with self._db.session() as session, session.begin():
            await session.execute(stmt)

    async def from_person(self, chat_id: int, source_id: int) -> bool:
        """Whether the person's message was relayed during one of their cases."""
        stmt = select(
            exists().where(
                HandoffMessage.origin == "person",
                HandoffMessage.source_id == source_id,
                HandoffMessage.case_id == Case.id,
                Case.person_id == Person.id,
                Person.chat_id == chat_id,
            )
        )
        async with self._db.session() as session, session.begin():
            return bool(await session.scalar(stmt))
