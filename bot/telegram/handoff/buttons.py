"""The buttons staff press: Claim / Close / Return to bot on the case card, and the /quick replies."""

from __future__ import annotations

from telegram import Message, Update, User

from ...language import native_name
from ...settings import StaffGroup
from ...storage import CaseData
from ..context import BotContext
from .delivery import to_person
from .staff import announce_claim, end_case, is_staff, staff_name, take
from .texts import NOT_DELIVERED, QUICK_REPLIES, person_texts

__all__ = ["case_button"]


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
            await announce_claim(context, current, group, user)
        else:
            owner = await staff_name(context, group, current.owner_id if current else None)
            await query.answer(_("{name} has already claimed this case.").format(name=owner), show_alert=True)
    elif action in ("close", "return"):
        refusal = await end_case(context, case, group, user, action)
        await query.answer(refusal, show_alert=refusal is not None)
    else:
        await query.answer()


async def _send_quick(
    context: BotContext, menu: Message, case: CaseData, group: StaffGroup, user: User, index: str
) -> None:
    _ = context.translations(group.language).gettext
    if not index.isdigit() or int(index) >= len(QUICK_REPLIES):
        return
    owned = await take(context, case, group, user, menu)
    if owned is None:
        return
    text = QUICK_REPLIES[int(index)]
    _p = person_texts(context, owned).gettext
    if not await to_person(context, owned, "🙋 " + _p("Caseworker:") + "\n" + _p(text)):
        await menu.reply_text("⚠️ " + _(NOT_DELIVERED))
        return
    await context.storage.audit(owned.id, "quick", user.id, str(index))
    await context.storage.add_turn(owned.chat_id, "staff", _p(text), None)
    await menu.edit_text(
        "📤 " + _("Sent in {language}: “{text}”").format(language=native_name(owned.language), text=_(text))
    )
