"""What the storage returns: plain frozen records, built from rows by column name."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Final, TypeVar

from sqlalchemy import Row

__all__ = [
    "UNSET",
    "AuditRow",
    "CaseData",
    "CaseSetupData",
    "CopyData",
    "EndedTopicData",
    "FeedbackRow",
    "PersonData",
    "ReferralData",
    "TurnData",
    "UnansweredRow",
    "record",
]


class _Unset(Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset.UNSET
"""Default of ``save_person``'s fields: leave the stored value as it is."""


@dataclass(frozen=True, slots=True)
class PersonData:
    chat_id: int
    language: str | None
    city: str | None
    consent_at: datetime | None
    # Whether the person has an open case, where the read asked (``Storage.get_person``); else None.
    open_case: bool | None = dataclasses.field(default=None, compare=False)


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
    # The partner organisation the case is with (None: the city's default partner).
    partner: str | None

    @property
    def number(self) -> str:
        """The pseudonymous case number staff see, e.g. ``C-0042``."""
        return case_number(self.id)

    @property
    def is_open(self) -> bool:
        return self.status == "open"


@dataclass(frozen=True, slots=True)
class CaseSetupData:
    """The next step of a case being opened, transferred or referred (see ``CaseSetup``)."""

    case_id: int
    kind: str
    step: str
    attempts: int
    created_at: datetime
    actor_id: int | None
    to_city: str | None
    to_thread_id: int | None
    to_card_message_id: int | None
    from_group_chat_id: int | None
    from_thread_id: int | None
    to_partner: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class CopyData:
    """One copy of a relayed message: where it is, which part of the message, and whether it can
    still be edited."""

    copy_chat_id: int
    copy_id: int
    part: int
    broken: bool


def case_number(case_id: int) -> str:
    """The pseudonymous number of a case, e.g. ``C-0042``."""
    return f"C-{case_id:04d}"


@dataclass(frozen=True, slots=True)
class EndedTopicData:
    """A forum topic a case has left, and why: ``closed``, ``moved`` or ``erased`` (see ``EndedTopic``)."""

    group_chat_id: int
    thread_id: int
    case_id: int
    reason: str
    told_at: datetime | None

    @property
    def number(self) -> str:
        return case_number(self.case_id)


@dataclass(frozen=True, slots=True)
class AuditRow:
    case_id: int
    action: str
    actor_id: int | None
    detail: str | None
    created_at: datetime
    partner: str | None


@dataclass(frozen=True, slots=True)
class ReferralData:
    id: int
    case_id: int
    city: str
    from_partner: str
    to_partner: str
    consent: bool | None
    from_chat_id: int
    from_thread_id: int | None
    created_at: datetime
    claimed_at: datetime | None
    reminded_at: datetime | None


R = TypeVar("R")


def record(kind: type[R], row: Row[Any]) -> R:
    """The record of ``kind`` whose fields are the row's columns of the same names (extra columns,
    such as an id the statement needed, are left out; a missing one is an error unless the field has
    a default)."""
    values = row._mapping
    fields = [
        f
        for f in dataclasses.fields(kind)  # type: ignore[arg-type]
        if f.name in values or f.default is dataclasses.MISSING
    ]
    return kind(**{field.name: values[field.name] for field in fields})
