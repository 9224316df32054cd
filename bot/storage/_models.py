"""The database schema as ORM classes. The schema itself is created only by the Alembic migrations."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

ROLES = ("user", "bot", "staff")
CASE_ACTIONS = (
    "open",
    "claim",
    "reply",
    "note",
    "send",
    "quick",
    "transfer",
    "remind",
    "close",
    "return",
    "erase",
    "rating",
    "urgent",
    "refer",
    "consent",
    "blocked",
    # After /forget: the topic was deleted, or (without the right to) staff were asked to delete it.
    "topic_deleted",
    "delete_asked",
)
MAX_QUESTION_CHARS = 500

# Deterministic constraint names, so that later migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# A 64-bit surrogate key that is still SQLite's auto-incrementing rowid.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware instant, stored in UTC; SQLite (which has no time zones) returns it aware too.

    Naive datetimes are refused: their meaning depends on the machine that made them.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# What PostgreSQL refuses in text (NUL) and what no UTF-8 encoder accepts (a lone surrogate, which a
# JSON "\ud800" escape can produce): both become U+FFFD when stored.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class SafeText(TypeDecorator[str]):
    """Text from people, stored safely on every backend: NUL and lone surrogates become U+FFFD.

    The one place the storage cleans text: every column that holds what someone wrote uses it.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else _UNSTORABLE.sub("\ufffd", value)


class SafeString(TypeDecorator[str]):
    """``SafeText`` of at most ``length`` characters."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else _UNSTORABLE.sub("\ufffd", value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class Person(Base):
    """Someone who wrote to the bot: only what the conversation needs, no names or phone numbers."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    language: Mapped[str | None] = mapped_column(String(2))
    city: Mapped[str | None] = mapped_column(String(64))
    consent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime] = mapped_column(index=True)
    # When the person blocked the bot (Telegram answered 403); empty again once they unblock it.
    blocked_at: Mapped[datetime | None]


