"""The buttons staff press: Claim / Close / Return to bot on the case card, and the /quick replies."""

from __future__ import annotations

from typing import TypeVar

from telegram import Message, Update

from ...language import language_name
from ..callbacks import CaseAction, QuickReply
from ..context import BotContext
from .delivery import not_delivered, to_person
from .ended import ended_alert, ended_here
from .staff import StaffTurn, announce_claim, end_case, is_staff, staff_name, take
from .texts import QUICK_REPLIES, person_texts

__all__ = ["case_button", "quick_button"]

B = TypeVar("B", CaseAction, QuickReply)


async def _staff_press(update: Update, context: BotContext, kind: type[B]) -> tuple[B, StaffTurn] | None:
    """The button of ``kind`` a staff member pressed on a message of an open case's topic. Otherwise
    the query is answered (with the reason, when there is one to tell) and the result is None."""
    query = update.callback_query
    if query is None or not isinstance(query.message, Message):
        return None
    button = kind.parse(query.data)
    case = await context.storage.cases.get(button.case_id) if button else None
    ended = await ended_here(context, query.message) if button else None
    if button is not None and ended is not None and ended[0].case_id == button.case_id:
        # An old card in a topic whose case is over (closed, moved on, or erased with the person).
        if await is_staff(context, ended[1], update.effective_user):
            await query.answer(ended_alert(context, *ended), show_alert=True)
            return None
    group = context.settings.staff_group(case.city, case.partner) if case else None
    if button is None or case is None or group is None or query.message.chat.id != case.group_chat_id:
        await query.answer()  # forged, or the case is gone: nothing to do
        return None
    _ = context.translations(group.language).gettext
    user = update.effective_user
    if not await is_staff(context, group, user):
        await query.answer(_("Only caseworkers of this group can do this."), show_alert=True)
        return None
    assert user is not None
    if not case.is_open:
        await query.answer(_("This case is already closed."), show_alert=True)
        return None
    return button, StaffTurn(case, group, user, query.message)


async def case_button(update: Update, context: BotContext) -> None:
    """Claim / Close / Return to bot on the case card."""
    query = update.callback_query
    if query is None or (pressed := await _staff_press(update, context, CaseAction)) is None:
        return
    button, turn = pressed
    case, group, user = turn.case, turn.group, turn.user
    _ = context.translations(group.language).gettext
    if button.action == "claim":
        won, current = await context.storage.cases.claim(case.id, user.id)
        if won and current is not None:
            await query.answer(_("The case is yours."))
            await announce_claim(context, current, group, user)
        else:
            owner = await staff_name(context, group, current.owner_id if current else None)
            await query.answer(_("{name} has already claimed this case.").format(name=owner), show_alert=True)
    else:
        refusal = await end_case(context, case, group, user, button.action)
        await query.answer(refusal, show_alert=refusal is not None)


async def quick_button(update: Update, context: BotContext) -> None:
    """A /quick ready reply: sent to the person in their language; the menu says what was sent."""
    query = update.callback_query
    if query is None or (pressed := await _staff_press(update, context, QuickReply)) is None:
        return
    button, turn = pressed
    await _send_quick(context, turn, button.index)
    await query.answer()


async def _send_quick(context: BotContext, turn: StaffTurn, index: int) -> None:
    group, user, menu = turn.group, turn.user, turn.message
    _ = context.translations(group.language).gettext
    if index >= len(QUICK_REPLIES):
        return
    owned = await take(context, turn.case, group, user, menu)
    if owned is None:
        return
    text = QUICK_REPLIES[index]
    _p = person_texts(context, owned).gettext
    sent = await to_person(context, owned, "🙋 " + _p("Caseworker:") + "\n" + _p(text))
    if not sent:
        await menu.reply_text(not_delivered(context, group.language, sent))
        return
    await context.storage.cases.audit(owned.id, "quick", user.id, str(index))
    await context.storage.add_turn(owned.chat_id, "staff", _p(text), None)
    await menu.edit_text(
        "📤 "
        + _("Sent in {language}: “{text}”").format(
            language=language_name(owned.language, group.language), text=_(text)
        )
    )
