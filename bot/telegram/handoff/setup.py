"""Opening, transferring and referring a case step by step, so that a crash at any step is repaired.

A new case (or a transfer or referral request) is committed together with its next step
(``storage.steps``):
``topic`` → ``card`` → ``notice``. ``continue_setup`` takes the steps that are left, recording each
result at once (the topic's id right after Telegram created it), under a short lease so that nobody
else takes them at the same time. It is called by whoever comes next: the handler that opened the
case, the person's next message or /human, and ``reconcile`` (a job at start-up and then
periodically), which finishes what a crash left half-done. A referral (``/refer``) is a transfer to a
partner organisation chosen by id: its card carries the referring caseworker's note instead of the
conversation, and once the case has moved the person is asked whether their conversation may follow
(``referrals.ask_consent``).

Telegram refusing a step (``BadRequest``, ``Forbidden``: no rights to create topics, the bot left the
group) gives up at once: a new case is closed (returned to the bot) and the person offered the city's
contacts or /human again; a transfer or referral is called off and the case stays where it was.
Anything else (a timeout, Telegram unreachable) is tried again by the reconciler, for up to an hour.

A topic whose case ended before it was ready (closed while its card was still to be posted), or that a
called-off transfer or referral no longer needs, is labelled as not in use and closed.
"""

from __future__ import annotations

import dataclasses
import enum
import html
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from telegram import Message, User
from telegram.error import BadRequest, Forbidden, TelegramError

from ...storage import CaseData
from ...storage._records import CaseSetupData
from ..context import BotContext
from .cards import card_keyboard, case_card, partner_city, partner_name, topic_title, when
from .delivery import close_topic, to_person, to_topic
from .referrals import ask_consent
from .reminders import remind_after, reminder_time
from .staff import mention, staff_name
from .texts import person_texts

if TYPE_CHECKING:
    from ...settings import Partner, StaffGroup

