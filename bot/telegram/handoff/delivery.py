"""The one place the handoff sends from: the case's topic, the person, relayed copies, the card.

Every send goes through ``_attempt``: a Telegram error is logged with the case number and the error
type (never a message text or a token) and the caller learns that the send failed, so it can tell
whoever is waiting. Replies to a staff member's own command are not sent here: they go back to the
message that asked (``message.reply_text``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence

from telegram import InlineKeyboardMarkup, Message
from telegram.error import TelegramError

from ...storage import CaseData
from ..context import BotContext
from ..ui import rtl, split_text

__all__ = [
    "CAPTIONED",
    "close_topic",
    "message_kind",
    "open_topic",
    "pages_to_person",
    "relay_to_person",
    "relay_to_topic",
    "to_person",
    "to_topic",
    "update_card",
]

logger = logging.getLogger(__name__)

# Message kinds whose copies can carry a caption (the "from a caseworker" / "from the person" mark).
CAPTIONED = ("photo", "document", "voice", "video", "audio", "animation")


def message_kind(message: Message) -> str:
    """What a message holds, e.g. ``photo`` or ``location``; ``message`` for plain text."""
    for kind in (*CAPTIONED, "sticker", "video_note", "location", "contact", "poll", "dice"):
        if getattr(message, kind, None):
            return kind
    return "message"


async def _attempt(
    case: CaseData, what: str, send: Callable[[], Awaitable[object]], level: int = logging.WARNING
) -> bool:
    """Run ``send``; False (and a log line "could not ``what``") when Telegram refuses it.

    ``what`` may name the case as ``{case}``, e.g. "write to the topic of {case}".
    """
    try:
        await send()
    except TelegramError as exc:
        logger.log(level, "could not %s: %s", what.format(case=case.number), type(exc).__name__)
        return False
    return True


async def open_topic(
    context: BotContext,
    case: CaseData,
    chat_id: int,
    title: str,
    card: str,
    keyboard: InlineKeyboardMarkup,
    *,
    where: str = "",
) -> tuple[int, int] | None:
    """Open a forum topic in ``chat_id`` and post the case card (HTML) in it; returns (thread id,
    card message id), or None when the group cannot be reached."""
    opened: list[int] = []

    async def send() -> None:
        topic = await context.bot.create_forum_topic(chat_id, title)
        posted = await context.bot.send_message(
            chat_id,
            card,
            message_thread_id=topic.message_thread_id,
            parse_mode="HTML",
            reply_markup=keyboard,
            disable_web_page_preview=True,
        )
        opened.extend((topic.message_thread_id, posted.message_id))

    if not await _attempt(case, "open a topic for {case}" + where, send, logging.ERROR):
        return None
    return opened[0], opened[1]


async def to_topic(context: BotContext, case: CaseData, text: str) -> None:
    """A note from the bot in the case's topic (HTML)."""
    if case.thread_id is None:
        return
    thread_id = case.thread_id
    await _attempt(
        case,
        "write to the topic of {case}",
        lambda: context.bot.send_message(
            case.group_chat_id, text, message_thread_id=thread_id, parse_mode="HTML"
        ),
    )


async def to_person(
    context: BotContext, case: CaseData, text: str, markup: InlineKeyboardMarkup | None = None
) -> bool:
    """A message from the bot to the person, in their writing direction; False if it did not arrive."""
    return await _attempt(
        case,
        "write to the person of {case}",
        lambda: context.bot.send_message(case.chat_id, rtl(case.language, text), reply_markup=markup),
    )


async def pages_to_person(
    context: BotContext, case: CaseData, pages: Sequence[str], what: str, *, each: bool = False
) -> bool:
    """An answer card (HTML pages) to the person. ``each``: try every page even when one fails (the
    emergency numbers); otherwise stop at the first failure. False if any page did not arrive."""

    async def send(page: str) -> None:
        await context.bot.send_message(case.chat_id, page, parse_mode="HTML", disable_web_page_preview=True)

    if each:
        delivered = True
        for page in pages:
            delivered = await _attempt(case, what, functools.partial(send, page)) and delivered
        return delivered

    async def send_all() -> None:
        for page in pages:
            await send(page)

    return await _attempt(case, what, send_all)


async def relay_to_topic(
    context: BotContext, case: CaseData, message: Message, kind: str, label: str
) -> bool:
    """Copy the person's message into the case's topic, marked 👤 (``label``: the topic it seems to be
    about, added to texts)."""
    thread_id = case.thread_id

    async def send() -> None:
        if message.text is not None:
            for chunk in split_text("👤 " + message.text + label):
                await context.bot.send_message(case.group_chat_id, chunk, message_thread_id=thread_id)
        else:
            caption = "👤 " + (message.caption or "") if kind in CAPTIONED else None
            await message.copy(case.group_chat_id, message_thread_id=thread_id, caption=caption)

    return await _attempt(case, "copy a message into the topic of {case}", send, logging.ERROR)


async def relay_to_person(
    context: BotContext, case: CaseData, message: Message, kind: str, label: str
) -> bool:
    """Copy a staff member's message to the person, under ``label`` (who it is from)."""

    async def send() -> None:
        if message.text is not None:
            for chunk in split_text(label + "\n" + message.text):
                await context.bot.send_message(case.chat_id, rtl(case.language, chunk))
        elif kind in CAPTIONED:
            caption = label + ("\n" + message.caption if message.caption else "")
            await message.copy(case.chat_id, caption=caption)
        else:
            await context.bot.send_message(case.chat_id, rtl(case.language, label))
            await message.copy(case.chat_id)

    return await _attempt(case, "deliver a reply of {case}", send)


async def update_card(
    context: BotContext, case: CaseData, markup: InlineKeyboardMarkup | None, level: int = logging.WARNING
) -> None:
    """Change the buttons of the case card (None: remove them)."""
    if case.card_message_id is None:
        return
    card_id = case.card_message_id
    await _attempt(
        case,
        "update the card of {case}",
        lambda: context.bot.edit_message_reply_markup(case.group_chat_id, card_id, reply_markup=markup),
        level,
    )


async def close_topic(context: BotContext, case: CaseData) -> None:
    """Close the case's forum topic (it stays readable)."""
    if case.thread_id is None:
        return
    thread_id = case.thread_id
    await _attempt(
        case,
        "close the topic of {case}",
        lambda: context.bot.close_forum_topic(case.group_chat_id, thread_id),
        logging.INFO,
    )
