"""The person's side of a case: opening it, relaying what they write, /forget, and their rating."""

from __future__ import annotations

import html

from telegram import Message, Update
from telegram.ext import ApplicationHandlerStop

from ...engine import InvalidQuestion, Outcome, Reply, UnknownCity
from ...settings import StaffGroup
from ...storage import CaseData
from ..callbacks import Rating
from ..context import BotContext
from ..ui import answer_card, rtl
from .delivery import message_kind, pages_to_person, relay_to_topic, to_person, to_topic
from .ended import erase_topics
from .reminders import reminder_time
from .setup import Progress, continue_setup
from .texts import STILL_CONNECTING, person_texts

__all__ = ["end_case_for_erasure", "open_case", "rate", "relay_from_person"]


async def _last_topic(context: BotContext, chat_id: int) -> str | None:
    """The content key the conversation was last about, for the case card."""
    content_keys = context.services.kb.taxonomy.content_keys
    for turn in reversed(await context.storage.recent_turns(chat_id, 6)):
        if turn.key in content_keys:
            return turn.key
    return None


async def open_case(
    update: Update,
    context: BotContext,
    *,
    key: str | None = None,
    urgent: bool = False,
    struggling: bool = False,
) -> bool:
    """Hand the conversation to the city's staff, about ``key`` (by default the topic the conversation
    was last about). False when the city has no staff group (or it cannot be reached): the caller
    then shows the city's contacts instead."""
    chat = update.effective_chat
    if chat is None:
        return False
    storage, settings = context.storage, context.settings
    person = await storage.get_person(chat.id)
    if person is None or person.city is None:
        return False
    lang = context.state.language or person.language or settings.default_language
    key = key or await _last_topic(context, chat.id)
    # The partner organisation that handles the topic in the person's language, else the default one.
    group = settings.route(person.city, key, lang)
    if group is None:
        return False
    _ = context.translations(lang).gettext
    now = context.clock()
    case, created = await storage.cases.open(
        chat.id,
        city=person.city,
        language=lang,
        key=key,
        urgent=urgent,
        group_chat_id=group.chat_id,
        remind_at=reminder_time(context, group, now, urgent),
        partner=group.id,
    )
    context.state.reset()
    if not created and await storage.steps.get(case.id) is None:
        await to_person(context, case, _("You are already connected to a caseworker. Just write here."))
        return True
    # A new case, or one a crash left half-open: its topic, card and notice, where it stopped.
    progress = await continue_setup(context, case.id, struggling=struggling)
    if progress is Progress.FAILED:
        return False
    if progress is not Progress.DONE:
        await to_person(context, case, _(STILL_CONNECTING))
    return True


async def _understand(context: BotContext, case: CaseData, text: str | None) -> Reply | None:
    """What the person's message seems to be about: the bot keeps understanding during a case."""
    if not text:
        return None
    try:
        return await context.services.engine.ask(text, case.city, case.language)
    except (InvalidQuestion, UnknownCity):
        return None


def _topic_label(context: BotContext, reply: Reply | None, language: str) -> str:
    """For staff: the topic a relayed message seems to be about, in the staff's language; or, for a
    message that came near the danger alarm without raising it, a request to read it first (staff
    may not read the person's language)."""
    if reply is None or reply.urgent:
        return ""
    if reply.caution:
        _ = context.translations(language).gettext
        # TRANSLATORS: shown to staff under a relayed message that came near the bot's danger alarm.
        return "\n\n⚠️ " + _(
            "The bot is not sure, but this message may be about someone in danger. Please read it first."
        )
    if reply.key not in context.services.kb.taxonomy.content_keys:
        return ""
    if reply.outcome not in (Outcome.ANSWER, Outcome.NO_CONTENT):
        return ""
    _ = context.translations(language).gettext
    # TRANSLATORS: shown to staff under a relayed message; {topic} is a topic title, {key} its /send key.
    return "\n\n🏷 " + _("Seems to be about: {topic} (/send {key})").format(
        topic=context.services.kb.title(reply.key, language), key=reply.key
    )


