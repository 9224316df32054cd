"""Human handoff: each case is a forum topic in its city's staff group, relayed both ways.

Owner of a conversation: the bot (no open case), nobody (open, waiting) or one staff member. While a
case is open the bot does not answer on its own; it copies what the person sends into the topic and
what the owner writes in the topic to the person. Reminder times live in the database, so a restart
loses none.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import html
import logging
import unicodedata
from typing import TYPE_CHECKING

from babel.dates import format_datetime
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update, User
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from ..engine import InvalidQuestion, Outcome, Reply, UnknownCity
from ..language import native_name
from ..storage import CaseData
from .context import BotContext
from .ui import answer_card, rtl, split_text

if TYPE_CHECKING:
    from babel.support import NullTranslations

    from ..settings import StaffGroup

__all__ = [
    "QUICK_REPLIES",
    "case_button",
    "close_command",
    "command_descriptions",
    "end_case_for_erasure",
    "note",
    "open_case",
    "quick",
    "rate",
    "relay_from_person",
    "remind_unclaimed",
    "send_answer",
    "staff_help",
    "staff_message",
    "transfer",
]

logger = logging.getLogger(__name__)


def N_(message: str) -> str:
    """Mark a text for translation; it is translated when shown, in the reader's language."""
    return message


# Ready replies staff can send with /quick: shown to staff in their language, sent in the person's.
QUICK_REPLIES = (
    N_("We will call you."),
    N_(
        "Please bring your documents: your passport or ID card, your residence permit if you have one, "
        "and any letters you have received."
    ),
    N_("We are looking into your question and will write back here soon."),
    N_("Please send a photo of the document or letter you mean."),
    N_("Could you tell us a little more about your situation?"),
    N_("We are looking for an interpreter for your language and will write back soon."),
)
STAFF_STATUSES = {ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.MEMBER}
# Message kinds whose copies can carry a caption (the "from a caseworker" / "from the person" mark).
CAPTIONED = ("photo", "document", "voice", "video", "audio", "animation")
TURN_TEXT = 250
NOT_DELIVERED = N_("Not delivered: the person has blocked the bot or deleted the chat.")


# --- helpers ---------------------------------------------------------------------------------------


def _person_(context: BotContext, case: CaseData) -> NullTranslations:
    return context.translations(case.language)


def _mention(user: User) -> str:
    return user.mention_html()


def _minutes(delta: dt.timedelta) -> int:
    return max(1, round(delta.total_seconds() / 60))


def _remind_after(context: BotContext, urgent: bool) -> float:
    """Minutes a case may wait unclaimed before the group is reminded."""
    handoff = context.settings.handoff
    return handoff.urgent_remind_after_minutes if urgent else handoff.remind_after_minutes


def _reminder_time(context: BotContext, group: StaffGroup, after: dt.datetime, urgent: bool) -> dt.datetime:
    """Urgent cases are reminded around the clock; others when staff are at work."""
    due = after + dt.timedelta(minutes=_remind_after(context, urgent))
    return due if urgent else group.hours().next_opening(due)


def _when(moment: dt.datetime, group: StaffGroup, language: str) -> str:
    """A moment in the group's time zone, worded for ``language``, e.g. "Monday, 09:00"."""
    return format_datetime(moment, "EEEE d MMMM, HH:mm", tzinfo=group.hours().zone, locale=language)


async def is_staff(context: BotContext, group: StaffGroup, user: User | None) -> bool:
    """A member of the staff group (and on its allow-list, if it has one); bots never are."""
    if user is None or user.is_bot:
        return False
    if group.allow and user.id not in group.allow:
        return False
    try:
        member = await context.bot.get_chat_member(group.chat_id, user.id)
    except TelegramError:
        return False
    return member.status in STAFF_STATUSES


