"""Delivery faults with the whole bot: a 5-second storm of 429s, a person who blocked the bot during
their case, a label too long for a caption, a dropped connection, and a staff check Telegram does not
answer. The bot runs as in production (inbox, long polling) against the local Bot API server, whose
injected faults answer instead of Telegram; times are read from the server's own log.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import pytest

from bot.runtime import Services
from bot.telegram.handoff.staff import UNCHECKED
from bot.telegram.handoff.texts import NOT_DELIVERED

from . import test_handoff
from .botapi import DROP
from .botapi.server import Call
from .test_delivery import quiet_after_each_429
from .test_handoff import PRAGUE, World, sent_to
from .test_telegram import Chat

pytestmark = pytest.mark.rasa
world = test_handoff.world  # the fixture: the fake Telegram with Prague's staff group, the bot's settings

SORRY = "Sorry, something went wrong on my side. Please try again, or talk to a person with /human."
QUESTIONS = (
    "how do I renew my residence permit",
    "where can I find a doctor",
    "how do I enrol my child in school",
)


def answered(chat_id: int) -> Callable[[Call], bool]:
    """A message that reached ``chat_id``."""
    return lambda call: call.ok and sent_to(call, chat_id)


async def test_after_a_five_second_storm_of_429s_every_reply_arrives_and_none_is_an_apology(
    world: World, services: Services
) -> None:
    api = world.api
    async with world.running():
        people = [Chat(api, api.user(3001 + i, f"P{i}", language_code="en"), services) for i in range(3)]
        for person in people:
            await person.onboard("en", "prague")
        mark = len(api.calls)
        api.faults.add(429, retry_after=2, seconds=5)  # every method but getUpdates, "typing…" included
        for person, question in zip(people, QUESTIONS, strict=True):
            await person.user.send(question)
        for person in people:
            await api.wait_for("sendMessage", answered(person.user.id), since=mark, timeout=60)
        calls = api.calls[mark:]
        floods = [c for c in calls if c.error and c.error.startswith("Too Many Requests")]
        # ("typing…" goes only when an answer takes over 0.5 s, so it may or may not meet the storm.)
        assert "sendMessage" in {c.method for c in floods}
        for person in people:
            theirs = [c for c in calls if sent_to(c, person.user.id)]
            assert quiet_after_each_429(theirs, 2.0)  # retry_after honoured in each chat
            answers = [c for c in theirs if c.ok and c.method == "sendMessage"]
            assert answers and all(c.params["text"] != person.t("en", SORRY) for c in answers)
        assert not [c for c in calls if c.params.get("text") == world.t("en", SORRY)]


async def test_a_person_who_blocked_the_bot_has_their_case_closed_and_the_others_are_answered(
    world: World, services: Services
) -> None:
    api, t = world.api, world.t
    async with world.running() as storage:
        ana = Chat(api, api.user(3101, "Ana", language_code="en"), services)
        ben = Chat(api, api.user(3102, "Ben", language_code="en"), services)
        await ana.onboard("en", "prague")
        await ben.onboard("en", "prague")
        thread, card = await world.new_case(ana.say("/human"))
        await ana.replies(world.jana.press(card, text="✋ " + t("cs", "Claim")))
        ana.user.block()
        mark = len(api.calls)
        await world.jana.send("Dobrý den, jak vám můžeme pomoci?", chat=PRAGUE, thread_id=thread)

        def in_topic(start: str) -> Callable[[Call], bool]:
            return lambda c: sent_to(c, PRAGUE) and c.ok and str(c.params.get("text", "")).startswith(start)

        note = await api.wait_for("sendMessage", in_topic("🚫"), since=mark)
        closing = t(
            "cs",
            "{case}: the person has blocked the bot, so nothing more can reach them. This case is closed.",
        )
        assert note.params["text"] == "🚫 " + html.escape(closing.format(case="C-0001"))
        told = await api.wait_for("sendMessage", in_topic("⚠️"), since=mark)
        assert told.params["text"] == "⚠️ " + t("cs", NOT_DELIVERED)
        assert world.prague.topics[thread].closed
        case = await storage.cases.get(1)
        assert case is not None and case.status == "closed"
        assert [row.action for row in await storage.cases.audit_log(1)][-1] == "blocked"
        assert await storage.is_blocked(3101)
        # Everyone else is answered; Ana got one call (the 403) and nothing after it.
        [answer] = await ben.say(QUESTIONS[1])
        assert answer["text"] != t("en", SORRY)
        await world.jana.send("Haló?", chat=PRAGUE, thread_id=thread)
        [again] = await ben.say(QUESTIONS[2])
        assert again["text"] != t("en", SORRY)
        to_ana = [c for c in api.calls[mark:] if sent_to(c, 3101)]
        assert [c.error for c in to_ana] == ["Forbidden: bot was blocked by the user"]


async def test_long_captions_dropped_connections_and_a_silent_staff_check_lose_no_reply(
    world: World, services: Services
) -> None:
    api, t = world.api, world.t
    async with world.running():
        ana = Chat(api, api.user(3201, "Ana", language_code="en"), services)
        await ana.onboard("en", "prague")
        thread, card = await world.new_case(ana.say("/human"))
        await ana.replies(world.jana.press(card, text="✋ " + t("cs", "Claim")))
        label = "🙋 " + t("en", "Caseworker:")

        # A caption the label would push over 1,024 characters: the label goes as its own message.
        mark = len(api.calls)
        await world.jana.send_photo("x" * 1020, chat=PRAGUE, thread_id=thread)
        await api.wait_for("copyMessage", lambda c: sent_to(c, 3201), since=mark)
        label_message, photo = api.messages_to(3201)[-2:]
        assert label_message["text"] == label and photo["caption"] == "x" * 1020 and "photo" in photo

        # A dropped connection to the person is retried; the reply arrives once.
        api.faults.add(DROP, chat=3201, times=1)
        mark = len(api.calls)
        await world.jana.send("Pošlete prosím sken.", chat=PRAGUE, thread_id=thread)
        relayed = await api.wait_for("sendMessage", answered(3201), since=mark)
        assert relayed.params["text"] == label + "\nPošlete prosím sken."
        assert [c.error for c in api.calls[mark:] if sent_to(c, 3201)] == ["connection dropped", None]

        # The staff check fails twice (500): retried, the reply still arrives.
        api.faults.add(500, methods={"getChatMember"}, times=2)
        mark = len(api.calls)
        [reply] = await ana.replies(world.jana.send("Jsme tu.", chat=PRAGUE, thread_id=thread))
        assert reply["text"] == label + "\nJsme tu."
        checks = [c.error for c in api.calls[mark:] if c.method == "getChatMember"]
        assert checks == ["Internal Server Error", "Internal Server Error", None]

        # Telegram does not answer the check at all: the topic says the message was not sent.
        api.faults.add(500, methods={"getChatMember"})
        mark = len(api.calls)
        await world.jana.send("Haló?", chat=PRAGUE, thread_id=thread)
        told = await api.wait_for(
            "sendMessage",
            lambda c: sent_to(c, PRAGUE) and c.params.get("message_thread_id") == thread,
            since=mark,
        )
        assert told.params["text"] == "⚠️ " + t("cs", UNCHECKED)
        assert not [c for c in api.calls[mark:] if sent_to(c, 3201)]
        api.faults.clear()
