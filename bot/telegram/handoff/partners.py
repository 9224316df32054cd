"""``/refer PARTNER [note]``: hand a case to another partner organisation (in any city).

The case moves to the other partner's staff group at once, with a card that shows only the topic, the
person's language and city; the person is asked, with one tap, whether their conversation may go with
it (``referrals.py``), and only a yes brings the recent conversation across.
"""

from __future__ import annotations

import dataclasses
import html
from typing import TYPE_CHECKING

from ..context import BotContext
from .cards import open_case_topic, partner_name
from .delivery import close_topic, to_topic
from .referrals import ask_consent
from .reminders import reminder_time
from .staff import StaffTurn, mention, staff_case, staff_name

if TYPE_CHECKING:
    from ...settings import Partner

__all__ = ["refer"]


def _usage(context: BotContext, current: Partner, language: str) -> str:
    """How to use /refer, with the partners one can refer to."""
    _ = context.translations(language).gettext
    engine = context.services.engine
    others = [
        f"{partner.id} — {partner_name(context, partner.id, city, language)} "
        f"({engine.city_name(city, language)})"
        for city, partner in context.settings.all_partners()
        if partner.id != current.id
    ]
    if not others:
        return _("There is no other partner organisation to refer this case to.")
    return (
        _(
            "Usage: /refer PARTNER NOTE. The note goes with the case even if the person does not agree "
            "to share their conversation: say what they need, nothing personal. Partner organisations:"
        )
        + "\n"
        + "\n".join(others)
    )


@staff_case
async def refer(context: BotContext, turn: StaffTurn) -> None:
    """/refer PARTNER [note]: hand the case to another partner organisation (in any city); the person
    is asked whether their conversation may go with it."""
    case, group, user, message = turn.case, turn.group, turn.user, turn.message
    settings, storage = context.settings, context.storage
    _ = context.translations(group.language).gettext
    if case.owner_id not in (None, user.id):
        owner = await staff_name(context, group, case.owner_id)
        await message.reply_text(_("Only {name}, who claimed this case, can refer it.").format(name=owner))
        return
    current = settings.staff_group(case.city, case.partner)
    assert current is not None  # the case's topic is in its partner's group
    words = (message.text or "").split(maxsplit=2)
    wanted = words[1].strip().lower() if len(words) > 1 else ""
    note = words[2].strip() if len(words) > 2 else ""
    found = settings.find_partner(wanted) if wanted else None
    if found is None or found[1].id == current.id:
        await message.reply_text(_usage(context, current, group.language))
        return
    target = found[1]
    now = context.clock()
    _t = context.translations(target.language).gettext
    origin = "↪️ " + _t("Referred by {organisation}.").format(
        organisation=partner_name(context, current.id, case.city, target.language)
    )
    if note:
        origin += "\n📝 " + _t("Note from the referring caseworker: {note}").format(note=note)
    moved = dataclasses.replace(case, group_chat_id=target.chat_id, owner_id=None, partner=target.id)
    opened = await open_case_topic(
        context, moved, target, origin, where=f" at partner {target.id}", conversation=False
    )
    if opened is None:
        await message.reply_text(
            "⚠️ " + _("The other organisation's group cannot be reached; the case stays here.")
        )
        return
    thread_id, card_id = opened
    done = await storage.referrals.refer(
        case,
        from_partner=current.id,
        to_partner=target.id,
        group_chat_id=target.chat_id,
        thread_id=thread_id,
        card_message_id=card_id,
        remind_at=reminder_time(context, target, now, case.urgent),
        actor_id=user.id,
    )
    if done is None:
        return
    referred, referral = done
    organisation = partner_name(context, target.id, case.city, group.language)
    await to_topic(
        context,
        case,
        "↪️ "
        + _(
            "{name} referred this case to {organisation}. The person is asked whether their "
            "conversation may go with it; this topic shows when {organisation} takes the case."
        ).format(name=mention(user), organisation=html.escape(organisation)),
    )
    await close_topic(context, case)
    await ask_consent(context, referred, referral, target)