def _topic_title(context: BotContext, case: CaseData, group: StaffGroup) -> str:
    engine = context.services.engine
    _ = context.translations(group.language).gettext
    topic = engine.kb.title(case.key, group.language) if case.key else _("General question")
    parts = [case.number, engine.city_name(case.city, group.language), case.language.upper(), topic]
    return (("🚨 " if case.urgent else "") + " · ".join(parts))[:128]


def _card_keyboard(context: BotContext, case: CaseData, group: StaffGroup) -> InlineKeyboardMarkup:
    _ = context.translations(group.language).gettext
    row = [
        InlineKeyboardButton("✅ " + _("Close"), callback_data=f"case:close:{case.id}"),
        InlineKeyboardButton("🤖 " + _("Return to bot"), callback_data=f"case:return:{case.id}"),
    ]
    if case.owner_id is None:
        row.insert(0, InlineKeyboardButton("✋ " + _("Claim"), callback_data=f"case:claim:{case.id}"))
    return InlineKeyboardMarkup([row])


async def _card(context: BotContext, case: CaseData, group: StaffGroup, origin: str | None = None) -> str:
    """The case card (HTML): who, where, what about, and the recent conversation."""
    services = context.services
    engine, kb = services.engine, services.kb
    _ = context.translations(group.language).gettext
    title = _("Case {number}").format(number=case.number)
    lines = ["<b>" + html.escape(title) + "</b>"]
    if case.urgent:
        lines.append(
            "🚨 <b>"
            + html.escape(_("URGENT: the person may be in danger. The bot has shown the emergency numbers."))
            + "</b>"
        )
    if origin:
        lines.append(html.escape(origin))
    topic = f"{kb.title(case.key, group.language)} ({case.key})" if case.key else _("General question")
    lines += [
        html.escape(
            _("Language: {language}").format(language=f"{native_name(case.language)} ({case.language})")
        ),
        html.escape(_("City: {city}").format(city=engine.city_name(case.city, group.language))),
        html.escape(_("Topic: {topic}").format(topic=topic)),
        html.escape(_("Opened: {time}").format(time=_when(case.created_at, group, group.language))),
        "",
        "<b>" + html.escape(_("Recent conversation")) + "</b>",
    ]
    turns = await context.storage.recent_turns(case.chat_id, context.settings.handoff.card_turns)
    for turn in turns:
        if turn.role == "bot" and turn.key:
            text = "🤖 " + _("answered: {topic}").format(topic=kb.title(turn.key, group.language))
        else:
            mark = {"user": "👤", "bot": "🤖", "staff": "🙋"}[turn.role]
            shortened = turn.text if len(turn.text) <= TURN_TEXT else turn.text[:TURN_TEXT] + "…"
            text = f"{mark} {shortened}"
        lines.append(html.escape(text))
    if not turns:
        lines.append(html.escape(_("(no messages yet)")))
    lines += [
        "",
        "<i>"
        + html.escape(
            _(
                "Write in this topic to answer the person (your first message claims the case). "
                "/send KEY sends an answer in their language, /quick shows ready replies, "
                "/note TEXT stays internal, /transfer CITY moves the case, /close ends it."
            )
        )
        + "</i>",
    ]
    return "\n".join(lines)


async def _post_case(
    context: BotContext, case: CaseData, group: StaffGroup, origin: str | None = None
) -> tuple[int, int]:
    """Open the case's forum topic and post its card; returns (thread id, card message id)."""
    topic = await context.bot.create_forum_topic(group.chat_id, _topic_title(context, case, group))
    card = await context.bot.send_message(
        group.chat_id,
        await _card(context, case, group, origin),
        message_thread_id=topic.message_thread_id,
        parse_mode="HTML",
        reply_markup=_card_keyboard(context, case, group),
        disable_web_page_preview=True,
    )
    return topic.message_thread_id, card.message_id


async def _to_topic(context: BotContext, case: CaseData, text: str) -> None:
    """A note from the bot in the case's topic (HTML)."""
    if case.thread_id is None:
        return
    try:
        await context.bot.send_message(
            case.group_chat_id, text, message_thread_id=case.thread_id, parse_mode="HTML"
        )
    except TelegramError as exc:
        logger.warning("could not write to the topic of %s: %s", case.number, type(exc).__name__)


