"""Who may act on a case, and the steps every staff action shares: finding the case of a topic
(``staff_case``), owning it (``take``), and ending it (``end_case``)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telegram import InlineKeyboardMarkup, Message, Update, User
from telegram.constants import ChatMemberStatus
from telegram.error import BadRequest, TelegramError

from ...storage import CaseData
from ..callbacks import Rating
from ..context import BotContext
from .cards import card_keyboard
from .delivery import close_topic, to_person, to_topic, update_card
from .ended import ended_here, tell_ended
from .referrals import referral_claimed
from .texts import N_, person_texts

if TYPE_CHECKING:
    from ...settings import StaffGroup

__all__ = [
    "StaffTurn",
    "announce_claim",
    "end_case",
    "is_staff",
    "mention",
    "staff_case",
    "staff_name",
    "take",
]

logger = logging.getLogger(__name__)

STAFF_STATUSES = {ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.MEMBER}


async def is_staff(context: BotContext, group: StaffGroup, user: User | None) -> bool:
    """A member of the staff group (and on its allow-list, if it has one); bots never are."""
    if user is None or user.is_bot:
        return False
    if group.allow and user.id not in group.allow:
        return False
    try:
        member = await context.bot.get_chat_member(group.chat_id, user.id)
    except BadRequest:  # a user Telegram does not know here
        return False
    except TelegramError as exc:  # no answer even after the delivery layer's retries
        raise StaffUnchecked from exc
    return member.status in STAFF_STATUSES


class StaffUnchecked(Exception):
    """Telegram did not say whether someone is staff (it could not be reached)."""


# TRANSLATORS: a reply in the topic, to a caseworker's message that could not be passed on.
UNCHECKED = N_(
    "Not sent: I could not check that you are a caseworker of this group (Telegram did not answer). "
    "Please send your message again in a minute."
)


async def staff_name(context: BotContext, group: StaffGroup, user_id: int | None) -> str:
    """A staff member's first name, looked up in Telegram (names are never stored)."""
    _ = context.translations(group.language).gettext
    if user_id is None:
        return _("nobody")
    try:
        member = await context.bot.get_chat_member(group.chat_id, user_id)
    except TelegramError:
        return _("another caseworker")
    return member.user.first_name


def mention(user: User) -> str:
    """The staff member as an HTML mention, for notes in the topic."""
    return user.mention_html()


@dataclass(frozen=True, slots=True)
class StaffTurn:
    """A message from staff in the topic of an open case."""

    case: CaseData
    group: StaffGroup
    user: User
    message: Message


async def _staff_turn(update: Update, context: BotContext) -> StaffTurn | None:
    """The open case of the topic this message comes from, if its sender is staff; else None. Staff
    writing in a topic whose case is over are told so, once per topic."""
    message, user = update.effective_message, update.effective_user
    if message is None or message.message_thread_id is None or not message.is_topic_message:
        return None
    case = await context.storage.cases.in_topic(message.chat.id, message.message_thread_id)
    if case is None:
        ended = await ended_here(context, message)
        if ended is not None and await is_staff(context, ended[1], user):
            await tell_ended(context, message, *ended)
        return None
    group = context.settings.staff_group(case.city, case.partner)
    try:
        staff = group is not None and await is_staff(context, group, user)
    except StaffUnchecked:
        assert group is not None
        logger.warning("could not check who wrote in the topic of %s", case.number)
        await context.delivery.reply(message, "⚠️ " + context.gettext(group.language, UNCHECKED))
        return None
    if not staff or group is None:
        logger.info("ignored an update from someone who is not staff in the topic of %s", case.number)
        return None
    assert user is not None
    return StaffTurn(case, group, user, message)


StaffHandler = Callable[[BotContext, StaffTurn], Awaitable[None]]


def staff_case(handler: StaffHandler) -> Callable[[Update, BotContext], Coroutine[Any, Any, None]]:
    """Run ``handler`` only for messages from staff in the topic of an open case; ignore the rest."""

    @functools.wraps(handler)
    async def run(update: Update, context: BotContext) -> None:
        turn = await _staff_turn(update, context)
        if turn is not None:
            await handler(context, turn)

    return run


async def announce_claim(context: BotContext, case: CaseData, group: StaffGroup, user: User) -> None:
    """Tell the topic and the person that ``user`` has the case now; the card loses its Claim button;
    partners that referred the case here see that it was taken."""
    _ = context.translations(group.language).gettext
    await to_topic(context, case, "✋ " + _("{name} claimed this case.").format(name=mention(user)))
    await update_card(context, case, card_keyboard(context, case, group))
    _p = person_texts(context, case).gettext
    await to_person(context, case, _p("A caseworker is now looking at your conversation."))
    await referral_claimed(context, case)


async def take(
    context: BotContext, case: CaseData, group: StaffGroup, user: User, refuse_to: Message
) -> CaseData | None:
    """The case, owned by ``user`` (who claims it if nobody owns it). When it is closed or someone
    else's, ``refuse_to`` gets the reason and the result is None."""
    _ = context.translations(group.language).gettext
    if case.owner_id is None:
        won, current = await context.storage.cases.claim(case.id, user.id)
        if current is None or not current.is_open:
            await refuse_to.reply_text(_("This case is already closed."))
            return None
        if won:
            await announce_claim(context, current, group, user)
        case = current
    if case.owner_id != user.id:
        owner = await staff_name(context, group, case.owner_id)
        await refuse_to.reply_text(
            _("{name} has claimed this case. Use /note for internal notes.").format(name=owner)
        )
        return None
    return case


async def end_case(
    context: BotContext, case: CaseData, group: StaffGroup, user: User, action: str
) -> str | None:
    """Close the case (``close``) or hand it back to the bot (``return``). Returns a refusal, if any."""
    _ = context.translations(group.language).gettext
    if case.owner_id not in (None, user.id):
        owner = await staff_name(context, group, case.owner_id)
        return _("Only {name}, who claimed this case, can close it.").format(name=owner)
    closed = await context.storage.cases.close(case.id, user.id, action)
    if closed is None:
        return _("This case is already closed.")
    _p = person_texts(context, case).gettext
    if action == "close":
        stars = InlineKeyboardMarkup([[Rating(case.id, n).button("⭐" * n) for n in range(1, 6)]])
        await to_person(
            context,
            case,
            _p("The caseworker has closed this conversation. From now on I answer your questions again.")
            + "\n\n"
            + _p("How much did the caseworker help you? Please choose 1 to 5 stars."),
            stars,
        )
        done = "✅ " + _("{name} closed this case.").format(name=mention(user))
    else:
        await to_person(
            context,
            case,
            _p(
                "A caseworker has passed the conversation back to me. Ask me anything, or send /human "
                "to talk to a person again."
            ),
        )
        done = "🤖 " + _("{name} returned this case to the bot.").format(name=mention(user))
    await to_topic(context, case, done)
    await update_card(context, case, None, logging.INFO)
    await close_topic(context, case)
    return None
