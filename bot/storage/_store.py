"""The bot's storage service: people, recent turns, anonymous feedback and unanswered questions."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self

from sqlalchemy import ColumnElement, Delete, Update, case, delete, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, CursorResult
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from ..clock import Clock, utcnow
from ..settings import Settings
from ._migrate import database_url, migrate
from ._models import (
    CASE_ACTIONS,
    MAX_QUESTION_CHARS,
    ROLES,
    AuditEntry,
    Case,
    Feedback,
    Person,
    Turn,
    Unanswered,
)

__all__ = [
    "UNSET",
    "AuditRow",
    "CaseData",
    "FeedbackRow",
    "PersonData",
    "Storage",
    "StorageClosedError",
    "TurnData",
    "UnansweredRow",
    "normalise_question",
]


class _Unset(Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset.UNSET
"""Default of ``save_person``'s fields: leave the stored value as it is."""


class StorageClosedError(RuntimeError):
    """The storage was used before ``open()`` or after ``aclose()``."""


@dataclass(frozen=True, slots=True)
class PersonData:
    chat_id: int
    language: str | None
    city: str | None
    consent_at: datetime | None


@dataclass(frozen=True, slots=True)
class TurnData:
    role: str
    text: str
    key: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UnansweredRow:
    city: str
    language: str
    text: str
    count: int
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class FeedbackRow:
    city: str
    key: str
    helpful: int
    unhelpful: int


@dataclass(frozen=True, slots=True)
class CaseData:
    id: int
    chat_id: int
    city: str
    language: str
    key: str | None
    urgent: bool
    status: str
    owner_id: int | None
    group_chat_id: int
    thread_id: int | None
    card_message_id: int | None
    created_at: datetime
    claimed_at: datetime | None
    closed_at: datetime | None
    remind_at: datetime | None
    reminders: int
    rating: int | None

    @property
    def number(self) -> str:
        """The pseudonymous case number staff see, e.g. ``C-0042``."""
        return f"C-{self.id:04d}"

    @property
    def is_open(self) -> bool:
        return self.status == "open"


@dataclass(frozen=True, slots=True)
class AuditRow:
    case_id: int
    action: str
    actor_id: int | None
    detail: str | None
    created_at: datetime


_CASE_COLUMNS = (
    Case.id,
    Person.chat_id,
    Case.city,
    Case.language,
    Case.key,
    Case.urgent,
    Case.status,
    Case.owner_id,
    Case.group_chat_id,
    Case.thread_id,
    Case.card_message_id,
    Case.created_at,
    Case.claimed_at,
    Case.closed_at,
    Case.remind_at,
    Case.reminders,
    Case.rating,
)


def normalise_question(text: str) -> str:
    """The form in which unanswered questions are stored and grouped: NFC, single spaces, case-folded."""
    text = " ".join(unicodedata.normalize("NFC", text).split()).casefold()
    return text[:MAX_QUESTION_CHARS]


