"""Storage: what the bot keeps, and no more (SQLite or PostgreSQL, schema through Alembic migrations).

- people: the Telegram chat id, language, city and consent time — no names, usernames or phone numbers;
- turns: the last few messages of a conversation, for a handoff to a caseworker;
- cases: conversations handed to a caseworker (city, language, owner, forum topic);
- audit: who claimed, replied to, closed or transferred a case, and when (never message text);
- referrals: a case handed from one partner organisation to another, and the person's consent;
- feedback and unanswered questions: for editors, not linked to any person;
- usage: each question's outcome and each vote, under a pseudonym, for the city insights report;
- inbox: Telegram updates until they are handled (then only their ids, for a day).
"""

from ._cases import CaseStore
from ._database import StorageClosedError
from ._inbox import InboxItem, InboxStore
from ._migrate import DEFAULT_URL, database_url
from ._models import CASE_ACTIONS, ROLES
from ._records import (
    UNSET,
    AuditRow,
    CaseData,
    EndedTopicData,
    FeedbackRow,
    PersonData,
    ReferralData,
    TurnData,
    UnansweredRow,
)
from ._referrals import ReferralStore
from ._store import Storage, normalise_question
from ._usage import QUESTION_EVENTS, HandoffRow, ReferralRow, UsageRow, UsageStore

__all__ = [
    "CASE_ACTIONS",
    "DEFAULT_URL",
    "QUESTION_EVENTS",
    "ROLES",
    "UNSET",
    "AuditRow",
    "CaseData",
    "CaseStore",
    "EndedTopicData",
    "FeedbackRow",
    "HandoffRow",
    "InboxItem",
    "InboxStore",
    "PersonData",
    "ReferralData",
    "ReferralRow",
    "ReferralStore",
    "Storage",
    "StorageClosedError",
    "TurnData",
    "UnansweredRow",
    "UsageRow",
    "UsageStore",
    "database_url",
    "normalise_question",
]
