"""The case card staff see at the top of each case's topic: title, text and buttons."""

from __future__ import annotations

import datetime as dt
import html
from typing import TYPE_CHECKING

from babel.dates import format_skeleton, format_time, get_datetime_format
from telegram import InlineKeyboardMarkup

from ...language import language_name
from ...storage import CaseData
from ..callbacks import CaseAction
from ..context import BotContext

if TYPE_CHECKING:
    from ...settings import StaffGroup

__all__ = ["card_keyboard", "case_card", "day", "partner_city", "partner_name", "topic_title", "when"]

# The longest a message of the recent conversation gets on the card.
TURN_TEXT = 250


def day(moment: dt.datetime, group: StaffGroup, language: str, *, weekday: bool = False) -> str:
    """The day of a moment in the group's time zone, in CLDR's pattern for ``language``: "2 December",
    in Czech "2. prosince" (``weekday``: "Wed, 2 December", "st 2. prosince")."""
    skeleton = "MMMMEd" if weekday else "MMMMd"
    return format_skeleton(skeleton, moment, tzinfo=group.hours().zone, locale=language)


def when(moment: dt.datetime, group: StaffGroup, language: str, *, weekday: bool = False) -> str:
    """A moment in the group's time zone: its ``day`` and time joined as CLDR joins them for
    ``language``, e.g. "December 2, 9:00 AM", in Czech "2. prosince 9:00"."""
    time = format_time(moment, "short", tzinfo=group.hours().zone, locale=language)
    pattern = str(get_datetime_format("medium", locale=language)).replace("'", "")
    return pattern.replace("{0}", time).replace("{1}", day(moment, group, language, weekday=weekday))


def partner_name(context: BotContext, partner_id: str | None, city: str, language: str) -> str:
    """A partner organisation's name (by id; None: ``city``'s default partner). A city with a single
    staff group and no partners configured is named by the city."""
    found = context.settings.find_partner(partner_id) if partner_id else None
    city, partner = found or (city, context.settings.staff_group(city))
    if partner is not None and partner.name:
        return partner.name
    return context.services.engine.city_name(city, language)


def partner_city(context: BotContext, case: CaseData) -> str:
    """The city of the partner organisation the case is with: after a referral to another city's
    partner, that city (the case keeps the person's city for their answers and card)."""
    found = context.settings.find_partner(case.partner) if case.partner else None
    return found[0] if found else case.city


def topic_title(context: BotContext, case: CaseData, group: StaffGroup) -> str:
    """The forum topic's name: case number, city, language and topic (🚨 first when urgent)."""
    engine = context.services.engine
    _ = context.translations(group.language).gettext
    topic = engine.kb.title(case.key, group.language) if case.key else _("General question")
    parts = [case.number, engine.city_name(case.city, group.language), case.language.upper(), topic]
    return (("🚨 " if case.urgent else "") + " · ".join(parts))[:128]


def card_keyboard(context: BotContext, case: CaseData, group: StaffGroup) -> InlineKeyboardMarkup:
    """Claim (while nobody owns the case), Close, Return to bot."""
    _ = context.translations(group.language).gettext
    row = [
        CaseAction("close", case.id).button("✅ " + _("Close")),
        CaseAction("return", case.id).button("🤖 " + _("Return to bot")),
    ]
    if case.owner_id is None:
        row.insert(0, CaseAction("claim", case.id).button("✋ " + _("Claim")))
    return InlineKeyboardMarkup([row])


async def case_card(
    context: BotContext,
    case: CaseData,
    group: StaffGroup,
    origin: str | None = None,
    *,
    conversation: bool = True,
) -> str:
    """The case card (HTML): who, where, what about, and the recent conversation (unless
    ``conversation`` is False, or the person has not agreed to share it with the case's last referral:
    a referral, or a transfer after one, carries only the topic, language and city)."""
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
            _("Language: {language}").format(
                language=f"{language_name(case.language, group.language)} ({case.language})"
            )
        ),
        html.escape(_("City: {city}").format(city=engine.city_name(case.city, group.language))),
        # TRANSLATORS: the partner organisation whose caseworkers handle this case (this staff group).
        html.escape(
            _("Organisation: {name}").format(
                name=partner_name(context, case.partner, case.city, group.language)
            )
        ),
        html.escape(_("Topic: {topic}").format(topic=topic)),
        html.escape(_("Opened: {time}").format(time=when(case.created_at, group, group.language))),
        "",
        "<b>" + html.escape(_("Recent conversation")) + "</b>",
    ]
    turns = await context.storage.recent_turns(case.chat_id, context.settings.handoff.card_turns)
    if not conversation or await context.storage.referrals.withheld(case.id):
        turns = []
        lines.append(
            html.escape(
                _(
                    "The person has not agreed (yet) to share their conversation with this organisation: "
                    "you see only the topic, their language and city."
                )
            )
        )
    # The person's closed cases: their messages on this card are marked as an earlier case.
    earlier = (
        [c for c in await context.storage.cases.closed_of(case.chat_id) if c.id != case.id] if turns else []
    )
    block: CaseData | None = None
    for turn in turns:
        within = next(
            (c for c in earlier if c.closed_at and c.created_at <= turn.created_at <= c.closed_at), None
        )
        if within != block:
            lines.append(
                "<b>" + html.escape(_block_heading(context, within or block, within is None, group)) + "</b>"
            )
            block = within
        if turn.role == "bot" and turn.key:
            text = "🤖 " + _("answered: {topic}").format(topic=kb.title(turn.key, group.language))
        else:
            mark = {"user": "👤", "bot": "🤖", "staff": "🙋"}[turn.role]
            shortened = turn.text if len(turn.text) <= TURN_TEXT else turn.text[:TURN_TEXT] + "…"
            text = f"{mark} {shortened}"
        lines.append(html.escape(text))
    if not turns and conversation:
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


def _block_heading(context: BotContext, case: CaseData | None, after: bool, group: StaffGroup) -> str:
    """The heading over a closed case's messages on a later case's card, or (``after``) over the
    messages that came after it."""
    assert case is not None and case.closed_at is not None
    _ = context.translations(group.language).gettext
    if after:
        # TRANSLATORS: on a case card, over the messages after an earlier case; {number} e.g. C-0042.
        return _("Since case {number} was closed").format(number=case.number)
    # TRANSLATORS: on a case card, over an earlier case's messages; {date} e.g. "2 December".
    return _("Earlier case {number} (closed {date})").format(
        number=case.number, date=day(case.closed_at, group, group.language)
    )