async def _alert_danger(context: BotContext, case: CaseData, group: StaffGroup, reply: Reply) -> None:
    """A message during a case looks like danger: the person sees the emergency numbers at once, the
    case becomes urgent and the topic gets a 🚨 alert in the staff's language."""
    pages = answer_card(context.services.engine, reply)
    await pages_to_person(context, case, pages, "show the emergency numbers for {case}", each=True)
    now = context.clock()
    await context.storage.cases.mark_urgent(case.id, reminder_time(context, group, now, urgent=True))
    _ = context.translations(group.language).gettext
    await to_topic(
        context,
        case,
        "🚨 "
        + _(
            "{case}: this message may mean the person is in danger right now. They have been shown the "
            "emergency numbers; please reply to them first."
        ).format(case=case.number),
    )


async def relay_from_person(update: Update, context: BotContext) -> None:
    """Group -1 for private non-command messages: during a case, copy them into its topic instead of
    answering, marked with the topic they seem to be about; danger is still recognised."""
    chat, message = update.effective_chat, update.effective_message
    if chat is None or message is None:
        return
    storage = context.storage
    person = await context.person()  # read once per update, with whether a case is open
    if person is None or person.open_case is False:
        return
    case = await storage.cases.open_of(chat.id)
    if case is None:
        return
    if await storage.steps.get(case.id) is not None:
        # Half-opened or half-transferred (a crash, or Telegram was unreachable): continue it first.
        await continue_setup(context, case.id)
        case = await storage.cases.open_of(chat.id)
        if case is None:
            return  # given up: the bot answers the message itself
    group = context.settings.staff_group(case.city, case.partner)
    kind = message_kind(message)
    await storage.add_turn(chat.id, "user", message.text or f"[{kind}]", None)
    reply = await _understand(context, case, message.text or message.caption)
    label = _topic_label(context, reply, group.language) if group else ""
    _p = person_texts(context, case).gettext
    try:
        copies: list[int] = []
        if case.thread_id is None:
            # Still no topic: the message is on the card when it comes; the person knows it takes longer.
            await message.reply_text(rtl(case.language, _p(STILL_CONNECTING)))
        elif not await relay_to_topic(context, case, message, kind, label, copies=copies):
            await message.reply_text(
                _p("Sorry, your message could not reach the caseworkers. Please try again in a few minutes.")
            )
        # Which copies are this message's, so that an edit of it reaches them.
        await storage.relayed.add(case.id, "person", message.message_id, case.group_chat_id, copies)
    finally:
        if reply is not None and reply.urgent and group is not None:
            await _alert_danger(context, case, group, reply)
    raise ApplicationHandlerStop


async def end_case_for_erasure(context: BotContext, chat_id: int) -> None:
    """The person used /forget: close their open case; then every topic that holds their messages
    (of open and closed cases) is deleted, or where the bot may not, staff are asked to delete it."""
    case = await context.storage.cases.open_of(chat_id)
    if case is not None:
        await context.storage.cases.close(case.id, None, "erase")
    await erase_topics(context, chat_id)


async def rate(update: Update, context: BotContext) -> None:
    """The person's 1–5 star rating after a case was closed."""
    query, chat = update.callback_query, update.effective_chat
    if query is None or chat is None:
        return
    await query.answer()
    rating = Rating.parse(query.data)
    if rating is None:
        return
    storage = context.storage
    if not await storage.cases.rate(rating.case_id, chat.id, rating.stars):
        return
    case = await storage.cases.get(rating.case_id)
    if case is None:
        return
    _p = person_texts(context, case).gettext
    if isinstance(query.message, Message):
        await query.message.edit_reply_markup(None)
    await to_person(context, case, _p("Thank you for your rating!"))
    group = context.settings.staff_group(case.city, case.partner)
    if group is not None:
        _ = context.translations(group.language).gettext
        rated = _("The person rated the help {stars} of 5.").format(stars=rating.stars)
        await to_topic(context, case, "⭐ " + html.escape(rated))
