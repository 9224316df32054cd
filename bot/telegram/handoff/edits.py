"""Edits during a case: an edit of a relayed message changes its copy on the other side.

Every relayed message's copies are in ``storage.relayed`` (message ids only). The copy gets the new
text (``editMessageText``) or caption (``editMessageCaption``), with the same marks as when it was
relayed. An edit is never relayed, answered or audited as a new message. When a copy can no longer
be changed (deleted, a text that now needs another number of parts, Telegram refusing it), the
editor is told once, and later edits of that message are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from telegram import Message
from telegram.error import BadRequest, TelegramError

from ...storage import CaseData
from ...storage._records import CopyData
from ..context import BotContext
from ..ui import rtl, split_text
from .delivery import sendable
from .person import _alert_danger, _topic_label, _understand
from .texts import person_texts

__all__ = ["edit_from_person", "edit_from_staff"]

logger = logging.getLogger(__name__)


async def _change(
    context: BotContext, case: CaseData, copies: Sequence[CopyData], parts: Sequence[str], *, caption: bool
) -> bool:
    """Give each copy its new text (or caption); False when one could not be changed."""
    if len(parts) != len(copies):
        return False
    bot = context.bot
    for copy, part in zip(copies, parts, strict=True):
        try:
            if caption:
                await bot.edit_message_caption(
                    chat_id=copy.copy_chat_id, message_id=copy.copy_id, caption=part
                )
            else:
                await bot.edit_message_text(part, chat_id=copy.copy_chat_id, message_id=copy.copy_id)
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                continue  # this part did not change
            logger.warning("could not edit a copy of %s: %s", case.number, type(exc).__name__)
            return False
        except TelegramError as exc:
            logger.warning("could not edit a copy of %s: %s", case.number, type(exc).__name__)
            return False
    return True


async def edit_from_person(context: BotContext, case: CaseData, message: Message) -> None:
    """The person edited a message relayed into the case's topic: edit its copy there (with the topic
    the new text seems to be about); danger in the new text is recognised as in a new message."""
    relayed = context.storage.relayed
    copies = await relayed.copies(case.id, "person", message.message_id)
    if not copies or any(copy.broken for copy in copies):
        return
    group = context.settings.staff_group(case.city, case.partner)
    reply = await _understand(context, case, message.text or message.caption)
    label = _topic_label(context, reply, group.language) if group else ""
    if message.text is not None:
        changed = await _change(
            context, case, copies, split_text("👤 " + sendable(message.text) + label), caption=False
        )
    else:
        changed = await _change(context, case, copies, ["👤 " + (message.caption or "")], caption=True)
    try:
        if not changed:
            await relayed.mark_broken(case.id, "person", message.message_id)
            _p = person_texts(context, case).gettext
            await message.reply_text(
                _p("Your correction did not reach the caseworker. Please send it again as a new message.")
            )
    finally:
        if reply is not None and reply.urgent and group is not None:
            await _alert_danger(context, case, group, reply)


async def edit_from_staff(context: BotContext, case: CaseData, language: str, message: Message) -> None:
    """A caseworker edited a message relayed to the person: edit the person's copy (``language``: the
    staff group's, for the notice when it cannot be changed)."""
    relayed = context.storage.relayed
    copies = await relayed.copies(case.id, "staff", message.message_id)
    if not copies or any(copy.broken for copy in copies):
        return
    label = "🙋 " + person_texts(context, case).gettext("Caseworker:")
    if message.text is not None:
        parts = [rtl(case.language, chunk) for chunk in split_text(label + "\n" + sendable(message.text))]
        changed = await _change(context, case, copies, parts, caption=False)
    else:
        caption = label + ("\n" + message.caption if message.caption else "")
        changed = await _change(context, case, copies, [caption], caption=True)
    if not changed:
        await relayed.mark_broken(case.id, "staff", message.message_id)
        _ = context.translations(language).gettext
        await message.reply_text(
            "⚠️ " + _("This correction did not reach the person. Please send it again as a new message.")
        )
