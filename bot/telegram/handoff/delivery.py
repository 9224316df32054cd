"""The one place the handoff sends from: the case's topic, the person, relayed copies, the card.

Every send goes through the application's delivery layer (``context.delivery``: flood limits,
retries, a label sent apart from a caption it would make too long) and then through ``_attempt``: what
finally failed is logged with the case number and the error type (never a message text or a token),
and the caller gets a ``Sent`` that is false and says why (``not_delivered`` words it for staff).
When the person turns out to have blocked the bot, their case is closed (``close_for_blocked``).
"""

from __future__ import annotations

import functools
import html
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardMarkup, Message
from telegram.error import BadRequest, TelegramError

from ...storage import CaseData
from ..context import BotContext
from ..delivery import Failure, Undelivered
from ..ui import rtl, split_text
from .texts import N_, NOT_DELIVERED

__all__ = [
    "CAPTIONED",
    "Sent",
    "close_for_blocked",
    "close_topic",
    "delete_topic",
    "message_kind",
    "not_delivered",
    "pages_to_person",
    "relay_to_person",
    "relay_to_topic",
    "sendable",
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


def sendable(text: str) -> str:
    """``text`` as Telegram can take it: a lone surrogate (which has no UTF-8, so the request could not
    even be made) becomes U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Sent:
    """What became of a send: true when it arrived; otherwise ``failure`` says why."""

    failure: Failure | None = None

    def __bool__(self) -> bool:
        return self.failure is None


# Why a caseworker's message did not reach the person, in the staff group's language.
_WHY = {
    Failure.BLOCKED: NOT_DELIVERED,
    Failure.REFUSED: N_(
        "Not delivered: Telegram refused this message (for example a file it does not accept). "
        "Please send it in another form."
    ),
    Failure.UNREACHABLE: N_(
        "Not delivered: Telegram could not be reached, even after several tries. Please send it "
        "again in a few minutes."
    ),
}


def not_delivered(context: BotContext, language: str, sent: Sent) -> str:
    """For the topic: why a message to the person did not arrive (plain text, in ``language``)."""
    return "⚠️ " + context.gettext(language, _WHY[sent.failure or Failure.UNREACHABLE])


async def _attempt(
    case: CaseData, what: str, send: Callable[[], Awaitable[object]], level: int = logging.WARNING
) -> Sent:
    """Run ``send``; a false ``Sent`` (and a log line "could not ``what``") when it finally failed.

    ``what`` may name the case as ``{case}``, e.g. "write to the topic of {case}".
    """
    try:
        await send()
    except Undelivered as exc:
        logger.log(level, "could not %s: %s (%s)", what.format(case=case.number), exc.failure, exc.error)
        return Sent(exc.failure)
    except TelegramError as exc:  # a request made around the delivery layer
        logger.log(level, "could not %s: %s", what.format(case=case.number), type(exc).__name__)
        return Sent(Failure.REFUSED if isinstance(exc, BadRequest) else Failure.UNREACHABLE)
    return Sent()


async def to_topic(context: BotContext, case: CaseData, text: str) -> None:
    """A note from the bot in the case's topic (HTML)."""
    if case.thread_id is None:
        return
    thread_id = case.thread_id
    await _attempt(
        case,
        "write to the topic of {case}",
        lambda: context.delivery.send(case.group_chat_id, text, html=True, thread_id=thread_id),
    )


async def to_person(
    context: BotContext, case: CaseData, text: str, markup: InlineKeyboardMarkup | None = None
) -> Sent:
    """A message from the bot to the person, in their writing direction; false if it did not arrive."""
    return await _attempt(
        case,
        "write to the person of {case}",
        lambda: context.delivery.send(case.chat_id, rtl(case.language, text), markup=markup),
    )


async def pages_to_person(
    context: BotContext, case: CaseData, pages: Sequence[str], what: str, *, each: bool = False
) -> Sent:
    """An answer card (HTML pages) to the person. ``each``: try every page even when one fails (the
    emergency numbers); otherwise stop at the first failure. False if any page did not arrive."""

    async def send(page: str) -> None:
        await context.delivery.send(case.chat_id, page, html=True, preview=False)

    if each:
        delivered = Sent()
        for page in pages:
            sent = await _attempt(case, what, functools.partial(send, page))
            delivered = delivered and sent
        return delivered

    async def send_all() -> None:
        for page in pages:
            await send(page)

    return await _attempt(case, what, send_all)


async def relay_to_topic(
    context: BotContext,
    case: CaseData,
    message: Message,
    kind: str,
    label: str,
    *,
    copies: list[int] | None = None,
) -> Sent:
    """Copy the person's message into the case's topic, marked 👤 (``label``: the topic it seems to be
    about, added to texts). ``copies`` gets the message ids of the copies an edit can change."""
    thread_id = case.thread_id
    made = [] if copies is None else copies

    async def send() -> None:
        if message.text is not None:
            for chunk in split_text("👤 " + sendable(message.text) + label):
                sent = await context.delivery.send(case.group_chat_id, chunk, thread_id=thread_id)
                made.append(sent.message_id)
        else:
            mark = "👤" if kind in CAPTIONED else None
            copied = await context.delivery.copy(
                case.group_chat_id, message, thread_id=thread_id, label=mark, joiner=" "
            )
            if kind in CAPTIONED:
                made.append(copied.message_id)

    return await _attempt(case, "copy a message into the topic of {case}", send, logging.ERROR)


async def relay_to_person(
    context: BotContext,
    case: CaseData,
    message: Message,
    kind: str,
    label: str,
    *,
    copies: list[int] | None = None,
) -> Sent:
    """Copy a staff member's message to the person, under ``label`` (who it is from). ``copies`` gets
    the message ids of the copies an edit can change. A label that would push a caption over 1,024
    characters goes as a message of its own, just before the copy."""
    made = [] if copies is None else copies

    async def send() -> None:
        if message.text is not None:
            for chunk in split_text(label + "\n" + sendable(message.text)):
                sent = await context.delivery.send(case.chat_id, rtl(case.language, chunk))
                made.append(sent.message_id)
        elif kind in CAPTIONED:
            copied = await context.delivery.copy(case.chat_id, message, label=label)
            made.append(copied.message_id)
        else:
            await context.delivery.send(case.chat_id, rtl(case.language, label))
            await context.delivery.copy(case.chat_id, message)

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
        lambda: context.delivery.edit_markup(case.group_chat_id, card_id, markup),
        level,
    )


