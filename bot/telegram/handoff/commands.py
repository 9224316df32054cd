"""What staff do in a case's topic: write to the person, /send, /quick, /note, /transfer, /close, /help."""

from __future__ import annotations

import difflib
import unicodedata

from telegram import InlineKeyboardMarkup, Update

from ...language import language_name
from ..callbacks import QuickReply
from ..context import BotContext
from ..ui import answer_card, with_intro
from .cards import partner_city, partner_name
from .delivery import message_kind, not_delivered, pages_to_person, relay_to_person
from .setup import move_case
from .staff import StaffTurn, end_case, staff_case, staff_name, take
from .texts import QUICK_REPLIES, person_texts

__all__ = [
    "close_command",
    "command_descriptions",
    "note",
    "quick",
    "send_answer",
    "staff_help",
    "staff_message",
    "transfer",
]


@staff_case
async def staff_message(context: BotContext, turn: StaffTurn) -> None:
    """What the case owner writes in the topic goes to the person, marked as from a caseworker."""
    group, user, message = turn.group, turn.user, turn.message
    owned = await take(context, turn.case, group, user, message)
    if owned is None:
        return
    _p = person_texts(context, owned).gettext
    kind = message_kind(message)
    copies: list[int] = []
    sent = await relay_to_person(context, owned, message, kind, "🙋 " + _p("Caseworker:"), copies=copies)
    if not sent:  # the topic says why
        await message.reply_text(not_delivered(context, group.language, sent))
        return
    # Which copies are this message's, so that an edit of it reaches them.
    await context.storage.relayed.add(owned.id, "staff", message.message_id, owned.chat_id, copies)
    await context.storage.cases.audit(owned.id, "reply", user.id)
    await context.storage.add_turn(owned.chat_id, "staff", message.text or f"[{kind}]", None)


@staff_case
async def note(context: BotContext, turn: StaffTurn) -> None:
    """/note TEXT: an internal note, never sent to the person (only the fact is recorded); the staff
    member is told it was kept."""
    _ = context.translations(turn.group.language).gettext
    if not context.args:
        await turn.message.reply_text(
            _("Usage: /note TEXT. A note stays in this topic; the person never sees it.")
        )
        return
    await context.storage.cases.audit(turn.case.id, "note", turn.user.id)
    await turn.message.reply_text("📝 " + _("Note kept in this topic. The person does not see it."))


@staff_case
async def send_answer(context: BotContext, turn: StaffTurn) -> None:
    """/send KEY: the knowledge-base answer for KEY, in the person's language, for the case's city."""
    group, user, message = turn.group, turn.user, turn.message
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
    owned = await take(context, turn.case, group, user, message)
    if owned is None:
        return
    answer = services.engine.answer_key(key, owned.city, owned.language)
    _p = person_texts(context, owned).gettext
    # What a person-sent answer is: general information a caseworker picked, with the answer's own
    # sources and review note (a partner organisation's check, or only when it was last updated).
    sent = with_intro(
        answer,
        _p(
            "A caseworker chose this general information for you. Its sources, and whether a partner "
            "organisation has checked it, are at the end."
        ),
    )
    pages = answer_card(services.engine, sent)
    delivered = await pages_to_person(context, owned, pages, "deliver an answer of {case}")
    if not delivered:
        await message.reply_text(not_delivered(context, group.language, delivered))
        return
    await context.storage.cases.audit(owned.id, "send", user.id, key)
    await context.storage.add_turn(owned.chat_id, "bot", answer.text[:500], key)
    await message.reply_text(
        "📤 "
        + _("Sent “{topic}” in {language}.").format(
            topic=kb.title(key, group.language), language=language_name(owned.language, group.language)
        )
    )


@staff_case
async def quick(context: BotContext, turn: StaffTurn) -> None:
    """/quick: ready replies as buttons, in the staff's language; sent in the person's language."""
    case, group = turn.case, turn.group
    _ = context.translations(group.language).gettext
    buttons = [[QuickReply(case.id, i).button(_(text)[:64])] for i, text in enumerate(QUICK_REPLIES)]
    lines = [f"{i + 1}. {_(text)}" for i, text in enumerate(QUICK_REPLIES)]
    await turn.message.reply_text(
        _("Ready replies (the person gets them in {language}):").format(
            language=language_name(case.language, group.language)
        )
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


@staff_case
async def transfer(context: BotContext, turn: StaffTurn) -> None:
    """/transfer CITY: move the case to that city's staff group, unassigned."""
    case, group, user, message = turn.case, turn.group, turn.user, turn.message
    settings = context.settings
    engine = context.services.engine
    _ = context.translations(group.language).gettext
    if case.owner_id not in (None, user.id):
        owner = await staff_name(context, group, case.owner_id)
        await message.reply_text(_("Only {name}, who claimed this case, can transfer it.").format(name=owner))
        return
    city = _find_city(context, " ".join(context.args or []), group.language)
    # In the new city, the partner that handles the case's topic in the person's language.
    target = settings.route(city, case.key, case.language) if city else None
    # The city the case is handled in now: its partner's (after a referral to another city's partner,
    # not the person's city).
    here = partner_city(context, case)
    if city is None or target is None or city == here:
        choices = ", ".join(
            f"{c} ({engine.city_name(c, group.language)})"
            for c in settings.cities
            if c != here and settings.staff_group(c) is not None
        )
        usage = _("Usage: /transfer CITY. Cities with a staff group: {cities}")
        await message.reply_text(usage.format(cities=choices))
        return
    await move_case(context, message, case, user, group.language, to_city=city)


@staff_case
async def close_command(context: BotContext, turn: StaffTurn) -> None:
    """/close in a case topic: like the Close button."""
    refusal = await end_case(context, turn.case, turn.group, turn.user, "close")
    if refusal:
        await turn.message.reply_text(refusal)


def command_descriptions(language: str, context: BotContext) -> list[tuple[str, str]]:
    """The staff group's command menu."""
    _ = context.translations(language).gettext
    return [
        ("send", _("send an answer in the person's language")),
        ("quick", _("ready replies")),
        ("note", _("internal note, never sent")),
        ("transfer", _("move the case to another city")),
        ("refer", _("refer the case to a partner organisation")),
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
    # The partner organisation(s) this group acts for.
    here = [(city, p) for city, p in settings.all_partners() if p.chat_id == chat.id]
    language = here[0][1].language if here else settings.default_language
    _ = context.translations(language).gettext
    organisations = ", ".join(partner_name(context, p.id, city, language) for city, p in here)
    await message.reply_text(
        (_("You act for {organisation}.").format(organisation=organisations) + "\n\n" if here else "")
        + _(
            "Each conversation handed over by the bot gets its own topic here, with a case card. "
            "Claim it, then write in the topic: your messages, photos and documents go to the person, "
            "marked as coming from a caseworker. /send KEY sends an answer from the knowledge base in "
            "the person's language, /quick shows ready replies, /note TEXT is never sent, "
            "/transfer CITY moves the case to another city, /close ends it and asks the person for a "
            "rating."
        )
        + "\n\n"
        + _(
            "/refer PARTNER NOTE hands the case to another partner organisation. The person is asked "
            "whether their conversation may go with it; without their yes, the other organisation "
            "sees only the topic, their language and city (and your note)."
        )
    )