async def _to_person(
    context: BotContext, case: CaseData, text: str, markup: InlineKeyboardMarkup | None = None
) -> bool:
    try:
        await context.bot.send_message(case.chat_id, rtl(case.language, text), reply_markup=markup)
    except TelegramError as exc:
        logger.warning("could not write to the person of %s: %s", case.number, type(exc).__name__)
        return False
    return True


# --- opening a case (person side) ------------------------------------------------------------------


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
    group = settings.staff_group(person.city)
    if group is None:
        return False
    lang = context.state.language or person.language or settings.default_language
    _ = context.translations(lang).gettext
    now = context.bot_data.clock()
    case, created = await storage.open_case(
        chat.id,
        city=person.city,
        language=lang,
        key=key or await _last_topic(context, chat.id),
        urgent=urgent,
        group_chat_id=group.chat_id,
        remind_at=_reminder_time(context, group, now, urgent),
    )
    context.state.reset()
    if not created:
        await _to_person(context, case, _("You are already connected to a caseworker. Just write here."))
        return True
    try:
        thread_id, card_id = await _post_case(context, case, group)
    except TelegramError as exc:
        logger.error("could not open a topic for %s: %s", case.number, type(exc).__name__)
        await storage.close_case(case.id, None, "return")
        return False
    await storage.set_case_topic(case.id, thread_id=thread_id, card_message_id=card_id)

    city = context.services.engine.city_name(person.city, lang)
    parts = []
    if struggling:
        parts.append(_("I could not find the right answer for you, so I am asking a person to help."))
    parts.append(
        _(
            "I have asked a caseworker in {city} to take over. You can keep writing here: everything you "
            "send goes to them."
        ).format(city=city)
    )
    hours = group.hours()
    if hours.is_open(now):
        minutes = round(_remind_after(context, urgent))
        parts.append(
            context.translations(lang)
            .ngettext(
                "Caseworkers are at work now. If nobody answers within {minutes} minute, I will remind them.",
                "Caseworkers are at work now. If nobody answers within {minutes} minutes, "
                "I will remind them.",
                minutes,
            )
            .format(minutes=minutes)
        )
    else:
        # TRANSLATORS: {time} is a weekday, date and time, e.g. "Monday 24 November, 09:00".
        parts.append(
            _(
                "Caseworkers are not at work right now. They will be back on {time}, and your messages "
                "will be waiting for them."
            ).format(time=_when(hours.next_opening(now), group, lang))
        )
        if urgent:
            parts.append(_("If you are in danger, call 112 now."))
    await _to_person(context, case, "\n\n".join(parts))
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
    """For staff: the topic a relayed message seems to be about, in the staff's language."""
    if reply is None or reply.urgent or reply.key not in context.services.kb.taxonomy.content_keys:
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
    for page in answer_card(context.services.engine, reply):
        try:
            await context.bot.send_message(
                case.chat_id, page, parse_mode="HTML", disable_web_page_preview=True
            )
        except TelegramError as exc:
            logger.warning("could not show the emergency numbers for %s: %s", case.number, type(exc).__name__)
    now = context.bot_data.clock()
    await context.storage.mark_urgent(case.id, _reminder_time(context, group, now, urgent=True))
    _ = context.translations(group.language).gettext
    await _to_topic(
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
    case = await context.storage.open_case_of(chat.id)
    if case is None or case.thread_id is None:
        return
    group = context.settings.staff_group(case.city)
    kind = _kind(message)
    await context.storage.add_turn(chat.id, "user", message.text or f"[{kind}]", None)
    reply = await _understand(context, case, message.text or message.caption)
    label = _topic_label(context, reply, group.language) if group else ""
    try:
        if message.text is not None:
            for chunk in split_text("👤 " + message.text + label):
                await context.bot.send_message(case.group_chat_id, chunk, message_thread_id=case.thread_id)
        else:
            caption = "👤 " + (message.caption or "") if kind in CAPTIONED else None
            await message.copy(case.group_chat_id, message_thread_id=case.thread_id, caption=caption)
    except TelegramError as exc:
        logger.error("could not copy a message into the topic of %s: %s", case.number, type(exc).__name__)
        _ = context.translations(case.language).gettext
        await message.reply_text(
            _("Sorry, your message could not reach the caseworkers. Please try again in a few minutes.")
        )
        raise ApplicationHandlerStop from None
    finally:
        if reply is not None and reply.urgent and group is not None:
            await _alert_danger(context, case, group, reply)
    raise ApplicationHandlerStop


def _kind(message: Message) -> str:
    for kind in (*CAPTIONED, "sticker", "video_note", "location", "contact", "poll", "dice"):
        if getattr(message, kind, None):
            return kind
    return "message"


async def end_case_for_erasure(context: BotContext, chat_id: int) -> None:
    """The person used /forget: close their open case and ask staff to delete the topic."""
    case = await context.storage.open_case_of(chat_id)
    if case is None:
        return
    closed = await context.storage.close_case(case.id, None, "erase")
    group = context.settings.staff_group(case.city)
    if closed is None or group is None:
        return
    _ = context.translations(group.language).gettext
    await _to_topic(
        context,
        case,
        "🗑 "
        + html.escape(
            _(
                "The person deleted their data, so this case is closed. Please delete this topic: it "
                "holds copies of their messages."
            )
        ),
    )
    await _close_topic(context, case)


# --- staff side ------------------------------------------------------------------------------------


async def _staff_case(
    update: Update, context: BotContext
) -> tuple[CaseData, StaffGroup, User, Message] | None:
    """The open case of the topic this message comes from, if its sender is staff; else None."""
    message, user = update.effective_message, update.effective_user
    if message is None or message.message_thread_id is None or not message.is_topic_message:
        return None
    case = await context.storage.case_in_topic(message.chat.id, message.message_thread_id)
    if case is None:
        return None
    group = context.settings.staff_group(case.city)
    if group is None or not await is_staff(context, group, user):
        logger.info("ignored an update from someone who is not staff in the topic of %s", case.number)
        return None
    assert user is not None
    return case, group, user, message


async def _take(
    context: BotContext, case: CaseData, group: StaffGroup, user: User
) -> tuple[CaseData | None, str | None]:
    """Make sure ``user`` owns the case, claiming it if nobody does. Returns (case, refusal)."""
    _ = context.translations(group.language).gettext
    if case.owner_id is None:
        won, current = await context.storage.claim_case(case.id, user.id)
        if current is None or not current.is_open:
            return None, _("This case is already closed.")
        if won:
            await _announce_claim(context, current, group, user)
        case = current
    if case.owner_id != user.id:
        owner = await _name(context, group, case.owner_id)
        return None, _("{name} has claimed this case. Use /note for internal notes.").format(name=owner)
    return case, None


async def _name(context: BotContext, group: StaffGroup, user_id: int | None) -> str:
    """A staff member's first name, looked up in Telegram (names are never stored)."""
    _ = context.translations(group.language).gettext
    if user_id is None:
        return _("nobody")
    try:
        member = await context.bot.get_chat_member(group.chat_id, user_id)
    except TelegramError:
        return _("another caseworker")
    return member.user.first_name


async def _announce_claim(context: BotContext, case: CaseData, group: StaffGroup, user: User) -> None:
    _ = context.translations(group.language).gettext
    await _to_topic(context, case, "✋ " + _("{name} claimed this case.").format(name=_mention(user)))
    if case.card_message_id is not None:
        try:
            await context.bot.edit_message_reply_markup(
                case.group_chat_id, case.card_message_id, reply_markup=_card_keyboard(context, case, group)
            )
        except TelegramError as exc:
            logger.warning("could not update the card of %s: %s", case.number, type(exc).__name__)
    _p = _person_(context, case).gettext
    await _to_person(context, case, _p("A caseworker is now looking at your conversation."))


async def staff_message(update: Update, context: BotContext) -> None:
    """What the case owner writes in the topic goes to the person, marked as from a caseworker."""
    if (found := await _staff_case(update, context)) is None:
        return
    case, group, user, message = found
    owned, refusal = await _take(context, case, group, user)
    if owned is None:
        await message.reply_text(refusal or "")
        return
    _p = _person_(context, owned).gettext
    label = "🙋 " + _p("Caseworker:")
    kind = _kind(message)
    try:
        if message.text is not None:
            for chunk in split_text(label + "\n" + message.text):
                await context.bot.send_message(owned.chat_id, rtl(owned.language, chunk))
        elif kind in CAPTIONED:
            caption = label + ("\n" + message.caption if message.caption else "")
            await message.copy(owned.chat_id, caption=caption)
        else:
            await context.bot.send_message(owned.chat_id, rtl(owned.language, label))
            await message.copy(owned.chat_id)
    except TelegramError as exc:
        _ = context.translations(group.language).gettext
        logger.warning("could not deliver a reply of %s: %s", owned.number, type(exc).__name__)
        await message.reply_text("⚠️ " + _(NOT_DELIVERED))
        return
    await context.storage.audit(owned.id, "reply", user.id)
    await context.storage.add_turn(owned.chat_id, "staff", message.text or f"[{kind}]", None)


async def note(update: Update, context: BotContext) -> None:
    """/note TEXT: an internal note, never sent to the person (only the fact is recorded)."""
    if (found := await _staff_case(update, context)) is not None:
        case, _group, user, _message = found
        await context.storage.audit(case.id, "note", user.id)


async def send_answer(update: Update, context: BotContext) -> None:
    """/send KEY: the knowledge-base answer for KEY, in the person's language, for the case's city."""
    if (found := await _staff_case(update, context)) is None:
        return
    case, group, user, message = found
    services = context.services
    kb = services.kb
    _ = context.translations(group.language).gettext
    key = (context.args or [""])[0].strip().lower()
    keys = kb.taxonomy.content_keys
    if key not in keys:
        near = difflib.get_close_matches(key, keys, n=3, cutoff=0.5) if key else []
        listing = "\n".join(f"{k} — {kb.title(k, group.language)}" for k in (near or keys))
        intro = (
            _("Unknown key “{key}”. Did you mean:").format(key=key)
            if near
            else _("Usage: /send KEY. The keys are:")
        )
        await message.reply_text(intro + "\n" + listing)
        return
    owned, refusal = await _take(context, case, group, user)
    if owned is None:
        await message.reply_text(refusal or "")
        return
    answer = services.engine.answer_key(key, owned.city, owned.language)
    _p = _person_(context, owned).gettext
    sent = Reply(
        answer.outcome,
        answer.city,
        answer.language,
        _p("A caseworker sent you this information:") + "\n\n" + answer.text,
        key=answer.key,
        answer=answer.answer,
        notice=answer.notice,
    )
    try:
        for page in answer_card(services.engine, sent):
            await context.bot.send_message(
                owned.chat_id, page, parse_mode="HTML", disable_web_page_preview=True
            )
    except TelegramError as exc:
        logger.warning("could not deliver an answer of %s: %s", owned.number, type(exc).__name__)
        await message.reply_text("⚠️ " + _(NOT_DELIVERED))
        return
    await context.storage.audit(owned.id, "send", user.id, key)
    await context.storage.add_turn(owned.chat_id, "bot", answer.text[:500], key)
    await message.reply_text(
        "📤 "
        + _("Sent “{topic}” in {language}.").format(
            topic=kb.title(key, group.language), language=native_name(owned.language)
        )
    )


async def quick(update: Update, context: BotContext) -> None:
    """/quick: ready replies as buttons, in the staff's language; sent in the person's language."""
    if (found := await _staff_case(update, context)) is None:
        return
    case, group, _user, message = found
    _ = context.translations(group.language).gettext
    buttons = [
        [InlineKeyboardButton(_(text)[:64], callback_data=f"quick:{case.id}:{i}")]
        for i, text in enumerate(QUICK_REPLIES)
    ]
    lines = [f"{i + 1}. {_(text)}" for i, text in enumerate(QUICK_REPLIES)]
    await message.reply_text(
        _("Ready replies (the person gets them in {language}):").format(language=native_name(case.language))
        + "\n"
        + "\n".join(lines),
        reply_markup=InlineKeyboardMarkup(buttons),
    )


def _find_city(context: BotContext, text: str, language: str) -> str | None:
    def fold(value: str) -> str:
        decomposed = unicodedata.normalize("NFKD", value.casefold())
        return "".join(c for c in decomposed if not unicodedata.combining(c))

    wanted = fold(text.strip())
    engine = context.services.engine
    for city in context.settings.cities:
        names = {city, engine.city_name(city, language), engine.city_name(city, "en")}
        if wanted in {fold(name) for name in names}:
            return city
    return None


async def transfer(update: Update, context: BotContext) -> None:
    """/transfer CITY: move the case to that city's staff group, unassigned."""
    if (found := await _staff_case(update, context)) is None:
        return
    case, group, user, message = found
    settings = context.settings
    engine = context.services.engine
    _ = context.translations(group.language).gettext
    if case.owner_id not in (None, user.id):
        owner = await _name(context, group, case.owner_id)
        await message.reply_text(_("Only {name}, who claimed this case, can transfer it.").format(name=owner))
        return
    city = _find_city(context, " ".join(context.args or []), group.language)
    target = settings.staff_group(city) if city else None
    if city is None or target is None or city == case.city:
        choices = ", ".join(
            f"{c} ({engine.city_name(c, group.language)})"
            for c in settings.cities
            if c != case.city and settings.staff_group(c) is not None
        )
        usage = _("Usage: /transfer CITY. Cities with a staff group: {cities}")
        await message.reply_text(usage.format(cities=choices))
        return
    now = context.bot_data.clock()
    moved = dataclasses.replace(case, city=city, group_chat_id=target.chat_id, owner_id=None)
    _t = context.translations(target.language).gettext
    origin = "➡️ " + _t("Transferred from {city}.").format(city=engine.city_name(case.city, target.language))
    try:
        thread_id, card_id = await _post_case(context, moved, target, origin)
    except TelegramError as exc:
        logger.error("could not open a topic for %s in %s: %s", case.number, city, type(exc).__name__)
        await message.reply_text("⚠️ " + _("The other group cannot be reached; the case stays here."))
        return
    done = await context.storage.transfer_case(
        case.id,
        city=city,
        group_chat_id=target.chat_id,
        thread_id=thread_id,
        card_message_id=card_id,
        remind_at=_reminder_time(context, target, now, case.urgent),
        actor_id=user.id,
    )
    if done is None:
        return
    await _to_topic(
        context,
        case,
        "➡️ "
        + _("{name} transferred this case to {city}.").format(
            name=_mention(user), city=html.escape(engine.city_name(city, group.language))
        ),
    )
    await _close_topic(context, case)
    _p = _person_(context, case).gettext
    await _to_person(
        context,
        case,
        _p("Your conversation has been passed to caseworkers in {city}.").format(
            city=engine.city_name(city, case.language)
        ),
    )


async def close_command(update: Update, context: BotContext) -> None:
    """/close in a case topic: like the Close button."""
    if (found := await _staff_case(update, context)) is None:
        return
    case, group, user, message = found
    refusal = await _end(context, case, group, user, "close")
    if refusal:
        await message.reply_text(refusal)


def command_descriptions(language: str, context: BotContext) -> list[tuple[str, str]]:
    """The staff group's command menu."""
    _ = context.translations(language).gettext
    return [
        ("send", _("send an answer in the person's language")),
        ("quick", _("ready replies")),
        ("note", _("internal note, never sent")),
        ("transfer", _("move the case to another city")),
        ("close", _("close the case")),
        ("help", _("how cases work")),
    ]


async def staff_help(update: Update, context: BotContext) -> None:
    """/help in a staff group: how cases work."""
    message = update.effective_message
    chat = update.effective_chat
    if message is None or chat is None:
        return
    settings = context.settings
    language = next(
        (g.language for g in settings.handoff.groups.values() if g.chat_id == chat.id),
        settings.default_language,
    )
    _ = context.translations(language).gettext
    await message.reply_text(
        _(
            "Each conversation handed over by the bot gets its own topic here, with a case card. "
            "Claim it, then write in the topic: your messages, photos and documents go to the person, "
            "marked as coming from a caseworker. /send KEY sends an answer from the knowledge base in "
            "the person's language, /quick shows ready replies, /note TEXT is never sent, "
            "/transfer CITY moves the case to another city, /close ends it and asks the person for a "
            "rating."
        )
    )


async def _close_topic(context: BotContext, case: CaseData) -> None:
    if case.thread_id is None:
        return
    try:
        await context.bot.close_forum_topic(case.group_chat_id, case.thread_id)
    except TelegramError as exc:
        logger.info("could not close the topic of %s: %s", case.number, type(exc).__name__)


async def _end(context: BotContext, case: CaseData, group: StaffGroup, user: User, action: str) -> str | None:
    """Close the case (``close``) or hand it back to the bot (``return``). Returns a refusal, if any."""
    _ = context.translations(group.language).gettext
    if case.owner_id not in (None, user.id):
        owner = await _name(context, group, case.owner_id)
        return _("Only {name}, who claimed this case, can close it.").format(name=owner)
    closed = await context.storage.close_case(case.id, user.id, action)
    if closed is None:
        return _("This case is already closed.")
    _p = _person_(context, case).gettext
    if action == "close":
        stars = InlineKeyboardMarkup(
            [[InlineKeyboardButton("⭐" * n, callback_data=f"rate:{case.id}:{n}") for n in range(1, 6)]]
        )
        await _to_person(
            context,
            case,
            _p("The caseworker has closed this conversation. From now on I answer your questions again.")
            + "\n\n"
            + _p("How much did the caseworker help you? Please choose 1 to 5 stars."),
            stars,
        )
        done = "✅ " + _("{name} closed this case.").format(name=_mention(user))
    else:
        await _to_person(
            context,
            case,
            _p(
                "A caseworker has passed the conversation back to me. Ask me anything, or send /human "
                "to talk to a person again."
            ),
        )
        done = "🤖 " + _("{name} returned this case to the bot.").format(name=_mention(user))
    await _to_topic(context, case, done)
    if case.card_message_id is not None:
        try:
            await context.bot.edit_message_reply_markup(
                case.group_chat_id, case.card_message_id, reply_markup=None
            )
        except TelegramError as exc:
            logger.info("could not update the card of %s: %s", case.number, type(exc).__name__)
    await _close_topic(context, case)
    return None


async def case_button(update: Update, context: BotContext) -> None:
    """Claim / Close / Return to bot on the case card, and the /quick reply buttons."""
    query = update.callback_query
    if query is None or query.data is None or not isinstance(query.message, Message):
        return
    kind, action, case_id, index = ([*query.data.split(":"), "", ""])[:4]
    if kind == "quick":  # quick:<case>:<index>
        action, case_id, index = "quick", action, case_id
    case = await context.storage.get_case(int(case_id)) if case_id.isdigit() else None
    storage = context.storage
    settings = context.settings
    group = settings.staff_group(case.city) if case else None
    if case is None or group is None or query.message.chat.id != case.group_chat_id:
        await query.answer()
        return
    _ = context.translations(group.language).gettext
    user = update.effective_user
    if not await is_staff(context, group, user):
        await query.answer(_("Only caseworkers of this group can do this."), show_alert=True)
        return
    assert user is not None
    if not case.is_open:
        await query.answer(_("This case is already closed."), show_alert=True)
        return
    if action == "quick":
        await _send_quick(context, query.message, case, group, user, index)
        await query.answer()
    elif action == "claim":
        won, current = await storage.claim_case(case.id, user.id)
        if won and current is not None:
            await query.answer(_("The case is yours."))
            await _announce_claim(context, current, group, user)
        else:
            owner = await _name(context, group, current.owner_id if current else None)
            await query.answer(_("{name} has already claimed this case.").format(name=owner), show_alert=True)
    elif action in ("close", "return"):
        refusal = await _end(context, case, group, user, action)
        await query.answer(refusal, show_alert=refusal is not None)
    else:
        await query.answer()


async def _send_quick(
    context: BotContext, menu: Message, case: CaseData, group: StaffGroup, user: User, index: str
) -> None:
    _ = context.translations(group.language).gettext
    if not index.isdigit() or int(index) >= len(QUICK_REPLIES):
        return
    owned, refusal = await _take(context, case, group, user)
    if owned is None:
        await menu.reply_text(refusal or "")
        return
    text = QUICK_REPLIES[int(index)]
    _p = _person_(context, owned).gettext
    if not await _to_person(context, owned, "🙋 " + _p("Caseworker:") + "\n" + _p(text)):
        await menu.reply_text("⚠️ " + _(NOT_DELIVERED))
        return
    await context.storage.audit(owned.id, "quick", user.id, str(index))
    await context.storage.add_turn(owned.chat_id, "staff", _p(text), None)
    await menu.edit_text(
        "📤 " + _("Sent in {language}: “{text}”").format(language=native_name(owned.language), text=_(text))
    )


# --- after the case --------------------------------------------------------------------------------


async def rate(update: Update, context: BotContext) -> None:
    """The person's 1–5 star rating after a case was closed."""
    query, chat = update.callback_query, update.effective_chat
    if query is None or query.data is None or chat is None:
        return
    _rate, case_id, stars = [*query.data.split(":"), "", ""][:3]
    await query.answer()
    if not (case_id.isdigit() and stars.isdigit() and 1 <= int(stars) <= 5):
        return
    storage = context.storage
    if not await storage.rate_case(int(case_id), chat.id, int(stars)):
        return
    case = await storage.get_case(int(case_id))
    if case is None:
        return
    _p = _person_(context, case).gettext
    if isinstance(query.message, Message):
        await query.message.edit_reply_markup(None)
    await _to_person(context, case, _p("Thank you for your rating!"))
    group = context.settings.staff_group(case.city)
    if group is not None:
        _ = context.translations(group.language).gettext
        rated = _("The person rated the help {stars} of 5.").format(stars=stars)
        await _to_topic(context, case, "⭐ " + html.escape(rated))


async def remind_unclaimed(context: BotContext) -> None:
    """Job: remind the group of cases nobody has claimed, and tell the person about the wait."""
    storage = context.storage
    now = context.bot_data.clock()
    for case in await storage.due_reminders(now):
        group = context.settings.staff_group(case.city)
        if group is None:
            continue
        if not await storage.reminded(case, _reminder_time(context, group, now, case.urgent)):
            continue  # another instance reminded it first
        minutes = _minutes(now - case.created_at)
        staff = context.translations(group.language)
        await _to_topic(
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
            person = _person_(context, case)
            text = person.ngettext(
                "Sorry for the wait: you have been waiting {minutes} minute. The caseworkers are busy, but "
                "your conversation is in the queue and nothing you wrote is lost.",
                "Sorry for the wait: you have been waiting {minutes} minutes. The caseworkers are busy, but "
                "your conversation is in the queue and nothing you wrote is lost.",
                minutes,
            ).format(minutes=minutes)
            await _to_person(context, case, text)