async def delete_topic(context: BotContext, case: CaseData) -> bool:
    """Delete the case's forum topic with all its messages; False when the bot may not (it needs the
    right to delete messages) or Telegram refuses."""
    if case.thread_id is None:
        return False
    thread_id = case.thread_id
    deleted = await _attempt(
        case,
        "delete the topic of {case}",
        lambda: context.bot.delete_forum_topic(case.group_chat_id, thread_id),
        logging.INFO,
    )
    return bool(deleted)


async def close_topic(context: BotContext, case: CaseData) -> None:
    """Close the case's forum topic (it stays readable)."""
    if case.thread_id is None:
        return
    thread_id = case.thread_id
    await _attempt(
        case,
        "close the topic of {case}",
        lambda: context.delivery.request(
            case.group_chat_id, lambda: context.bot.close_forum_topic(case.group_chat_id, thread_id)
        ),
        logging.INFO,
    )


async def close_for_blocked(context: BotContext, chat_id: int) -> None:
    """The person blocked the bot: their open case closes, and its topic says why."""
    case = await context.storage.cases.open_of(chat_id)
    if case is None or await context.storage.cases.close(case.id, None, "blocked") is None:
        return
    group = context.settings.staff_group(case.city, case.partner)
    language = group.language if group is not None else context.settings.default_language
    _ = context.translations(language).gettext
    # TRANSLATORS: in the case's topic; {case} is the case number, e.g. C-0042.
    note = _(
        "{case}: the person has blocked the bot, so nothing more can reach them. This case is closed."
    ).format(case=case.number)
    await to_topic(context, case, "🚫 " + html.escape(note))
    await update_card(context, case, None, logging.INFO)
    await close_topic(context, case)
