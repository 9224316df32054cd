"""Edited messages: handled here, before anything else, and never as new messages.

- During a case, an edit of a relayed message changes its copy on the other side (``handoff.edits``),
  both ways; it is not relayed, answered or audited again.
- Outside a case, a corrected question is answered again only when the correction changes what the
  bot understands it to be about (its key); otherwise the answer already given stands and nothing is
  sent. An edit of a message that was never taken as a question (it came before the person agreed to
  the privacy notice, say) is answered as a question. Updates of one chat are handled in order, so
  the original message has been answered (or failed) before its edit is looked at: a correction made
  "before the answer arrived" is treated the same way, and a person gets at most one answer per
  version of the question that changes its meaning.
- Edited commands (/human, /send, /note …) do nothing: they were handled when first sent.
"""

from __future__ import annotations

from telegram import Message, Update
from telegram.constants import ChatType
from telegram.ext import ApplicationHandlerStop

from ..engine import InvalidQuestion, UnknownCity
from . import handlers
from .context import BotContext
from .handoff.edits import edit_from_person, edit_from_staff
from .handoff.staff import is_staff

__all__ = ["edited"]


async def edited(update: Update, context: BotContext) -> None:
    """Group -3 for every update: an edited message is handled here and goes no further."""
    message = update.edited_message
    if message is None:
        if update.edited_channel_post or update.edited_business_message:
            raise ApplicationHandlerStop
        return
    if message.chat.type == ChatType.PRIVATE:
        await _from_person(update, context, message)
    elif message.is_topic_message and message.message_thread_id is not None:
        await _from_staff(update, context, message)
    raise ApplicationHandlerStop


async def _from_person(update: Update, context: BotContext, message: Message) -> None:
    storage = context.storage
    chat_id = message.chat.id
    case = await storage.cases.open_of(chat_id)
    if case is not None:
        await edit_from_person(context, case, message)
        return
    text = message.text
    if text is None or text.startswith("/") or await storage.relayed.from_person(chat_id, message.message_id):
        return
    person = await storage.get_person(chat_id)
    if person is None or person.consent_at is None or person.city is None:
        return
    asked, key = await storage.question_key(chat_id, message.message_id)
    if asked:
        language = await handlers.language_of(update, context)
        try:
            reply = await context.services.engine.ask(text, person.city, language)
        except (InvalidQuestion, UnknownCity):
            return
        if reply.key == key:
            return  # the same question in other words: the answer given stands
    await handlers.question(update, context)


async def _from_staff(update: Update, context: BotContext, message: Message) -> None:
    assert message.message_thread_id is not None
    case = await context.storage.cases.in_topic(message.chat.id, message.message_thread_id)
    if case is None:
        return
    group = context.settings.staff_group(case.city, case.partner)
    if group is None or not await is_staff(context, group, update.effective_user):
        return
    await edit_from_staff(context, case, group.language, message)