def _language(value: str | None) -> str | None:
    if value is not None and not (len(value) == 2 and value.isascii() and value.isalpha()):
        raise ValueError(f"language must be a two-letter code, not {value!r}")
    return value


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, not {value.isoformat()}")
    return value


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Storage:
    """Async storage on SQLite (``sqlite+aiosqlite:///var/integra.db``) or PostgreSQL (``postgresql+asyncpg://``).

    A relative SQLite path is taken from ``root`` (``Storage.from_settings`` passes the deployment's
    root). ``open()`` migrates the schema to the newest revision; every method is one transaction.
    Every time stored is ``clock()``.
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
        self.url = database_url(url, root)
        self.max_turns = max_turns
        self._clock = clock
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = utcnow) -> Self:
        """The deployment's database (``DATABASE_URL`` or config.yml; SQLite in ``var/`` by default)."""
        return cls(settings.database_url, root=settings.root, clock=clock)

    @property
    def clock(self) -> Clock:
        """The clock this storage stamps rows with: the application's one clock."""
        return self._clock

    async def open(self) -> None:
        """Connect and bring the schema up to date (a fresh SQLite file or empty database is fine)."""
        if self._engine is not None:
            return
        sqlite_backend = self.url.get_backend_name() == "sqlite"
        engine = create_async_engine(self.url, pool_pre_ping=not sqlite_backend)
        if sqlite_backend:
            event.listen(engine.sync_engine, "connect", _enable_sqlite_foreign_keys)
        try:
            await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def aclose(self) -> None:
        engine, self._engine, self._sessions = self._engine, None, None
        if engine is not None:
            await engine.dispose()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise StorageClosedError("call Storage.open() first")
        return self._engine

    def _session(self) -> AsyncSession:
        if self._sessions is None:
            raise StorageClosedError("call Storage.open() first")
        return self._sessions()

    def _upsert_person(self, values: Mapping[str, Any], update: Mapping[str, Any]) -> Any:
        """INSERT … ON CONFLICT (chat_id) DO UPDATE, returning the row: one statement, no race."""
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(Person).values(**values)
        return stmt.on_conflict_do_update(index_elements=[Person.chat_id], set_=dict(update)).returning(
            Person.id, Person.chat_id, Person.language, Person.city, Person.consent_at
        )

    # People

    async def get_person(self, chat_id: int) -> PersonData | None:
        async with self._session() as session, session.begin():
            row = (
                await session.execute(
                    select(Person.chat_id, Person.language, Person.city, Person.consent_at).where(
                        Person.chat_id == chat_id
                    )
                )
            ).one_or_none()
        return None if row is None else PersonData(*row)

    async def save_person(
        self,
        chat_id: int,
        *,
        language: str | Literal[_Unset.UNSET] | None = UNSET,
        city: str | Literal[_Unset.UNSET] | None = UNSET,
        consent_at: datetime | Literal[_Unset.UNSET] | None = UNSET,
    ) -> PersonData:
        """Create or update a person; only the fields given change. Marks the person as seen now."""
        now = self._clock()
        given: dict[str, Any] = {"last_seen_at": now}
        if language is not UNSET:
            given["language"] = _language(language)
        if city is not UNSET:
            given["city"] = city
        if consent_at is not UNSET:
            given["consent_at"] = None if consent_at is None else _aware(consent_at, "consent_at")
        stmt = self._upsert_person({"chat_id": chat_id, "created_at": now, **given}, given)
        async with self._session() as session, session.begin():
            row = (await session.execute(stmt)).one()
        return PersonData(*row[1:])

    async def forget(self, chat_id: int) -> bool:
        """Erase the person and their conversation; True if there was anything to erase."""
        async with self._session() as session, session.begin():
            deleted = await self._changed(session, delete(Person).where(Person.chat_id == chat_id))
        return deleted > 0

    # Conversation

    async def add_turn(self, chat_id: int, role: str, text: str, key: str | None = None) -> None:
        """Append a message, creating the person if needed, and keep only the newest ``max_turns``."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        now = self._clock()
        # Only the person's own messages count as being seen.
        seen = now if role == "user" else Person.last_seen_at
        upsert = self._upsert_person(
            {"chat_id": chat_id, "created_at": now, "last_seen_at": now}, {"last_seen_at": seen}
        )
        async with self._session() as session, session.begin():
            person_id = (await session.execute(upsert)).one().id
            session.add(Turn(person_id=person_id, role=role, text=text, key=key, created_at=now))
            await session.flush()
            oldest_kept = await session.scalar(
                select(Turn.id)
                .where(Turn.person_id == person_id)
                .order_by(Turn.id.desc())
                .offset(self.max_turns - 1)
                .limit(1)
            )
            if oldest_kept is not None:
                await self._changed(
                    session, delete(Turn).where(Turn.person_id == person_id, Turn.id < oldest_kept)
                )

    async def recent_turns(self, chat_id: int, limit: int = 10) -> list[TurnData]:
        """The person's last ``limit`` messages, oldest first."""
        stmt = (
            select(Turn.role, Turn.text, Turn.key, Turn.created_at)
            .join(Person, Person.id == Turn.person_id)
            .where(Person.chat_id == chat_id)
            .order_by(Turn.id.desc())
            .limit(limit)
        )
        async with self._session() as session, session.begin():
            rows = (await session.execute(stmt)).all()
        return [TurnData(*row) for row in reversed(rows)]

    # Anonymous records for editors

    async def add_feedback(self, city: str, language: str, key: str, helpful: bool) -> None:
        row = Feedback(
            city=city, language=_language(language), key=key, helpful=helpful, created_at=self._clock()
        )
        async with self._session() as session, session.begin():
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
            language=_language(language),
            text=question,
            key=key,
            confidence=float(confidence),
            created_at=self._clock(),
        )
        async with self._session() as session, session.begin():
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
            stmt = stmt.where(Unanswered.created_at >= _aware(since, "since"))
        async with self._session() as session, session.begin():
            rows = (await session.execute(stmt)).all()
        return [UnansweredRow(*row) for row in rows]

    async def feedback_report(self) -> list[FeedbackRow]:
        """Helpful and unhelpful votes per city and question key."""
        helpful = func.coalesce(func.sum(case((Feedback.helpful, 1), else_=0)), 0)
        unhelpful = func.coalesce(func.sum(case((Feedback.helpful, 0), else_=1)), 0)
        stmt = (
            select(Feedback.city, Feedback.key, helpful, unhelpful)
            .group_by(Feedback.city, Feedback.key)
            .order_by(Feedback.city, Feedback.key)
        )
        async with self._session() as session, session.begin():
            rows = (await session.execute(stmt)).all()
        return [FeedbackRow(city, key, int(yes), int(no)) for city, key, yes, no in rows]

    # Handoff cases

    def _cases(self) -> Any:
        return select(*_CASE_COLUMNS).join(Person, Person.id == Case.person_id)

    async def _one_case(self, session: AsyncSession, *where: ColumnElement[bool]) -> CaseData | None:
        row = (await session.execute(self._cases().where(*where))).one_or_none()
        return None if row is None else CaseData(*row)

    async def open_case(
        self,
        chat_id: int,
        *,
        city: str,
        language: str,
        key: str | None,
        urgent: bool,
        group_chat_id: int,
        remind_at: datetime | None,
    ) -> tuple[CaseData, bool]:
        """Open a case for a person who has consented; returns (case, True), or (the open case, False)."""
        now = self._clock()
        async with self._session() as session, session.begin():
            person_id = await session.scalar(select(Person.id).where(Person.chat_id == chat_id))
            if person_id is None:
                raise LookupError("only a person who has agreed to the privacy notice can open a case")
            existing = await self._one_case(session, Case.person_id == person_id, Case.status == "open")
            if existing is not None:
                return existing, False
            row = Case(
                person_id=person_id,
                city=city,
                language=_language(language),
                key=key,
                urgent=urgent,
                status="open",
                group_chat_id=group_chat_id,
                created_at=now,
                remind_at=None if remind_at is None else _aware(remind_at, "remind_at"),
                reminders=0,
            )
            session.add(row)
            await session.flush()
            session.add(AuditEntry(case_id=row.id, action="open", detail=key, created_at=now))
            opened = await self._one_case(session, Case.id == row.id)
        assert opened is not None
        return opened, True

    async def set_case_topic(self, case_id: int, *, thread_id: int, card_message_id: int | None) -> None:
        async with self._session() as session, session.begin():
            await session.execute(
                update(Case)
                .where(Case.id == case_id)
                .values(thread_id=thread_id, card_message_id=card_message_id)
            )

    async def get_case(self, case_id: int) -> CaseData | None:
        async with self._session() as session, session.begin():
            return await self._one_case(session, Case.id == case_id)

    async def open_case_of(self, chat_id: int) -> CaseData | None:
        """The person's open case, if any."""
        async with self._session() as session, session.begin():
            return await self._one_case(session, Person.chat_id == chat_id, Case.status == "open")

    async def case_in_topic(self, group_chat_id: int, thread_id: int) -> CaseData | None:
        """The open case discussed in a forum topic, if any."""
        async with self._session() as session, session.begin():
            return await self._one_case(
                session,
                Case.group_chat_id == group_chat_id,
                Case.thread_id == thread_id,
                Case.status == "open",
            )

    async def claim_case(self, case_id: int, staff_id: int) -> tuple[bool, CaseData | None]:
        """Make ``staff_id`` the owner if nobody owns the open case: one conditional UPDATE, so of two
        simultaneous claims exactly one wins. Returns (won, the case as it is now)."""
        now = self._clock()
        async with self._session() as session, session.begin():
            changed = await self._changed(
                session,
                update(Case)
                .where(Case.id == case_id, Case.status == "open", Case.owner_id.is_(None))
                .values(owner_id=staff_id, claimed_at=now, remind_at=None),
            )
            won = changed == 1
            if won:
                session.add(AuditEntry(case_id=case_id, action="claim", actor_id=staff_id, created_at=now))
            return won, await self._one_case(session, Case.id == case_id)

    async def mark_urgent(self, case_id: int, remind_at: datetime | None) -> bool:
        """Mark an open case urgent (a message during the case looked like danger); False if it already
        was, or is closed. An unclaimed case is reminded at ``remind_at``."""
        now = self._clock()
        async with self._session() as session, session.begin():
            changed = await self._changed(
                session,
                update(Case)
                .where(Case.id == case_id, Case.status == "open", Case.urgent.is_(False))
                .values(urgent=True),
            )
            if changed != 1:
                return False
            if remind_at is not None:
                await session.execute(
                    update(Case)
                    .where(Case.id == case_id, Case.owner_id.is_(None))
                    .values(remind_at=remind_at)
                )
            session.add(AuditEntry(case_id=case_id, action="urgent", actor_id=None, created_at=now))
            return True

    async def close_case(self, case_id: int, actor_id: int | None, action: str = "close") -> CaseData | None:
        """Close an open case (action ``close``, ``return`` or ``erase``); None if it was not open."""
        if action not in ("close", "return", "erase"):
            raise ValueError(f"cannot close a case with action {action!r}")
        now = self._clock()
        async with self._session() as session, session.begin():
            changed = await self._changed(
                session,
                update(Case)
                .where(Case.id == case_id, Case.status == "open")
                .values(status="closed", closed_at=now, remind_at=None),
            )
            if changed != 1:
                return None
            session.add(AuditEntry(case_id=case_id, action=action, actor_id=actor_id, created_at=now))
            return await self._one_case(session, Case.id == case_id)

    async def transfer_case(
        self,
        case_id: int,
        *,
        city: str,
        group_chat_id: int,
        thread_id: int,
        card_message_id: int | None,
        remind_at: datetime | None,
        actor_id: int,
    ) -> CaseData | None:
        """Move an open case to another city's group; it becomes unassigned there."""
        now = self._clock()
        async with self._session() as session, session.begin():
            changed = await self._changed(
                session,
                update(Case)
                .where(Case.id == case_id, Case.status == "open")
                .values(
                    city=city,
                    group_chat_id=group_chat_id,
                    thread_id=thread_id,
                    card_message_id=card_message_id,
                    owner_id=None,
                    claimed_at=None,
                    remind_at=remind_at,
                    reminders=0,
                ),
            )
            if changed != 1:
                return None
            session.add(
                AuditEntry(case_id=case_id, action="transfer", actor_id=actor_id, detail=city, created_at=now)
            )
            return await self._one_case(session, Case.id == case_id)

    async def due_reminders(self, now: datetime) -> list[CaseData]:
        """Open, unclaimed cases whose reminder time has come."""
        stmt = (
            self._cases()
            .where(
                Case.status == "open",
                Case.owner_id.is_(None),
                Case.thread_id.is_not(None),
                Case.remind_at <= _aware(now, "now"),
            )
            .order_by(Case.remind_at)
        )
        async with self._session() as session, session.begin():
            return [CaseData(*row) for row in (await session.execute(stmt)).all()]

    async def reminded(self, case: CaseData, next_at: datetime) -> bool:
        """Record a reminder and set the next one; False if another process did it first."""
        now = self._clock()
        async with self._session() as session, session.begin():
            changed = await self._changed(
                session,
                update(Case)
                .where(Case.id == case.id, Case.remind_at == case.remind_at, Case.owner_id.is_(None))
                .values(remind_at=_aware(next_at, "next_at"), reminders=Case.reminders + 1),
            )
            if changed != 1:
                return False
            session.add(AuditEntry(case_id=case.id, action="remind", created_at=now))
            return True

    async def rate_case(self, case_id: int, chat_id: int, rating: int) -> bool:
        """The person's 1–5 rating of a closed case of theirs; only the first rating counts."""
        if not 1 <= rating <= 5:
            raise ValueError("rating must be between 1 and 5")
        now = self._clock()
        async with self._session() as session, session.begin():
            person_id = select(Person.id).where(Person.chat_id == chat_id).scalar_subquery()
            changed = await self._changed(
                session,
                update(Case)
                .where(
                    Case.id == case_id,
                    Case.person_id == person_id,
                    Case.status == "closed",
                    Case.rating.is_(None),
                )
                .values(rating=rating),
            )
            if changed != 1:
                return False
            session.add(AuditEntry(case_id=case_id, action="rating", detail=str(rating), created_at=now))
            return True

    async def audit(
        self, case_id: int, action: str, actor_id: int | None = None, detail: str | None = None
    ) -> None:
        """Record a staff action (never message text)."""
        if action not in CASE_ACTIONS:
            raise ValueError(f"unknown case action {action!r}")
        entry = AuditEntry(
            case_id=case_id,
            action=action,
            actor_id=actor_id,
            detail=None if detail is None else detail[:128],
            created_at=self._clock(),
        )
        async with self._session() as session, session.begin():
            session.add(entry)

    async def audit_log(self, case_id: int) -> list[AuditRow]:
        stmt = (
            select(
                AuditEntry.case_id,
                AuditEntry.action,
                AuditEntry.actor_id,
                AuditEntry.detail,
                AuditEntry.created_at,
            )
            .where(AuditEntry.case_id == case_id)
            .order_by(AuditEntry.id)
        )
        async with self._session() as session, session.begin():
            return [AuditRow(*row) for row in (await session.execute(stmt)).all()]

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
        cases go after ``turns_older_than``; the audit log after ``audit_older_than``.
        """
        _aware(now, "now")
        inactive: ColumnElement[bool] = Person.last_seen_at < now - inactive_people_older_than
        async with self._session() as session, session.begin():
            turns = await self._changed(
                session,
                delete(Turn).where(
                    (Turn.created_at < now - turns_older_than)
                    | Turn.person_id.in_(select(Person.id).where(inactive))
                ),
            )
            cases = await self._changed(
                session,
                delete(Case).where(
                    ((Case.status == "closed") & (Case.closed_at < now - turns_older_than))
                    | Case.person_id.in_(select(Person.id).where(inactive))
                ),
            )
            people = await self._changed(session, delete(Person).where(inactive))
            audit = 0
            if audit_older_than is not None:
                audit = await self._changed(
                    session, delete(AuditEntry).where(AuditEntry.created_at < now - audit_older_than)
                )
            unanswered = await self._changed(
                session, delete(Unanswered).where(Unanswered.created_at < now - unanswered_older_than)
            )
        return {"turns": turns, "cases": cases, "people": people, "unanswered": unanswered, "audit": audit}

    @staticmethod
    async def _changed(session: AsyncSession, stmt: Delete | Update) -> int:
        """Run a bulk DELETE or UPDATE; how many rows it changed."""
        result = await session.execute(stmt, execution_options={"synchronize_session": False})
        assert isinstance(result, CursorResult)
        return result.rowcount
