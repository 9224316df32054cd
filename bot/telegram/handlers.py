"""Handlers for private chats with migrants: onboarding, questions, menus, feedback, media."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.ext import ApplicationHandlerStop

from nlu import normalise

from ..engine import InvalidQuestion, Outcome, Reply
from ..language import native_name, negotiate
from ..render import caution_text
from . import callbacks, handoff
from .context import BotContext
from .delivery import report
from .ui import (
    TOPIC_EMOJI,
    answer_card,
    answer_keyboard,
    city_keyboard,
    language_keyboard,
    menu_button,
    person_button,
    rows,
    with_intro,
)

__all__ = [
    "after_consent",
    "ask_human",
    "change_city",
    "change_language",
    "error_handler",
    "forget",
    "help_command",
    "language_of",
    "media",
    "menu",
    "privacy_notice",
    "question",
    "require_consent",
    "send_text",
    "show_reply",
    "start",
    "struggling",
    "topic_names",
    "welcome",
]

logger = logging.getLogger(__name__)

# Outcomes an editor should see in `content unanswered`.
_UNANSWERED = {Outcome.CLARIFY, Outcome.OUT_OF_SCOPE, Outcome.NO_CONTENT}
# "typing…" is shown when the answer takes longer than this (seconds); a quicker one needs no sign.
TYPING_AFTER = 0.5


def topic_names(context: BotContext, language: str) -> dict[str, str]:
    _ = context.translations(language).gettext
    return {
        "permits": _("Residence and work permits"),
        "housing": _("Housing"),
        "schools": _("Schools and education"),
        "health": _("Health"),
        "work": _("Work"),
        "services": _("Help and services"),
        "safety": _("Safety and emergencies"),
    }


async def language_of(update: Update, context: BotContext) -> str:
    """The person's language: stored, chosen in this chat, from Telegram, or the default."""
    settings = context.settings
    if context.state.language:
        return context.state.language
    chat = update.effective_chat
    person = await context.storage.get_person(chat.id) if chat else None
    if person and person.language:
        context.state.language = person.language
        return person.language
    user = update.effective_user
    return negotiate(user.language_code if user else None, settings.languages) or settings.default_language


