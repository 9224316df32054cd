"""Usage counts for the city insights report: ``storage.usage``.

A row per question (its outcome) or per 👍/👎: city, language, question key, what happened and when —
no text, no chat id. Instead of the person, a pseudonym: a random number kept in ``usage_people`` while
the person is (``/forget`` or inactivity delete that row with the person; their usage rows stay and can
no longer be tied to anyone). The report counts distinct pseudonyms to hide figures that rest on too few
people. The report's other figures come from cases, their audit log and referrals, read here too.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from ._database import Database, aware, changed, language_code
from ._models import AuditEntry, Case, Person, Referral, Usage, UsagePerson
from ._retry import units_of_work

__all__ = ["QUESTION_EVENTS", "USAGE_EVENTS", "HandoffRow", "ReferralRow", "UsageRow", "UsageStore"]

# What became of a question (the engine's outcomes), and a vote under an answer.
QUESTION_EVENTS = ("answer", "clarify", "out_of_scope", "no_content", "unavailable")
USAGE_EVENTS = (*QUESTION_EVENTS, "helpful", "unhelpful")
# The engine's other outcomes (a greeting, asking for a person) are not questions: not kept.
_NOT_KEPT = ("conversation", "handoff")

# Staff actions that reach the person: the first of them is the first staff reply.
_STAFF_REPLIES = ("reply", "send", "quick")


@dataclass(frozen=True, slots=True)
class UsageRow:
    language: str
    key: str | None
    event: str
    pseudonym: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class HandoffRow:
    """A case opened in the period: the partner it was routed to, for whom (an internal number, only counted),
    when the first staff reply reached the person, and the person's rating."""

    partner: str | None
    person: int
    created_at: datetime
    first_reply_at: datetime | None
    rating: int | None


@dataclass(frozen=True, slots=True)
class ReferralRow:
    from_partner: str
    to_partner: str
    person: int
    consent: bool | None
    created_at: datetime
    claimed_at: datetime | None


def _kept(event: str) -> bool:
    if event not in USAGE_EVENTS and event not in _NOT_KEPT:
        raise ValueError(f"unknown usage event {event!r}")
    return event not in _NOT_KEPT


# Built once (see bot/storage/_store.py): the pseudonym of a person, and one usage row.
_PSEUDONYM = select(UsagePerson.pseudonym).where(
    UsagePerson.person_id == bindparam("p_person", type_=UsagePerson.person_id.type)
)
_INSERT_USAGE = insert(Usage)


@units_of_work  # a database briefly away or locked: each method is retried, bounded
class UsageStore:
    """Record usage; read what the insights report needs for one city and period."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, chat_id: int, city: str, language: str, key: str | None, event: str) -> None:
        """One question's outcome or one vote of the person ``chat_id`` (who must exist); the engine's
        outcomes that are not a question (greetings, asking for a person) are not kept."""
        if not _kept(event):
            return

        def unit(connection: Connection) -> None:
            person_id = connection.scalar(select(Person.id).where(Person.chat_id == chat_id))
            if person_id is not None:
                self._add(connection, person_id, city, language, key, event)

        await self._db.run(unit)

    def _add(
        self, connection: Connection, person_id: int, city: str, language: str, key: str | None, event: str
    ) -> None:
        """``record`` inside the caller's transaction (``Storage.add_exchange``).
        Not retried on its own: the caller's unit of work is."""
        if not _kept(event):
            return
        pseudonym = connection.scalar(_PSEUDONYM, {"p_person": person_id})
        if pseudonym is None:
            upsert = postgresql.insert if self._db.engine.dialect.name == "postgresql" else sqlite.insert
            # A new person's pseudonym; of two at once, the first stays.
            connection.execute(
                upsert(UsagePerson)
                .values(person_id=person_id, pseudonym=secrets.randbits(62))
                .on_conflict_do_nothing(index_elements=[UsagePerson.person_id])
            )
            pseudonym = connection.scalar(_PSEUDONYM, {"p_person": person_id})
        assert pseudonym is not None
        connection.execute(
            _INSERT_USAGE,
            {
                "city": city,
                "language": language_code(language),
                "key": key,
                "event": event,
                "pseudonym": pseudonym,
                "created_at": self._db.clock(),
            },
        )

    async def purge(self, before: datetime) -> int:
        """Delete the usage rows from before ``before`` (the retention limit); how many went."""
        async with self._db.session() as session, session.begin():
            return await changed(session, delete(Usage).where(Usage.created_at < aware(before, "before")))

    async def rows(self, city: str, start: datetime, end: datetime) -> list[UsageRow]:
        """The city's usage from ``start`` (inclusive) to ``end`` (exclusive), oldest first."""
        stmt = (
            select(Usage.language, Usage.key, Usage.event, Usage.pseudonym, Usage.created_at)
            .where(
                Usage.city == city,
                Usage.created_at >= aware(start, "start"),
                Usage.created_at < aware(end, "end"),
            )
            .order_by(Usage.id)
        )
        async with self._db.session() as session, session.begin():
            rows = (await session.execute(stmt)).all()
        return [UsageRow(r.language, r.key, r.event, r.pseudonym, r.created_at) for r in rows]

    async def handoffs(self, city: str, start: datetime, end: datetime) -> list[HandoffRow]:
        """The cases of the city opened from ``start`` to ``end`` (still stored: closed cases go after
        the retention period)."""
        first_reply = (
            select(AuditEntry.case_id, func.min(AuditEntry.created_at).label("at"))
            .where(AuditEntry.action.in_(_STAFF_REPLIES))
            .group_by(AuditEntry.case_id)
            .subquery()
        )
        # The partner the case was routed to when it opened (a referral moves it on later).
        opened = (
            select(AuditEntry.case_id, func.min(AuditEntry.partner).label("partner"))
            .where(AuditEntry.action == "open")
            .group_by(AuditEntry.case_id)
            .subquery()
        )
        partner = func.coalesce(opened.c.partner, Case.partner).label("partner")
        stmt = (
            select(partner, Case.person_id, Case.created_at, first_reply.c.at, Case.rating)
            .outerjoin(first_reply, first_reply.c.case_id == Case.id)
            .outerjoin(opened, opened.c.case_id == Case.id)
            .where(
                Case.city == city,
                Case.created_at >= aware(start, "start"),
                Case.created_at < aware(end, "end"),
            )
            .order_by(Case.id)
        )
        async with self._db.session() as session, session.begin():
            rows = (await session.execute(stmt)).all()
        # The audit's times come back naive from SQLite through the aggregate: they are UTC.
        return [HandoffRow(r.partner, r.person_id, r.created_at, _utc(r.at), r.rating) for r in rows]

    async def referrals(self, city: str, start: datetime, end: datetime) -> list[ReferralRow]:
        """Referrals of the city's cases made from ``start`` to ``end``."""
        stmt = (
            select(
                Referral.from_partner,
                Referral.to_partner,
                Case.person_id,
                Referral.consent,
                Referral.created_at,
                Referral.claimed_at,
            )
            .join(Case, Case.id == Referral.case_id)
            .where(
                Referral.city == city,
                Referral.created_at >= aware(start, "start"),
                Referral.created_at < aware(end, "end"),
            )
            .order_by(Referral.id)
        )
        async with self._db.session() as session, session.begin():
            rows = (await session.execute(stmt)).all()
        return [
            ReferralRow(r.from_partner, r.to_partner, r.person_id, r.consent, r.created_at, r.claimed_at)
            for r in rows
        ]


def _utc(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
