"""Referrals between partner organisations, after ``/refer`` (``partners.py``): the person's consent,
the referring topic told when the case is taken, and reminders of referrals nobody has taken.

Audit entries name the partners and the consent, never a message or a note.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from typing import TYPE_CHECKING

from telegram import InlineKeyboardMarkup, Message, Update

from ..callbacks import ShareConversation
from ..context import BotContext
from .cards import case_card, partner_name
from .delivery import to_person, to_topic
from .texts import person_texts

if TYPE_CHECKING:
    from ...settings import Partner
    from ...storage import CaseData, ReferralData

__all__ = ["ask_consent", "in_topic", "referral_claimed", "remind_referrals", "share_button"]


def in_topic(case: CaseData, chat_id: int, thread_id: int | None) -> CaseData:
    """``case`` as seen from another topic (to write there with ``to_topic``)."""
    return dataclasses.replace(case, group_chat_id=chat_id, thread_id=thread_id)


def _minutes(delta: dt.timedelta) -> int:
    return max(1, round(delta.total_seconds() / 60))


async def ask_consent(context: BotContext, case: CaseData, referral: ReferralData, target: Partner) -> None:
    """Ask the person, in their language, whether their conversation may go to ``target``."""
    _p = person_texts(context, case).gettext
    organisation = partner_name(context, target.id, case.city, case.language)
    buttons = InlineKeyboardMarkup(
        [
            [
                ShareConversation(referral.id, True).button("✅ " + _p("Yes, share it")),
                ShareConversation(referral.id, False).button("✖️ " + _p("No, do not share it")),
            ]
        ]
    )
    await to_person(
        context,
        case,
        _p(
            "{organisation} can help you better with this, so a caseworker has passed your request to "
            "them. May they see your conversation so far? If you say no, they only learn what your "
            "question is about, your language and your city."
        ).format(organisation=organisation),
        buttons,
    )


async def share_button(update: Update, context: BotContext) -> None:
    """The person's yes or no: may their conversation go with the referral."""
    query, chat = update.callback_query, update.effective_chat
    if query is None or chat is None:
        return
    await query.answer()
    button = ShareConversation.parse(query.data)
    if button is None:
        return
    storage, settings = context.storage, context.settings
    referral = await storage.referrals.answer(button.referral_id, chat.id, button.share)
    if referral is None:
        return  # answered before, or not theirs
    case = await storage.cases.get(referral.case_id)
    if case is None:
        return
    if isinstance(query.message, Message):
        await query.message.edit_reply_markup(None)
    _p = person_texts(context, case).gettext
    organisation = partner_name(context, referral.to_partner, case.city, case.language)
    if button.share:
        told = _p("Thank you. {organisation} can now see your conversation.")
    else:
        told = _p(
            "All right: {organisation} only knows what your question is about, your language and your "
            "city. What you write here from now on goes to them."
        )
    await to_person(context, case, told.format(organisation=organisation))
    group = settings.staff_group(case.city, case.partner)
    if group is None or not case.is_open or case.partner != referral.to_partner:
        return  # closed or referred on meanwhile: nothing more goes to that topic
    _ = context.translations(group.language).gettext
    if button.share:
        agreed = html.escape(_("The person agreed to share their conversation with you."))
        await to_topic(context, case, "✅ " + agreed + "\n\n" + await case_card(context, case, group))
    else:
        await to_topic(
            context,
            case,
            "✖️ "
            + html.escape(
                _(
                    "The person did not agree to share their earlier conversation. What they write from now "
                    "on reaches you here."
                )
            ),
        )


async def referral_claimed(context: BotContext, case: CaseData) -> None:
    """The case was claimed: tell the topics of the partners that referred it to this one."""
    if case.partner is None:
        return
    for referral in await context.storage.referrals.claimed(case.id, case.partner):
        group = context.settings.staff_group(referral.city, referral.from_partner)
        if group is None:
            continue
        _ = context.translations(group.language).gettext
        organisation = partner_name(context, case.partner, case.city, group.language)
        await to_topic(
            context,
            in_topic(case, referral.from_chat_id, referral.from_thread_id),
            "✅ "
            + html.escape(
                _("{organisation} has taken {case}, which you referred to them.").format(
                    organisation=organisation, case=case.number
                )
            ),
        )


async def remind_referrals(context: BotContext) -> None:
    """Job: referrals the other partner has not taken after ``referral_remind_after_minutes`` are
    reminded in both topics (again as long as they wait; when the receiving partner is at work)."""
    settings, storage = context.settings, context.storage
    now = context.clock()
    after = dt.timedelta(minutes=settings.handoff.referral_remind_after_minutes)
    for referral in await storage.referrals.due(now, after):
        case = await storage.cases.get(referral.case_id)
        receiving = settings.staff_group(case.city, case.partner) if case else None
        referring = settings.staff_group(referral.city, referral.from_partner)
        if case is None or receiving is None:
            continue
        if not case.urgent and not receiving.hours().is_open(now):
            continue  # reminded when they are back at work
        if not await storage.referrals.reminded(referral):
            continue  # another instance reminded it first
        minutes = _minutes(now - referral.created_at)
        staff = context.translations(receiving.language)
        by = partner_name(context, referral.from_partner, referral.city, receiving.language)
        await to_topic(
            context,
            case,
            "⏰ "
            + html.escape(
                staff.ngettext(
                    "{case} was referred to you by {organisation} {minutes} minute ago and nobody has "
                    "taken it yet. Who can take it?",
                    "{case} was referred to you by {organisation} {minutes} minutes ago and nobody has "
                    "taken it yet. Who can take it?",
                    minutes,
                ).format(case=case.number, organisation=by, minutes=minutes)
            ),
        )
        if referring is None:
            continue
        ours = context.translations(referring.language)
        to = partner_name(context, referral.to_partner, case.city, referring.language)
        await to_topic(
            context,
            in_topic(case, referral.from_chat_id, referral.from_thread_id),
            "⏰ "
            + html.escape(
                ours.ngettext(
                    "{organisation} has not taken {case} yet, {minutes} minute after you referred it. "
                    "You may want to contact them.",
                    "{organisation} has not taken {case} yet, {minutes} minutes after you referred it. "
                    "You may want to contact them.",
                    minutes,
                ).format(case=case.number, organisation=to, minutes=minutes)
            ),
        )