async def send_text(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> Message | None:
    target = update.effective_message
    if target is None:
        return None
    return await target.reply_text(text, reply_markup=markup)


# --- onboarding ------------------------------------------------------------------------------------


async def start(update: Update, context: BotContext) -> None:
    """Greet, confirm the language, show the privacy notice, then ask for the city (deep link: city)."""
    settings = context.settings
    if context.args and context.args[0].lower() in settings.cities:
        context.state.pending_city = context.args[0].lower()
    lang = await language_of(update, context)
    context.state.language = lang
    _ = context.translations(lang).gettext
    keyboard = InlineKeyboardMarkup(
        [
            [callbacks.ChooseLanguage(lang).button("✅ " + native_name(lang))],
            [callbacks.Languages().button("🌐 " + _("Other languages"))],
        ]
    )
    await send_text(
        update,
        _("Hello! I answer practical questions about life in your city, with official sources.")
        + "\n\n"
        + _("Shall we continue in {language}?").format(language=native_name(lang)),
        keyboard,
    )


async def privacy_notice(update: Update, context: BotContext, lang: str) -> None:
    texts = context.translations(lang)
    _ = texts.gettext
    days = context.settings.privacy.retention_days
    stored = _(
        "Before we start: to help you, I store your chat number, your language and city, the date you "
        "agreed, and your last messages with me (so a caseworker can read them if you ask for a person). "
        "Feedback and questions I could not answer are kept without your name or number, so the "
        "information can be improved. Nothing else is stored."
    )
    # TRANSLATORS: the privacy notice's last sentences, after "… Nothing else is stored."
    # {days}: after how many days unused a conversation is deleted (privacy.retention_days, 90).
    deleted = texts.ngettext(
        "Your conversation is deleted after {days} day without use, and you can delete everything at any "
        "time with /forget.",
        "Your conversation is deleted after {days} days without use, and you can delete everything at any "
        "time with /forget.",
        days,
    ).format(days=days)
    text = stored + " " + deleted
    keyboard = InlineKeyboardMarkup([[callbacks.Consent().button("✅ " + _("I agree"))]])
    await send_text(update, text, keyboard)


async def _ask_city(update: Update, context: BotContext, lang: str) -> None:
    """The city picker."""
    _ = context.translations(lang).gettext
    keyboard = city_keyboard(context.services.engine, context.settings.cities, lang)
    await send_text(update, _("Which city do you live in?"), keyboard)


async def _ask_language(update: Update, context: BotContext, lang: str) -> None:
    """The language picker (its question in ``lang``)."""
    _ = context.translations(lang).gettext
    await send_text(update, _("Choose your language:"), language_keyboard(context.settings.languages))


async def after_consent(update: Update, context: BotContext, lang: str) -> None:
    chat = update.effective_chat
    assert chat is not None
    city = context.state.pending_city
    if city:
        await context.storage.save_person(chat.id, city=city)
        await welcome(update, context, lang, city)
        return
    await _ask_city(update, context, lang)


async def welcome(update: Update, context: BotContext, lang: str, city: str) -> None:
    engine = context.services.engine
    _ = context.translations(lang).gettext
    text = engine.conversation_text("greet", city, lang)
    keyboard = InlineKeyboardMarkup([[menu_button(_)]])
    await send_text(update, text, keyboard)


async def require_consent(update: Update, context: BotContext) -> None:
    """Group -1 for private messages: nothing is answered or stored before consent and a city."""
    if update.effective_chat is None or update.effective_chat.type != "private":
        return
    message = update.effective_message
    if message and message.text and message.text.startswith(("/start", "/forget", "/language", "/help")):
        return
    query = update.callback_query
    if query and not callbacks.needs_consent(query.data):
        return  # onboarding buttons and /forget work before consent; forged data is ignored later
    person = await context.person()
    if person and person.consent_at and person.city:
        if not context.state.language and person.language:
            context.state.language = person.language
        return
    lang = await language_of(update, context)
    if query:
        await query.answer()
    if person and person.consent_at:
        await _ask_city(update, context, lang)
    else:
        await privacy_notice(update, context, lang)
    raise ApplicationHandlerStop


# --- commands --------------------------------------------------------------------------------------


async def change_language(update: Update, context: BotContext) -> None:
    """Show the language picker."""
    await _ask_language(update, context, await language_of(update, context))


async def change_city(update: Update, context: BotContext) -> None:
    """Show the city picker."""
    await _ask_city(update, context, await language_of(update, context))


async def help_command(update: Update, context: BotContext) -> None:
    """Explain what the bot does and list the commands."""
    lang = await language_of(update, context)
    person = await context.storage.get_person(update.effective_chat.id) if update.effective_chat else None
    city = person.city if person and person.city else context.settings.cities[0]
    _ = context.translations(lang).gettext
    text = (
        context.services.engine.conversation_text("bot_capabilities", city, lang)
        + "\n\n"
        + "\n".join(f"/{name} — {description}" for name, description in command_descriptions(lang, context))
    )
    await send_text(update, text)


def command_descriptions(lang: str, context: BotContext) -> list[tuple[str, str]]:
    _ = context.translations(lang).gettext
    return [
        ("menu", _("browse topics")),
        ("human", _("talk to a person")),
        ("language", _("change the language")),
        ("city", _("change the city")),
        ("forget", _("delete my data")),
        ("help", _("what this bot can do")),
    ]


async def menu(update: Update, context: BotContext) -> None:
    """Topics as buttons, for people who prefer not to type."""
    lang = await language_of(update, context)
    _ = context.translations(lang).gettext
    names = topic_names(context, lang)
    buttons = [
        callbacks.ShowTopic(t).button(f"{TOPIC_EMOJI[t]} {names[t]}")
        for t in context.services.kb.taxonomy.topics
    ]
    await send_text(update, _("Choose a topic:"), InlineKeyboardMarkup(rows(buttons, 1)))


async def ask_human(update: Update, context: BotContext) -> None:
    """Hand the conversation to a caseworker; where the city has no staff group, show its contacts."""
    chat = update.effective_chat
    assert chat is not None
    if await handoff.open_case(update, context):
        return
    lang = await language_of(update, context)
    person = await context.storage.get_person(chat.id)
    city = person.city if person and person.city else context.settings.cities[0]
    engine = context.services.engine
    _ = context.translations(lang).gettext
    contact = engine.answer_key("services.integration_centre", city, lang)
    reply = with_intro(contact, _("These people can help you in person:"))
    for text in answer_card(engine, reply):
        await _send_html(update, text)


async def struggling(update: Update, context: BotContext, *, unhelpful_answer: bool = False) -> None:
    """Count a low-confidence or unhelpful turn; the second in a row hands over to a person."""
    if context.state.missed(unhelpful_answer=unhelpful_answer) >= 2:
        await handoff.open_case(update, context, struggling=True)


async def forget(update: Update, context: BotContext) -> None:
    """Ask for confirmation, then delete everything stored about this chat."""
    lang = await language_of(update, context)
    _ = context.translations(lang).gettext
    keyboard = InlineKeyboardMarkup([[callbacks.Forget().button("🗑 " + _("Yes, delete my data"))]])
    await send_text(update, _("Delete everything I have stored about you? This cannot be undone."), keyboard)


# --- questions -------------------------------------------------------------------------------------


async def _send_html(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    message = update.effective_message
    if message is not None:
        await message.reply_html(text, reply_markup=markup, disable_web_page_preview=True)


async def show_reply(update: Update, context: BotContext, reply: Reply) -> None:
    """Send a reply: answer card, 'did you mean…', or the engine's text, with the right buttons."""
    engine = context.services.engine
    lang = reply.language
    _ = context.translations(lang).gettext
    if reply.outcome is Outcome.CONVERSATION and reply.key == "change_language":
        await _ask_language(update, context, lang)
        return
    if reply.outcome is Outcome.CONVERSATION and reply.key == "change_city":
        await _ask_city(update, context, lang)
        return
    if reply.outcome is Outcome.HANDOFF:
        await ask_human(update, context)
        return
    markup = answer_keyboard(engine, reply)
    if reply.outcome is Outcome.OUT_OF_SCOPE:
        markup = InlineKeyboardMarkup(
            [
                [menu_button(_)],
                [person_button(_)],
            ]
        )
    if reply.outcome is Outcome.ANSWER:
        pages = answer_card(engine, reply)
        for i, page in enumerate(pages):
            await _send_html(update, page, markup if i == len(pages) - 1 else None)
    else:
        await send_text(update, reply.text, markup)


async def question(update: Update, context: BotContext) -> None:
    """Answer a free-text question."""
    message = update.effective_message
    chat = update.effective_chat
    if message is None or chat is None or message.text is None:
        return
    storage = context.storage
    person = await context.person()
    assert person is not None and person.city is not None  # require_consent ran first
    lang = await language_of(update, context)
    # "typing…" only when the answer is slow in coming (a quick one would arrive with it anyway).
    typing = context.delivery.typing(chat.id, after=TYPING_AFTER)
    try:
        reply = await context.services.engine.ask(message.text, person.city, lang)
    except InvalidQuestion as exc:
        await send_text(update, exc.message)
        return
    finally:
        typing.cancel()
    if reply.language != lang:
        context.state.language = reply.language
        await storage.save_person(chat.id, language=reply.language)
    # Both turns and, for the city insights report, the outcome under a pseudonym without the text.
    await storage.add_exchange(
        chat.id,
        message.text,
        reply.text[:500],
        reply.key,
        message_id=message.message_id,
        usage=(person.city, reply.language, str(reply.outcome)),
    )
    if reply.outcome in _UNANSWERED:
        await storage.add_unanswered(
            person.city, reply.language, normalise(message.text)[:500], reply.key, reply.confidence
        )
    await show_reply(update, context, reply)
    if reply.followup is not None:
        # The message also asked something else: that answer comes after the emergency numbers.
        await show_reply(update, context, reply.followup)
    if reply.caution:
        # Near an alarm without raising one: the emergency number and a person, in case it is more.
        _ = context.translations(reply.language).gettext
        await send_text(
            update,
            caution_text(context.services.engine, reply.language),
            InlineKeyboardMarkup([[person_button(_)]]),
        )
    if reply.urgent:
        # The emergency numbers are already on screen; now a person takes over, as urgent.
        await handoff.open_case(update, context, key=reply.key, urgent=True)
    elif reply.outcome is Outcome.CLARIFY:
        await struggling(update, context)
    elif reply.outcome is Outcome.ANSWER:
        context.state.answered()


async def media(update: Update, context: BotContext) -> None:
    """Voice notes, photos, stickers, documents, locations: say what works instead."""
    lang = await language_of(update, context)
    _ = context.translations(lang).gettext
    keyboard = InlineKeyboardMarkup(
        [
            [person_button(_)],
            [menu_button(_)],
        ]
    )
    await send_text(
        update,
        _("I can only read text messages. Please type your question, choose a topic, or talk to a person."),
        keyboard,
    )


async def error_handler(update: object, context: BotContext) -> None:
    """Log the error type (never message texts or tokens) and apologise in the person's language,
    through the delivery layer (a flood limit's ``retry_after`` is waited out first); nothing more goes
    to a person who blocked the bot."""
    chat = update.effective_chat if isinstance(update, Update) else None
    if not report(context.error, chat.id if chat else None):
        return
    if isinstance(update, Update) and update.effective_message is not None:
        try:
            lang = await language_of(update, context)
            _ = context.translations(lang).gettext
            await context.delivery.reply(
                update.effective_message,
                _(
                    "Sorry, something went wrong on my side. Please try again, "
                    "or talk to a person with /human."
                ),
            )
        except Exception as exc:  # the apology itself failed: nothing more to do
            logger.warning("could not send the apology: %s", type(exc).__name__)