class Turn(Base):
    """One message of the recent conversation, kept for a handoff to a caseworker."""

    __tablename__ = "turns"
    __table_args__ = (
        CheckConstraint("role IN ('user', 'bot', 'staff')", name="role"),
        Index("ix_turns_person_id_id", "person_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    person_id: Mapped[int] = mapped_column(Id, ForeignKey("people.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(SafeText())
    key: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(index=True)
    # Which Telegram message the turn was (the person's own messages), so an edit is recognised.
    message_id: Mapped[int | None] = mapped_column(BigInteger)


class Feedback(Base):
    """Whether an answer helped; deliberately not linked to the person who said so."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    city: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2))
    key: Mapped[str] = mapped_column(String(128))
    helpful: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]


class Unanswered(Base):
    """A question the bot could not answer, for editors; deliberately not linked to the person."""

    __tablename__ = "unanswered"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    city: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2))
    text: Mapped[str] = mapped_column(SafeString(MAX_QUESTION_CHARS))
    key: Mapped[str | None] = mapped_column(String(128))
    confidence: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(index=True)


class Case(Base):
    """A conversation handed to a caseworker: one forum topic in a city's staff group.

    Owner: the bot (closed), nobody (open, ``owner_id`` empty) or one staff member (``owner_id``).
    """

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'closed')", name="status"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating"),
        # At most one open case per person.
        Index(
            "uq_cases_open_person",
            "person_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_cases_topic", "group_chat_id", "thread_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    person_id: Mapped[int] = mapped_column(Id, ForeignKey("people.id", ondelete="CASCADE"), index=True)
    city: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2))
    key: Mapped[str | None] = mapped_column(String(128))
    urgent: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(8))
    owner_id: Mapped[int | None] = mapped_column(BigInteger)
    group_chat_id: Mapped[int] = mapped_column(BigInteger)
    thread_id: Mapped[int | None] = mapped_column(BigInteger)
    card_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    remind_at: Mapped[datetime | None] = mapped_column(index=True)
    reminders: Mapped[int] = mapped_column(SmallInteger)
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    # The partner organisation the case is with (its id in config.yml); empty for cases from before
    # partners existed: the city's default partner.
    partner: Mapped[str | None] = mapped_column(String(64))


class Referral(Base):
    """A case handed from one partner organisation to another (``/refer``): whether the person let
    their conversation go with it, and when the other partner took it. Nothing personal."""

    __tablename__ = "referrals"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    case_id: Mapped[int] = mapped_column(Id, ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    city: Mapped[str] = mapped_column(String(64))
    from_partner: Mapped[str] = mapped_column(String(64))
    to_partner: Mapped[str] = mapped_column(String(64))
    # None until the person answers; True: their recent conversation went across too.
    consent: Mapped[bool | None] = mapped_column(Boolean)
    # The referring partner's topic, where the bot says when the referral is claimed.
    from_chat_id: Mapped[int] = mapped_column(BigInteger)
    from_thread_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(index=True)
    claimed_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Who did what to a case, and when. Never message text; kept after the person is erased."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    case_id: Mapped[int] = mapped_column(Id, index=True)
    action: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[str | None] = mapped_column(SafeString(128))
    created_at: Mapped[datetime] = mapped_column(index=True)
    # The partner organisation the case was with when this happened (the acting one).
    partner: Mapped[str | None] = mapped_column(String(64))


class EndedTopic(Base):
    """A forum topic a case has left: closed (``closed``), moved to another topic by a transfer or a
    referral (``moved``), or ended because the person deleted their data (``erased``). Staff who write
    there are told so once (``told_at``); /forget finds every topic that holds the person's messages.
    Ids only, no person: like the audit log, it stays when the person is erased."""

    __tablename__ = "ended_topics"
    __table_args__ = (CheckConstraint("reason IN ('closed', 'moved', 'erased')", name="reason"),)

    group_chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    thread_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(Id, index=True)
    reason: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(index=True)
    told_at: Mapped[datetime | None]


class CaseSetup(Base):
    """The next step of a case being opened, transferred or referred (topic, card, notice): resumable
    after a crash."""

    __tablename__ = "case_setup"
    __table_args__ = (
        CheckConstraint("kind IN ('open', 'transfer', 'refer')", name="kind"),
        CheckConstraint("step IN ('topic', 'card', 'notice')", name="step"),
    )

    case_id: Mapped[int] = mapped_column(Id, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    step: Mapped[str] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(SmallInteger)
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    to_city: Mapped[str | None] = mapped_column(String(64))
    to_thread_id: Mapped[int | None] = mapped_column(BigInteger)
    to_card_message_id: Mapped[int | None] = mapped_column(BigInteger)
    from_group_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    from_thread_id: Mapped[int | None] = mapped_column(BigInteger)
    # A referral: the partner it goes to, and the referring caseworker's note for its card (kept only
    # until the steps are done).
    to_partner: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(SafeText())


class HandoffMessage(Base):
    """A message relayed during a case, and its copy's message id on the other side."""

    __tablename__ = "handoff_messages"
    __table_args__ = (
        CheckConstraint("origin IN ('person', 'staff')", name="origin"),
        Index("ix_handoff_messages_source", "case_id", "origin", "source_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    case_id: Mapped[int] = mapped_column(Id, ForeignKey("cases.id", ondelete="CASCADE"))
    origin: Mapped[str] = mapped_column(String(8))
    source_id: Mapped[int] = mapped_column(BigInteger)
    copy_chat_id: Mapped[int] = mapped_column(BigInteger)
    copy_id: Mapped[int] = mapped_column(BigInteger)
    part: Mapped[int] = mapped_column(SmallInteger)
    broken: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(index=True)


class UsagePerson(Base):
    """The pseudonym that stands for a person in ``usage`` (a random number). Goes with the person:
    afterwards their usage rows can no longer be tied to anyone."""

    __tablename__ = "usage_people"

    person_id: Mapped[int] = mapped_column(Id, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    pseudonym: Mapped[int] = mapped_column(BigInteger, unique=True)


class Usage(Base):
    """One question (its outcome) or one 👍/👎, for the city insights report: no text, no chat id;
    a pseudonym so that a figure can say how many different people it rests on."""

    __tablename__ = "usage"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    city: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2))
    key: Mapped[str | None] = mapped_column(String(128))
    # An outcome of a question (answer, clarify, out_of_scope, no_content…) or helpful / unhelpful.
    event: Mapped[str] = mapped_column(String(16))
    pseudonym: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(index=True)
