"""Topics whose case is over: staff who write there (or press an old card's button) are told why, once
per topic; and /forget, which deals with every topic that holds the person's messages.

A topic ends when its case closes (Close, Return to bot, /close, the person blocked the bot), moves on
(a transfer or a referral opens a new topic) or is erased (/forget). The storage records that with the
change itself (``storage.cases.ended_topic``), and whether the topic has been told (``tell_once``).
"""

from __future__ import annotations

import dataclasses
import html
import logging

from telegram import Message

from ...settings import Partner
from ...storage import EndedTopicData
from ..context import BotContext
from .delivery import close_topic, delete_topic, to_topic, update_card
from .texts import N_

__all__ = ["ended_alert", "ended_here", "erase_topics", "group_of_chat", "tell_ended"]

logger = logging.getLogger(__name__)

# Said once in the topic, in the staff's language. {case} is the case number, e.g. C-0042.
_NOTICES = {
    "closed": (
        "ℹ️",
        N_(
            "This case ({case}) is closed: nothing written here reaches the person any more. If they ask "
            "for a person again, a new case opens in a new topic."
        ),
    ),
    "moved": (
        "➡️",
        N_(
            "This case ({case}) has moved to another topic: nothing written here reaches the person. "
            "Please continue in its new topic."
        ),
    ),
    "erased": (
        "🗑",
        N_(
            "The person asked to delete their data, so this case ({case}) is over: nothing written here "
            "reaches them. Please delete this topic: it holds copies of their messages."
        ),
    ),
}
# A pressed button's answer (a pop-up of at most 200 characters).
_ALERTS = {
    "closed": N_("This case is already closed."),
    "moved": N_("This case has moved to another topic."),
    "erased": N_("The person asked to delete their data; this case is over."),
}


def group_of_chat(context: BotContext, chat_id: int) -> Partner | None:
    """The staff group (a partner organisation's) whose forum ``chat_id`` is."""
    partners = context.settings.all_partners()
    return next((partner for _city, partner in partners if partner.chat_id == chat_id), None)


def _notice(context: BotContext, ended: EndedTopicData, language: str) -> str:
    icon, text = _NOTICES[ended.reason]
    return icon + " " + context.gettext(language, text).format(case=ended.number)


async def ended_here(context: BotContext, message: Message) -> tuple[EndedTopicData, Partner] | None:
    """The ended topic ``message`` is in, and its staff group; None when it is not in one."""
    if message.message_thread_id is None or not message.is_topic_message:
        return None
    ended = await context.storage.cases.ended_topic(message.chat.id, message.message_thread_id)
    group = group_of_chat(context, message.chat.id) if ended else None
    return None if ended is None or group is None else (ended, group)


async def tell_ended(context: BotContext, message: Message, ended: EndedTopicData, group: Partner) -> None:
    """Staff wrote (or sent a command) in a topic whose case is over: say why, once per topic."""
    if await context.storage.cases.tell_once(ended.group_chat_id, ended.thread_id):
        await message.reply_text(_notice(context, ended, group.language))


def ended_alert(context: BotContext, ended: EndedTopicData, group: Partner) -> str:
    """Why a button on an old card of the topic does nothing (a pop-up)."""
    return context.gettext(group.language, _ALERTS[ended.reason])


async def erase_topics(context: BotContext, chat_id: int) -> None:
    """The person used /forget (their open case is closed already): every topic that holds their
    messages — of open and closed cases, and those a case moved away from — is deleted where the bot
    has the right to; otherwise staff there are asked to delete it. Both are audited (no texts)."""
    storage = context.storage
    for topic in await storage.cases.erase_topics(chat_id):
        case = await storage.cases.get(topic.case_id)
        if case is None:
            continue
        there = dataclasses.replace(case, group_chat_id=topic.group_chat_id, thread_id=topic.thread_id)
        if await delete_topic(context, there):
            await storage.cases.topic_deleted(topic.group_chat_id, topic.thread_id)
            await storage.cases.audit(case.id, "topic_deleted")
            continue
        group = group_of_chat(context, topic.group_chat_id)
        language = group.language if group is not None else context.settings.default_language
        await to_topic(context, there, html.escape(_notice(context, topic, language)))
        await storage.cases.tell_once(topic.group_chat_id, topic.thread_id)
        if (case.group_chat_id, case.thread_id) == (topic.group_chat_id, topic.thread_id):
            await update_card(context, case, None, logging.INFO)
        await close_topic(context, there)
        await storage.cases.audit(case.id, "delete_asked")