__all__ = ["GIVE_UP_AFTER", "LEASE", "Progress", "continue_setup", "move_case", "reconcile"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
# How long one taker may take the steps of a case before others may (a crash leaves its lease).
LEASE = timedelta(minutes=2)
# How long steps that fail for a passing reason (timeouts, Telegram unreachable) are tried again.
GIVE_UP_AFTER = timedelta(hours=1)
# A case is left to the handler that opened it this long before the reconciler steps in.
GRACE = timedelta(seconds=30)


class Progress(enum.Enum):
    """Where setting up a case got to."""

    DONE = "done"  # fully set up (or nothing was left to do)
    WAITING = "waiting"  # a step failed for a passing reason: it is tried again later
    FAILED = "failed"  # given up: a new case was returned to the bot, a transfer or referral called off
    BUSY = "busy"  # someone else is taking the steps right now


class _Refused(Exception):
    """Telegram refused the step as it is (it will not work when tried again)."""


class _NotNow(Exception):
    """The step failed for a passing reason."""


async def _call(case: CaseData, what: str, call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except (BadRequest, Forbidden) as exc:
        logger.error("could not %s for %s: %s", what, case.number, type(exc).__name__)
        raise _Refused from exc
    except TelegramError as exc:
        logger.warning("could not %s for %s yet: %s", what, case.number, type(exc).__name__)
        raise _NotNow from exc


async def move_case(
    context: BotContext,
    message: Message,
    case: CaseData,
    user: User,
    language: str,
    *,
    to_city: str,
    to_partner: str | None = None,
    note: str | None = None,
) -> None:
    """/transfer and /refer: record the move first, then take it step by step (the new topic, its card,
    the move, the notices). A crash anywhere is finished by the reconciler; until the move the case
    stays where it is. The staff member who asked (in ``language``) hears when it cannot go on now."""
    _ = context.translations(language).gettext
    if not await context.storage.steps.request_transfer(
        case.id, to_city=to_city, actor_id=user.id, to_partner=to_partner, note=note
    ):
        await message.reply_text(_("This case is already being moved."))
        return
    if await continue_setup(context, case.id, actor=user) in (Progress.WAITING, Progress.BUSY):
        await message.reply_text(
            "⏳ "
            + _(
                "The other group cannot be reached right now. I will keep trying; the case stays here "
                "until it has moved."
            )
        )


async def continue_setup(
    context: BotContext,
    case_id: int,
    *,
    struggling: bool = False,
    actor: User | None = None,
    live: bool = True,
) -> Progress:
    """Take the steps of opening, transferring or referring the case that are left.

    ``live``: a handler is answering the person (or the staff member) right now and tells them the
    outcome itself; from the reconciler (``live=False``) the person is told here when a case is given
    up. ``struggling``: the notice starts by saying the bot could not find the answer. ``actor``: who
    asked for a transfer or referral (named in the old topic).
    """
    steps = context.storage.steps
    setup = await steps.take(case_id, LEASE)
    if setup is None:
        return Progress.DONE if await steps.get(case_id) is None else Progress.BUSY
    try:
        case = await context.storage.cases.get(case_id)
        if case is None:  # erased meanwhile (the steps went with it)
            return Progress.DONE
        if not case.is_open:
            await _abandon(context, case, setup)
            return Progress.FAILED
        if setup.kind == "open":
            return await _open(context, case, setup, struggling=struggling, live=live)
        return await _transfer(context, case, setup, actor=actor)
    finally:
        await steps.release(case_id)


async def reconcile(context: BotContext) -> None:
    """Job, at start-up and then periodically: finish the cases a crash (or Telegram) left half-opened,
    half-transferred or half-referred (or give them up), and label the topics their cases no longer use."""
    now = context.clock()
    for setup in await context.storage.steps.pending(now):
        if now - setup.created_at < GRACE:
            continue  # the handler that opened it is probably still at it
        try:
            progress = await continue_setup(context, setup.case_id, live=False)
        except Exception:  # one case must not stop the others; the next round tries it again
            logger.exception("could not repair case %d", setup.case_id)
            continue
        logger.info("repaired the setup of case %d: %s", setup.case_id, progress.value)


# --- opening ----------------------------------------------------------------------------------------


async def _open(
    context: BotContext, case: CaseData, setup: CaseSetupData, *, struggling: bool, live: bool
) -> Progress:
    storage = context.storage
    group = context.settings.staff_group(case.city, case.partner)
    if group is None:
        return await _give_up(context, case, live=live)
    step = setup.step
    try:
        if step == "topic":
            topic = await _call(
                case,
                "open a topic",
                lambda: context.bot.create_forum_topic(group.chat_id, topic_title(context, case, group)),
            )
            # Recorded at once: from here on the topic is the case's, whatever happens next.
            await storage.steps.topic_made(case.id, topic.message_thread_id)
            case, step = dataclasses.replace(case, thread_id=topic.message_thread_id), "card"
        if step == "card":
            card = await case_card(context, case, group)
            thread_id = case.thread_id
            posted = await _call(
                case,
                "post the card",
                lambda: context.bot.send_message(
                    group.chat_id,
                    card,
                    message_thread_id=thread_id,
                    parse_mode="HTML",
                    reply_markup=card_keyboard(context, case, group),
                    disable_web_page_preview=True,
                ),
            )
            await storage.steps.card_posted(case.id, posted.message_id)
    except _Refused:
        return await _give_up(context, case, live=live)
    except _NotNow:
        if context.clock() - setup.created_at < GIVE_UP_AFTER:
            return Progress.WAITING
        return await _give_up(context, case, live=live)
    await to_person(context, case, _opened_notice(context, case, group, struggling=struggling))
    await storage.steps.done(case.id)
    return Progress.DONE


def _opened_notice(context: BotContext, case: CaseData, group: StaffGroup, *, struggling: bool) -> str:
    """What the person is told once their case has reached the caseworkers."""
    texts = person_texts(context, case)
    _ = texts.gettext
    now = context.clock()
    city = context.services.engine.city_name(case.city, case.language)
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
        minutes = round(remind_after(context, case.urgent))
        parts.append(
            texts.ngettext(
                "Caseworkers are at work now. If nobody answers within {minutes} minute, I will remind them.",
                "Caseworkers are at work now. If nobody answers within {minutes} minutes, "
                "I will remind them.",
                minutes,
            ).format(minutes=minutes)
        )
    else:
        # TRANSLATORS: {time} is a weekday, date and time in your language's usual pattern, e.g.
        # "Mon, November 30, 8:00 AM" (Czech "po 30. listopadu 8:00").
        parts.append(
            _(
                "Caseworkers are not at work right now. They will be back on {time}, and your messages "
                "will be waiting for them."
            ).format(time=when(hours.next_opening(now), group, case.language, weekday=True))
        )
        if case.urgent:
            parts.append(_("If you are in danger, call 112 now."))
    return "\n\n".join(parts)


async def _give_up(context: BotContext, case: CaseData, *, live: bool) -> Progress:
    """The case cannot reach its staff group: return it to the bot, label a topic it already has."""
    await context.storage.cases.close(case.id, None, "return")
    if case.thread_id is not None:
        await _label_unused(context, case, case.group_chat_id, case.thread_id)
    await context.storage.steps.done(case.id)
    if not live:
        _p = person_texts(context, case).gettext
        await to_person(
            context, case, _p("Sorry, I could not reach a caseworker. Please send /human to try again.")
        )
    return Progress.FAILED


async def _label_unused(
    context: BotContext, case: CaseData, chat_id: int, thread_id: int, *, called_off: bool = False
) -> None:
    """A topic the bot created whose case will not use it: say so in it (``called_off``: the transfer or
    referral that made it was called off; else the case ended first), and close it."""
    group = context.settings.staff_group(case.city, case.partner)
    language = group.language if group else context.settings.default_language
    _ = context.translations(language).gettext
    topic = dataclasses.replace(case, group_chat_id=chat_id, thread_id=thread_id)
    if called_off:
        said = _("This topic is not in use: moving {case} here was called off; it stays where it was.")
    else:
        said = _("This topic is not in use: {case} ended before it was ready.")
    await to_topic(context, topic, "🗂 " + html.escape(said.format(case=case.number)))
    await close_topic(context, topic)


async def _abandon(context: BotContext, case: CaseData, setup: CaseSetupData) -> None:
    """The case was closed while it was being set up: close the topic nobody will use."""
    if setup.step == "card":
        if setup.kind == "open" and case.thread_id is not None:
            await _label_unused(context, case, case.group_chat_id, case.thread_id)
        elif setup.kind in ("transfer", "refer") and setup.to_thread_id is not None:
            target = _target(context, case, setup)
            if target is not None:
                there = dataclasses.replace(case, partner=target.id)  # labelled in its staff's language
                await _label_unused(context, there, target.chat_id, setup.to_thread_id)
    await context.storage.steps.done(case.id)


# --- transferring and referring ---------------------------------------------------------------------


def _target(context: BotContext, case: CaseData, setup: CaseSetupData) -> Partner | None:
    """Where a transfer or referral goes: the partner organisation referred to (in any city), or in the
    new city the partner that handles the case's topic in the person's language."""
    if setup.kind == "refer":
        found = context.settings.find_partner(setup.to_partner) if setup.to_partner else None
        return found[1] if found else None
    return context.settings.route(setup.to_city or case.city, case.key, case.language)


def _origin(context: BotContext, case: CaseData, setup: CaseSetupData, target: Partner) -> str:
    """The line on the new card that says where the case comes from (and a referral's note)."""
    _t = context.translations(target.language).gettext
    if setup.kind == "refer":
        origin = "↪️ " + _t("Referred by {organisation}.").format(
            organisation=partner_name(context, case.partner, case.city, target.language)
        )
        if setup.note:
            origin += "\n📝 " + _t("Note from the referring caseworker: {note}").format(note=setup.note)
        return origin
    # The city of the partner the case is with, not the person's (they differ after a referral).
    from_city = context.services.engine.city_name(partner_city(context, case), target.language)
    return "➡️ " + _t("Transferred from {city}.").format(city=from_city)


async def _transfer(
    context: BotContext, case: CaseData, setup: CaseSetupData, *, actor: User | None
) -> Progress:
    """Move the case to ``setup.to_city`` (a referral: to ``setup.to_partner``): its new topic and card
    first; the case itself moves (one conditional UPDATE) only once they exist, so until then it stays
    fully usable where it was."""
    storage = context.storage
    city = setup.to_city
    assert city is not None
    referral = setup.kind == "refer"
    target = _target(context, case, setup)
    old = dataclasses.replace(
        case, group_chat_id=setup.from_group_chat_id or case.group_chat_id, thread_id=setup.from_thread_id
    )
    if target is None:
        return await _call_off(context, old, setup)
    step, thread_id = setup.step, setup.to_thread_id
    if step == "card" and thread_id is not None and case.thread_id == thread_id:
        step = "notice"  # it moved, and the bot stopped before it could record that
    # A referral keeps the person's city (their answers, their card); a transfer moves them to ``city``.
    moved = dataclasses.replace(
        case,
        city=case.city if referral else city,
        group_chat_id=target.chat_id,
        owner_id=None,
        partner=target.id,
        thread_id=thread_id,
    )
    try:
        if step == "topic":
            topic = await _call(
                case,
                f"open a topic in {city}",
                lambda: context.bot.create_forum_topic(target.chat_id, topic_title(context, moved, target)),
            )
            thread_id = topic.message_thread_id
            await storage.steps.advance(case.id, "card", to_thread_id=thread_id)
            moved, step = dataclasses.replace(moved, thread_id=thread_id), "card"
        if step == "card":
            origin = _origin(context, case, setup, target)
            card = await case_card(context, moved, target, origin, conversation=not referral)
            posted = await _call(
                case,
                f"post the card in {city}",
                lambda: context.bot.send_message(
                    target.chat_id,
                    card,
                    message_thread_id=thread_id,
                    parse_mode="HTML",
                    reply_markup=card_keyboard(context, moved, target),
                    disable_web_page_preview=True,
                ),
            )
            actor_id = setup.actor_id
            assert thread_id is not None and actor_id is not None
            remind_at = reminder_time(context, target, context.clock(), case.urgent)
            if referral:
                current = context.settings.staff_group(case.city, case.partner)
                moved_now = (
                    await storage.referrals.refer(
                        old,
                        from_partner=current.id if current else case.partner or "",
                        to_partner=target.id,
                        group_chat_id=target.chat_id,
                        thread_id=thread_id,
                        card_message_id=posted.message_id,
                        remind_at=remind_at,
                        actor_id=actor_id,
                    )
                    is not None
                )
            else:
                moved_now = (
                    await storage.cases.transfer(
                        case.id,
                        city=city,
                        group_chat_id=target.chat_id,
                        thread_id=thread_id,
                        card_message_id=posted.message_id,
                        remind_at=remind_at,
                        actor_id=actor_id,
                        partner=target.id,
                    )
                    is not None
                )
            if not moved_now:  # closed (or moved) meanwhile
                await _label_unused(context, moved, target.chat_id, thread_id)
                await storage.steps.done(case.id)
                return Progress.FAILED
            await storage.steps.advance(case.id, "notice", to_card_message_id=posted.message_id)
    except _Refused:
        return await _call_off(context, old, setup, moved if step == "card" else None)
    except _NotNow:
        if context.clock() - setup.created_at < GIVE_UP_AFTER:
            return Progress.WAITING
        return await _call_off(context, old, setup, moved if step == "card" else None)
    if referral:
        await _announce_referral(context, old, setup, target, actor)
    else:
        await _announce_transfer(context, old, setup, city, actor)
    await storage.steps.done(case.id)
    return Progress.DONE


async def _announce_transfer(
    context: BotContext, old: CaseData, setup: CaseSetupData, city: str, actor: User | None
) -> None:
    """The case has moved: say so in the old topic and close it, and tell the person."""
    engine = context.services.engine
    group = _group_of(context, old.group_chat_id)
    if group is not None and old.thread_id is not None:
        _ = context.translations(group.language).gettext
        name = mention(actor) if actor else html.escape(await staff_name(context, group, setup.actor_id))
        await to_topic(
            context,
            old,
            "➡️ "
            + _("{name} transferred this case to {city}.").format(
                name=name, city=html.escape(engine.city_name(city, group.language))
            ),
        )
        await close_topic(context, old)
    _p = person_texts(context, old).gettext
    await to_person(
        context,
        old,
        _p("Your conversation has been passed to caseworkers in {city}.").format(
            city=engine.city_name(city, old.language)
        ),
    )


async def _announce_referral(
    context: BotContext, old: CaseData, setup: CaseSetupData, target: Partner, actor: User | None
) -> None:
    """The case has gone to the other partner: say so in the old topic and close it, and ask the person
    whether their conversation may follow (unless they have answered already)."""
    storage = context.storage
    group = _group_of(context, old.group_chat_id)
    if group is not None and old.thread_id is not None:
        _ = context.translations(group.language).gettext
        name = mention(actor) if actor else html.escape(await staff_name(context, group, setup.actor_id))
        organisation = partner_name(context, target.id, old.city, group.language)
        await to_topic(
            context,
            old,
            "↪️ "
            + _(
                "{name} referred this case to {organisation}. The person is asked whether their "
                "conversation may go with it; this topic shows when {organisation} takes the case."
            ).format(name=name, organisation=html.escape(organisation)),
        )
        await close_topic(context, old)
    referred = await storage.cases.get(old.id)
    referrals = await storage.referrals.of_case(old.id)
    if referred is not None and referrals and referrals[-1].consent is None:
        await ask_consent(context, referred, referrals[-1], target)


def _group_of(context: BotContext, chat_id: int) -> StaffGroup | None:
    """The staff group of a chat (the topic a transfer leaves; the case has its new partner by then)."""
    return next((p for _city, p in context.settings.all_partners() if p.chat_id == chat_id), None)


async def _call_off(
    context: BotContext, old: CaseData, setup: CaseSetupData, moved: CaseData | None = None
) -> Progress:
    """The other group cannot be reached: the case stays where it was; a new topic is labelled."""
    if moved is not None and moved.thread_id is not None:
        await _label_unused(context, moved, moved.group_chat_id, moved.thread_id, called_off=True)
    group = _group_of(context, old.group_chat_id)
    if group is not None:
        _ = context.translations(group.language).gettext
        if setup.kind == "refer":
            said = _("The other organisation's group cannot be reached; the case stays here.")
        else:
            said = _("The other group cannot be reached; the case stays here.")
        await to_topic(context, old, "⚠️ " + html.escape(said))
    await context.storage.steps.done(old.id)
    return Progress.FAILED
