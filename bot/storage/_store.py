"""The bot's storage service: people, recent turns, anonymous feedback and unanswered questions;
handoff cases through ``storage.cases``, referrals between partners through ``storage.referrals``."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from sqlalchemy import ColumnElement, bindparam, case, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection

from ..clock import Clock, utcnow
from ._cases import CaseStore
from ._database import Database, aware, changed, changed_now, language_code
from ._inbox import InboxStore
from ._models import (
    MAX_QUESTION_CHARS,
    ROLES,
    AuditEntry,
    Case,
    EndedTopic,
    Feedback,
    HandoffMessage,
    Person,
    Turn,
    Unanswered,
)
from ._records import UNSET, FeedbackRow, PersonData, TurnData, UnansweredRow, _Unset, record
from ._referrals import ReferralStore
from ._retry import units_of_work
from ._steps import CaseSteps, RelayedMessages
from ._usage import UsageStore

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["Storage", "normalise_question"]


# The statements every question runs, built once: SQLAlchemy then reuses their compiled form without
# computing a cache key each time (~0.4 ms of CPU per statement built afresh). Values are bound by name.
_CHAT = bindparam("p_chat", type_=Person.chat_id.type)
_NOW = bindparam("p_now", type_=Person.last_seen_at.type)
_PERSON_READ = select(
    Person.chat_id,
    Person.language,
    Person.city,
    Person.consent_at,
    select(Case.id).where(Case.person_id == Person.id, Case.status == "open").exists().label("open_case"),
).where(Person.chat_id == _CHAT)
_PERSON_SEEN = update(Person).where(Person.chat_id == _CHAT).values(last_seen_at=_NOW).returning(Person.id)
_PERSON_ID = select(Person.id).where(Person.chat_id == _CHAT)
_INSERT_TURN = insert(Turn)


def normalise_question(text: str) -> str:
    """The form in which unanswered questions are stored and grouped: NFC, single spaces, case-folded."""
    text = " ".join(unicodedata.normalize("NFC", text).split()).casefold()
    return text[:MAX_QUESTION_CHARS]


@units_of_work  # a database briefly away or locked: each method is retried, bounded
class Storage(Database):
    """Async storage on SQLite (``sqlite+aiosqlite:///var/integra.db``) or PostgreSQL (``postgresql+asyncpg://``).

    A relative SQLite path is taken from ``root`` (``Storage.from_settings`` passes the deployment's
    root). ``open()`` migrates the schema to the newest revision; every method is one transaction.
    Every time stored is ``clock()``. Handoff cases: ``storage.cases`` (a ``CaseStore``); the durable
    inbox of Telegram updates: ``storage.inbox`` (an ``InboxStore``).
    """

    def __init__(
        self,
        url: str | URL,
        *,
        root: Path | None = None,
        max_turns: int = 20,
        clock: Clock = utcnow,
    ) -> None:
        if max_turns < 1:
            raise ValueError("max_turns must be at least 1")
        super().__init__(url, root=root, clock=clock)
        self.max_turns = max_turns
        # One statement: nothing is deleted while the person has fewer turns (the subquery is NULL).
        person = bindparam("p_person", type_=Turn.person_id.type)
        oldest_kept = (
            select(Turn.id)
            .where(Turn.person_id == person)
            .order_by(Turn.id.desc())
            .offset(max_turns - 1)
            .limit(1)
            .scalar_subquery()
        )
        self._trim = delete(Turn).where(Turn.person_id == person, Turn.id < oldest_kept)
        self.cases = CaseStore(self)
        self.steps = CaseSteps(self)
        self.relayed = RelayedMessages(self)
        self.inbox = InboxStore(self)
        self.referrals = ReferralStore(self, self.cases)
        self.usage = UsageStore(self)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = utcnow) -> Self:
        """The deployment's database (``DATABASE_URL`` or config.yml; SQLite in ``var/`` by default)."""
        return cls(settings.database_url, root=settings.root, clock=clock)

    def _upsert_person(self, values: Mapping[str, Any], update: Mapping[str, Any]) -> Any:
        """INSERT … ON CONFLICT (chat_id) DO UPDATE, returning the row: one statement, no race."""
        upsert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        stmt = upsert(Person).values(**values)
        return stmt.on_conflict_do_update(index_elements=[Person.chat_id], set_=dict(update)).returning(
            Person.id, Person.chat_id, Person.language, Person.city, Person.consent_at
        )

    # People

    async def get_person(self, chat_id: int) -> PersonData | None:
        """The person, and whether they have an open case (one read serves the consent check and the
        handoff's "is a caseworker on this conversation?")."""
        row = await self.run(
            lambda connection: connection.execute(_PERSON_READ, {"p_chat": chat_id}).one_or_none()
        )
        return None if row is None else record(PersonData, row)

    async def save_person(
        self,
        chat_id: int,
        *,
        language: str | Literal[_Unset.UNSET] | None = UNSET,
        city: str | Literal[_Unset.UNSET] | None = UNSET,
        consent_at: datetime | Literal[_Unset.UNSET] | None = UNSET,
    ) -> PersonData:
        """Create or update a person; only the fields given change. Marks the person as seen now."""
        now = self.clock()
        given: dict[str, Any] = {"last_seen_at": now}
        if language is not UNSET:
            given["language"] = language_code(language)
        if city is not UNSET:
            given["city"] = city
        if consent_at is not UNSET:
            given["consent_at"] = None if consent_at is None else aware(consent_at, "consent_at")
        stmt = self._upsert_person({"chat_id": chat_id, "created_at": now, **given}, given)
        async with self.session() as session, session.begin():
            row = (await session.execute(stmt)).one()
        return record(PersonData, row)

    async def forget(self, chat_id: int) -> bool:
        """Erase the person and their conversation; True if there was anything to erase."""
        async with self.session() as session, session.begin():
            deleted = await changed(session, delete(Person).where(Person.chat_id == chat_id))
        return deleted > 0

    async def set_blocked(self, chat_id: int, blocked: bool) -> bool:
        """Record that the person blocked the bot (or unblocked it); False if nothing changed or nobody
        is stored under ``chat_id`` (nothing is stored before consent)."""
        changes = Person.blocked_at.is_(None) if blocked else Person.blocked_at.is_not(None)
        stmt = (
            update(Person)
            .where(Person.chat_id == chat_id, changes)
            .values(blocked_at=self.clock() if blocked else None)
        )
        async with self.session() as session, session.begin():
            return await changed(session, stmt) > 0

    async def is_blocked(self, chat_id: int) -> bool:
        """Whether the person has blocked the bot."""
        stmt = select(Person.blocked_at.is_not(None)).where(Person.chat_id == chat_id)
        async with self.session() as session, session.begin():
            return bool(await session.scalar(stmt))

    async def blocked_chats(self) -> set[int]:
        """The chats of everyone who has blocked the bot."""
        stmt = select(Person.chat_id).where(Person.blocked_at.is_not(None))
        async with self.session() as session, session.begin():
            return set((await session.scalars(stmt)).all())

    # Conversation

    async def add_turn(
        self, chat_id: int, role: str, text: str, key: str | None = None, *, message_id: int | None = None
    ) -> None:
        """Append a message, creating the person if needed, and keep only the newest ``max_turns``.
        ``message_id``: the person's Telegram message it was (so that an edit can be compared)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        now = self.clock()

        def unit(connection: Connection) -> None:
            # Only the person's own messages count as being seen.
            person_id = self._seen_person(connection, chat_id, now, seen=role == "user")
            connection.execute(
                _INSERT_TURN,
                {
                    "person_id": person_id,
                    "role": role,
                    "text": text,
                    "key": key,
                    "created_at": now,
                    "message_id": message_id,
                },
            )
            self._trim_turns(connection, person_id)

        await self.run(unit)

    async def add_exchange(
        self,
        chat_id: int,
        question: str,
        answer: str,
        key: str | None,
        *,
        message_id: int | None,
        usage: tuple[str, str, str] | None = None,
    ) -> None:
        """A question and the bot's answer, in one transaction: both turns (``add_turn`` twice) and,
        with ``usage=(city, language, outcome)``, the outcome for the insights (``usage.record``)."""
        now = self.clock()

        def unit(connection: Connection) -> None:
            person_id = self._seen_person(connection, chat_id, now, seen=True)
            # Both turns in one statement.
            turn = {"person_id": person_id, "key": key, "created_at": now}
            connection.execute(
                _INSERT_TURN,
                [
                    {**turn, "role": "user", "text": question, "message_id": message_id},
                    {**turn, "role": "bot", "text": answer, "message_id": None},
                ],
            )
            self._trim_turns(connection, person_id)
            if usage is not None:
                city, language, event = usage
                self.usage._add(connection, person_id, city, language, key, event)

        await self.run(unit)

    def _seen_person(self, connection: Connection, chat_id: int, now: datetime, *, seen: bool) -> int:
        """The person's id, creating them if needed; ``seen``: mark them as seen ``now``.

        Almost always the person exists: one UPDATE (or SELECT), built once. Only a new person costs
        the INSERT … ON CONFLICT, which is built every time."""
        if seen:
            person_id = connection.scalar(_PERSON_SEEN, {"p_chat": chat_id, "p_now": now})
        else:
            person_id = connection.scalar(_PERSON_ID, {"p_chat": chat_id})
        if person_id is None:
            upsert = self._upsert_person(
                {"chat_id": chat_id, "created_at": now, "last_seen_at": now},
                {"last_seen_at": now if seen else Person.last_seen_at},
            )
            person_id = connection.execute(upsert).one().id
        return int(person_id)

    def _trim_turns(self, connection: Connection, person_id: int) -> None:
        """Keep only the person's newest ``max_turns`` turns."""
        changed_now(connection, self._trim, {"p_person": person_id})

    async def question_key(self, chat_id: int, message_id: int) -> tuple[bool, str | None]:
        """Whether the person's message ``message_id`` was taken as a question, and the key it was
        understood as (the newest, when an edit of it was answered again)."""
        stmt = (
            select(Turn.key)
            .join(Person, Person.id == Turn.person_id)
            .where(Person.chat_id == chat_id, Turn.role == "user", Turn.message_id == message_id)
            .order_by(Turn.id.desc())
            .limit(1)
        )
        async with self.session() as session, session.begin():
            row = (await session.execute(stmt)).one_or_none()
        return (False, None) if row is None else (True, row.key)

    async def recent_turns(self, chat_id: int, limit: int = 10) -> list[TurnData]:
        """The person's last ``limit`` messages, oldest first."""
        stmt = (
            select(Turn.role, Turn.text, Turn.key, Turn.created_at)
            .join(Person, Person.id == Turn.person_id)
            .where(Person.chat_id == chat_id)
            .order_by(Turn.id.desc())
            .limit(limit)
        )
        async with self.session() as session, session.begin():
            rows = (await session.execute(stmt)).all()
        return [record(TurnData, row) for row in reversed(rows)]

    # Anonymous records for editors

    async def add_feedback(self, city: str, language: str, key: str, helpful: bool) -> None:
        row = Feedback(
            city=city, language=language_code(language), key=key, helpful=helpful, created_at=self.clock()
        )
        async with self.session() as session, session.begin():
            session.add(row)

    async def add_unanswered(
        self, city: str, language: str, text: str, key: str | None, confidence: float
    ) -> None:
        """Record a question the bot could not answer (normalised, at most 500 characters)."""
        question = normalise_question(text)
        if not question:
            return
        row = Unanswered(
            city=city,
            language=language_code(language),
            text=question,
            key=key,
            confidence=float(confidence),
            created_at=self.clock(),
        )
        async with self.session() as session, session.begin():
            session.add(row)

    async def unanswered_report(
        self, *, since: datetime | None = None, limit: int = 50
    ) -> list[UnansweredRow]:
        """Unanswered questions grouped by city, language and text, the most frequent first."""
        count = func.count().label("count")
        last_seen = func.max(Unanswered.created_at).label("last_seen")
        stmt = (
            select(Unanswered.city, Unanswered.language, Unanswered.text, count, last_seen)
            .group_by(Unanswered.city, Unanswered.language, Unanswered.text)
            .order_by(count.desc(), last_seen.desc(), Unanswered.city, Unanswered.language, Unanswered.text)
            .limit(limit)
        )
        if since is not None:
            stmt = stmt.where(Unanswered.created_at >= aware(since, "since"))
        async with self.session() as session, session.begin():
            rows = (await session.execute(stmt)).all()
        return [record(UnansweredRow, row) for row in rows]

    async def feedback_report(self) -> list[FeedbackRow]:
        """Helpful and unhelpful votes per city and question key."""
        helpful = func.coalesce(func.sum(case((Feedback.helpful, 1), else_=0)), 0).label("helpful")
        unhelpful = func.coalesce(func.sum(case((Feedback.helpful, 0), else_=1)), 0).label("unhelpful")
        stmt = (
            select(Feedback.city, Feedback.key, helpful, unhelpful)
            .group_by(Feedback.city, Feedback.key)
            .order_by(Feedback.city, Feedback.key)
        )
        async with self.session() as session, session.begin():
            rows = (await session.execute(stmt)).all()
        return [FeedbackRow(row.city, row.key, int(row.helpful), int(row.unhelpful)) for row in rows]

    # Retention

    async def purge(
        self,
        *,
        now: datetime,
        turns_older_than: timedelta,
        inactive_people_older_than: timedelta,
        unanswered_older_than: timedelta,
        audit_older_than: timedelta | None = None,
    ) -> dict[str, int]:
        """Delete what is older than the retention limits; returns how many rows went, per table.

        People not seen for ``inactive_people_older_than`` go with all their turns and cases; closed
        cases go after ``turns_older_than``; the audit log and the topics cases left after
        ``audit_older_than``.
        """
        aware(now, "now")
        inactive: ColumnElement[bool] = Person.last_seen_at < now - inactive_people_older_than
        async with self.session() as session, session.begin():
            turns = await changed(
                session,
                delete(Turn).where(
                    (Turn.created_at < now - turns_older_than)
                    | Turn.person_id.in_(select(Person.id).where(inactive))
                ),
            )
            # The map of relayed message ids goes with the turns (and with its case).
            relayed = await changed(
                session, delete(HandoffMessage).where(HandoffMessage.created_at < now - turns_older_than)
            )
            cases = await changed(
                session,
                delete(Case).where(
                    ((Case.status == "closed") & (Case.closed_at < now - turns_older_than))
                    | Case.person_id.in_(select(Person.id).where(inactive))
                ),
            )
            people = await changed(session, delete(Person).where(inactive))
            audit = ended = 0
            if audit_older_than is not None:
                audit = await changed(
                    session, delete(AuditEntry).where(AuditEntry.created_at < now - audit_older_than)
                )
                ended = await changed(
                    session, delete(EndedTopic).where(EndedTopic.created_at < now - audit_older_than)
                )
            unanswered = await changed(
                session, delete(Unanswered).where(Unanswered.created_at < now - unanswered_older_than)
            )
        return {
            "turns": turns,
            "relayed": relayed,
            "cases": cases,
            "people": people,
            "unanswered": unanswered,
            "audit": audit,
            "ended_topics": ended,
        }
