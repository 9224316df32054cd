"""``/refer PARTNER [note]``: hand a case to another partner organisation (in any city).

The referral is recorded first and then taken step by step like a transfer (``setup.py``): a topic in
the other partner's staff group, a card there that shows only the topic, the person's language and city
(and the note); only then does the case move, the referring topic is told and closed, and the person is
asked, with one tap, whether their conversation may go with it (``referrals.py``): only a yes brings the
recent conversation across. When Telegram fails on the way, the case stays where it was until the
reconciler has finished the referral.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..context import BotContext
from .cards import partner_name
from .setup import move_case
from .staff import StaffTurn, staff_case, staff_name

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
    settings = context.settings
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
    city, target = found
    await move_case(
        context, message, case, user, group.language, to_city=city, to_partner=target.id, note=note
    )
