"""The buttons of a private chat: one handler per kind of button (see ``callbacks.py``).

Every handler starts the same way (``_pressed``): the query is answered, and data that is forged or
stale (it does not parse, or names a language, city, topic or key this deployment does not have) is
ignored.
"""

from __future__ import annotations

from typing import TypeVar

from telegram import InlineKeyboardMarkup, Message, Update

from ..language import native_name
from . import callbacks, handoff
from .context import BotContext
from .handlers import (
    after_consent,
    ask_human,
    change_city,
    change_language,
    language_of,
    menu,
    privacy_notice,
    send_text,
    show_reply,
    struggling,
    topic_names,
    welcome,
)
from .ui import person_button, rows

__all__ = [
    "city_button",
    "consent_button",
    "feedback_button",
    "forget_button",
    "human_button",
    "key_button",
    "language_button",
    "languages_button",
    "menu_button",
    "topic_button",
]

B = TypeVar("B", bound=callbacks.Button)


async def _pressed(update: Update, context: BotContext, kind: type[B]) -> tuple[B, int, str] | None:
    """The button of ``kind`` pressed in this chat, the chat id and the person's language, with the
    query answered; None when the data is forged or stale (then nothing else happens)."""
    query, chat = update.callback_query, update.effective_chat
    if query is None or chat is None:
        return None
    lang = await language_of(update, context)
    await query.answer()
    button = kind.parse(query.data)
    return None if button is None else (button, chat.id, lang)


async def languages_button(update: Update, context: BotContext) -> None:
    """ "Other languages": show the language picker."""
    if await _pressed(update, context, callbacks.Languages) is not None:
        await change_language(update, context)


async def language_button(update: Update, context: BotContext) -> None:
    """A language chosen: remember it, then the privacy notice (or, after consent, confirm it)."""
    if (pressed := await _pressed(update, context, callbacks.ChooseLanguage)) is None:
        return
    choice, chat_id, _lang = pressed
    if choice.code not in context.settings.languages:
        return
    storage = context.storage
    context.state.language = choice.code
    person = await storage.get_person(chat_id)
    if person and person.consent_at:
        await storage.save_person(chat_id, language=choice.code)
        _ = context.translations(choice.code).gettext
        await send_text(
            update, _("Language changed to {language}.").format(language=native_name(choice.code))
        )
        if not person.city:
            await change_city(update, context)
    else:
        await privacy_notice(update, context, choice.code)


async def consent_button(update: Update, context: BotContext) -> None:
    """ "I agree": store the consent, then ask for the city (unless a deep link chose it)."""
    if (pressed := await _pressed(update, context, callbacks.Consent)) is None:
        return
    _button, chat_id, lang = pressed
    await context.storage.save_person(chat_id, language=lang, consent_at=context.clock())
    await after_consent(update, context, lang)


async def city_button(update: Update, context: BotContext) -> None:
    """A city chosen: store it and welcome the person (before consent: remember it for later)."""
    if (pressed := await _pressed(update, context, callbacks.ChooseCity)) is None:
        return
    choice, chat_id, lang = pressed
    if choice.city not in context.settings.cities:
        return
    person = await context.storage.get_person(chat_id)
    if not (person and person.consent_at):
        context.state.pending_city = choice.city
        await privacy_notice(update, context, lang)
        return
    await context.storage.save_person(chat_id, city=choice.city)
    await welcome(update, context, lang, choice.city)


async def menu_button(update: Update, context: BotContext) -> None:
    """ "Browse topics" / "All topics": the topic menu."""
    if await _pressed(update, context, callbacks.Menu) is not None:
        await menu(update, context)


async def topic_button(update: Update, context: BotContext) -> None:
    """A topic of the menu: its questions as buttons."""
    if (pressed := await _pressed(update, context, callbacks.ShowTopic)) is None:
        return
    choice, _chat_id, lang = pressed
    kb = context.services.kb
    if choice.topic not in kb.taxonomy.topics:
        return
    _ = context.translations(lang).gettext
    buttons = [callbacks.ShowKey(k).button(kb.title(k, lang)) for k in kb.taxonomy.topics[choice.topic]]
    back = callbacks.Menu().button("⬅️ " + _("All topics"))
    await send_text(
        update, topic_names(context, lang)[choice.topic], InlineKeyboardMarkup([*rows(buttons, 1), [back]])
    )


async def key_button(update: Update, context: BotContext) -> None:
    """A question chosen from the menu or from "did you mean…": its answer."""
    if (pressed := await _pressed(update, context, callbacks.ShowKey)) is None:
        return
    choice, chat_id, lang = pressed
    if choice.key not in context.services.kb.taxonomy.content_keys:
        return
    storage = context.storage
    person = await storage.get_person(chat_id)
    assert person is not None and person.city is not None  # require_consent ran first
    reply = context.services.engine.answer_key(choice.key, person.city, lang)
    await storage.add_turn(chat_id, "bot", reply.text[:500], choice.key)
    await show_reply(update, context, reply)


async def feedback_button(update: Update, context: BotContext) -> None:
    """👍 / 👎 under an answer: count it (anonymously); a 👎 offers a person, and may hand over."""
    if (pressed := await _pressed(update, context, callbacks.Feedback)) is None:
        return
    vote, chat_id, lang = pressed
    if vote.key not in context.services.kb.taxonomy.content_keys:
        return
    person = await context.storage.get_person(chat_id)
    if person and person.city:
        await context.storage.add_feedback(person.city, lang, vote.key, vote.helpful)
        vote_event = "helpful" if vote.helpful else "unhelpful"
        await context.storage.usage.record(chat_id, person.city, lang, vote.key, vote_event)
    _ = context.translations(lang).gettext
    if vote.helpful:
        context.state.reset()
        await send_text(update, _("Thank you for your feedback!"))
    else:
        keyboard = InlineKeyboardMarkup([[person_button(_)]])
        await send_text(
            update,
            _("Sorry this did not help. You can ask in other words, or talk to a person."),
            keyboard,
        )
    query = update.callback_query
    if query is not None and isinstance(query.message, Message):
        await query.message.edit_reply_markup(None)
    if not vote.helpful:
        await struggling(update, context, unhelpful_answer=True)


async def human_button(update: Update, context: BotContext) -> None:
    """ "Talk to a person"."""
    if await _pressed(update, context, callbacks.Human) is not None:
        await ask_human(update, context)


async def forget_button(update: Update, context: BotContext) -> None:
    """ "Yes, delete my data": end an open case, then delete everything stored about this chat."""
    if (pressed := await _pressed(update, context, callbacks.Forget)) is None:
        return
    _button, chat_id, lang = pressed
    context.state.pending_city = None
    await handoff.end_case_for_erasure(context, chat_id)
    deleted = await context.storage.forget(chat_id)
    if context.user_data is not None:
        context.user_data.clear()
    _ = context.translations(lang).gettext
    text = _("All your data has been deleted.") if deleted else _("I had no data stored about you.")
    await send_text(update, text + " " + _("Send /start to begin again."))
