"""Reminders for cases nobody has claimed: when they are due, and the job that sends them.

The due times live in the database, so a restart loses none.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import TYPE_CHECKING

from ..context import BotContext
from .delivery import to_person, to_topic
from .texts import person_texts

if TYPE_CHECKING:
    from ...settings import StaffGroup

__all__ = ["remind_after", "remind_unclaimed", "reminder_time"]


def _minutes(delta: dt.timedelta) -> int:
    return max(1, round(delta.total_seconds() / 60))


def remind_after(context: BotContext, urgent: bool) -> float:
    """Minutes a case may wait unclaimed before the group is reminded."""
    handoff = context.settings.handoff
    return handoff.urgent_remind_after_minutes if urgent else handoff.remind_after_minutes


def reminder_time(context: BotContext, group: StaffGroup, after: dt.datetime, urgent: bool) -> dt.datetime:
    """Urgent cases are reminded around the clock; others when staff are at work."""
    due = after + dt.timedelta(minutes=remind_after(context, urgent))
    return due if urgent else group.hours().next_opening(due)


async def remind_unclaimed(context: BotContext) -> None:
    """Job: remind the group of cases nobody has claimed, and tell the person about the wait."""
    storage = context.storage
    now = context.clock()
    for case in await storage.cases.due_reminders(now):
        group = context.settings.staff_group(case.city, case.partner)
        if group is None:
            continue
        if not await storage.cases.reminded(case, reminder_time(context, group, now, case.urgent)):
            continue  # another instance reminded it first
        minutes = _minutes(now - case.created_at)
        staff = context.translations(group.language)
        await to_topic(
            context,
            case,
            "⏰ "
            + html.escape(
                staff.ngettext(
                    "{number} has been waiting {minutes} minute for a caseworker. Who can take it?",
                    "{number} has been waiting {minutes} minutes for a caseworker. Who can take it?",
                    minutes,
                ).format(number=case.number, minutes=minutes)
            ),
        )
        if case.reminders == 0:
            person = person_texts(context, case)
            text = person.ngettext(
                "Sorry for the wait: you have been waiting {minutes} minute. The caseworkers are busy, but "
                "your conversation is in the queue and nothing you wrote is lost.",
                "Sorry for the wait: you have been waiting {minutes} minutes. The caseworkers are busy, but "
                "your conversation is in the queue and nothing you wrote is lost.",
                minutes,
            ).format(minutes=minutes)
            await to_person(context, case, text)
