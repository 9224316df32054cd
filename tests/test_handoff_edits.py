"""Edits, resumable cases and text PostgreSQL refuses, end to end through the local Bot API server.

Same world as tests/test_handoff.py: the bot with long polling against ``FakeBotAPI``, the real engine
(Rasa on loopback) and a real database; faults and crashes are made on purpose.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from bot.runtime import Services
from bot.telegram.handoff.texts import STILL_CONNECTING
from bot.telegram.ui import RLM

from . import test_handoff
from .pg import PostgresServer
from .test_handoff import PRAGUE, World, sent_to
from .test_telegram import Chat

pytestmark = pytest.mark.rasa

world = test_handoff.world  # the same fixture: staff groups in Prague and Osijek, a clock moved by hand
JSON = dict[str, Any]


async def test_edits_during_a_case_change_the_copy_on_the_other_side_both_ways(
    world: World, services: Services
) -> None:
    api, t = world.api, world.t
    async with world.running() as storage:
        person = Chat(api, api.user(2101, "Olena", language_code="uk"), services)
        await person.onboard("uk", "prague")
        thread, _card = await world.new_case(person.say("/human"))

        # The person corrects a message: the copy in the topic changes; nothing new is relayed.
        mark = len(api.calls)
        sent = (await person.user.send("а скільки це коштує?"))["message"]
        copy = await api.wait_for("sendMessage", lambda c: sent_to(c, PRAGUE), since=mark)
        mark = len(api.calls)
        await person.user.edit(sent, "а скільки коштує продовження посвідки?")
        edit = await api.wait_for("editMessageText", lambda c: sent_to(c, PRAGUE), since=mark)
        assert edit.params["message_id"] == copy.result["message_id"]
        assert api.message(copy)["text"].startswith("👤 а скільки коштує продовження посвідки?")
        assert api.message(copy)["message_thread_id"] == thread

        # A photo's caption too (editMessageCaption).
        mark = len(api.calls)
        photo = (await person.user.send_photo("мій паспорт"))["message"]
        copied = await api.wait_for("copyMessage", lambda c: sent_to(c, PRAGUE), since=mark)
        await person.user.edit(photo, caption="мій паспорт, сторінка 2")
        await api.wait_for("editMessageCaption", lambda c: sent_to(c, PRAGUE), since=mark)
        assert api.world.messages[(PRAGUE, copied.result["message_id"])]["caption"] == (
            "👤 мій паспорт, сторінка 2"
        )
        assert [c.method for c in api.calls[mark:] if sent_to(c, PRAGUE)] == [
            "copyMessage",
            "editMessageCaption",
        ]

        # A caseworker corrects a reply: the person's copy changes, under the same label.
        mark = len(api.calls)
        written = (await world.jana.send("Dobrý den, pošlete sken.", chat=PRAGUE, thread_id=thread))[
            "message"
        ]
        label = "🙋 " + t("uk", "Caseworker:")
        reply = await api.wait_for(
            "sendMessage", lambda c: sent_to(c, 2101) and c.params["text"].startswith(label), since=mark
        )
        await world.jana.edit(written, "Dobrý den, pošlete prosím sken pasu.")
        await api.wait_for("editMessageText", lambda c: sent_to(c, 2101), since=mark)
        assert api.message(reply)["text"] == label + "\nDobrý den, pošlete prosím sken pasu."

        # The person deleted the copy: the caseworker is told once, however often they edit.
        del api.world.messages[(2101, reply.result["message_id"])]
        mark = len(api.calls)
        await world.jana.edit(written, "Dobrý den, pošlete sken pasu a povolení.")
        warning = "⚠️ " + t(
            "cs", "This correction did not reach the person. Please send it again as a new message."
        )
        told = await api.wait_for("sendMessage", lambda c: sent_to(c, PRAGUE), since=mark)
        assert told.params["text"] == warning and told.params["message_thread_id"] == thread
        await world.jana.edit(written, "Dobrý den, pošlete sken pasu a povolení k pobytu.")
        await world.to_group(
            world.jana.send("/quick", chat=PRAGUE, thread_id=thread), PRAGUE
        )  # after the edit
        sent_here = [
            c.params["text"] for c in api.calls[mark:] if c.method == "sendMessage" and sent_to(c, PRAGUE)
        ]
        assert [text for text in sent_here if text.startswith("⚠️")] == [warning]

        # Edits are not audited as replies (one reply was written) nor stored as new turns.
        case = await storage.cases.open_of(2101)
        assert case is not None
        assert [e.action for e in await storage.cases.audit_log(case.id)] == ["open", "claim", "reply"]
        turns = [turn.role for turn in await storage.recent_turns(2101, 4)]
        assert turns == ["user", "user", "staff"]


async def test_an_edited_question_outside_a_case_is_answered_only_when_its_meaning_changes(
    world: World, services: Services
) -> None:
    api = world.api
    async with world.running() as storage:
        person = Chat(api, api.user(2102, "Olena", language_code="uk"), services)
        await person.onboard("uk", "prague")
        mark = len(api.calls)
        sent = (await person.user.send("як продовжити посвідку на проживання"))["message"]
        await api.wait_for("sendMessage", lambda c: sent_to(c, 2102), since=mark)
        assert await storage.question_key(2102, sent["message_id"]) == (True, "permit.renewal")

        # The same question, tidied up: the answer given stands; nothing is sent.
        mark = len(api.calls)
        await person.user.edit(sent, "Як продовжити посвідку на проживання?")
        [_help] = await person.say("/help")  # the same chat's next update: handled after the edit
        assert len([c for c in api.calls[mark:] if c.method == "sendMessage" and sent_to(c, 2102)]) == 1

        # A correction that changes what it is about gets its answer, once.
        mark = len(api.calls)
        await person.user.edit(sent, "де знайти лікаря")
        answer = await api.wait_for("sendMessage", lambda c: sent_to(c, 2102), since=mark)
        asked, key = await storage.question_key(2102, sent["message_id"])
        assert asked and key is not None and key.startswith("health.")
        expected = services.kb.answer("prague", key, "uk")
        assert expected is not None and expected.text.split("\n")[0][:40] in answer.params["text"]
        await person.user.edit(sent, "де знайти лікаря?")  # tidied up again: nothing more
        await person.say("/help")
        answers = [c for c in api.calls[mark:] if c.method == "sendMessage" and sent_to(c, 2102)]
        assert expected.text.split("\n")[0][:40] in answers[0].params["text"]
        assert sum(expected.text.split("\n")[0][:40] in c.params["text"] for c in answers) == 1


async def test_a_case_left_without_a_topic_is_completed_at_the_next_start_and_by_human(
    world: World, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, t = world.api, world.t
    person = Chat(api, api.user(2103, "Hassan", language_code="fa"), services)
    async with world.running() as storage:
        await person.onboard("fa", "prague")
        # Telegram cannot create topics for now: the case is committed, its topic still to come.
        api.faults.add(500, methods={"createForumTopic"})
        [waiting] = await person.say("/human")
        assert waiting["text"] == RLM + t("fa", STILL_CONNECTING)
        case = await storage.cases.open_of(2103)
        setup = await storage.steps.get(case.id) if case else None
        assert case is not None and case.thread_id is None and setup is not None and setup.step == "topic"
        [still] = await person.say("پرونده من را فراموش نکنید")  # not lost: it will be on the card
        assert still["text"] == RLM + t("fa", STILL_CONNECTING)

    # The bot restarts a minute later (a real new application object); Telegram works again.
    api.faults.clear()
    world.clock.now += dt.timedelta(minutes=1)
    mark = len(api.calls)
    async with world.running() as storage:
        topic = await api.wait_for("createForumTopic", lambda c: sent_to(c, PRAGUE), since=mark)
        thread = topic.result["message_thread_id"]
        card = await api.wait_for("sendMessage", lambda c: sent_to(c, PRAGUE), since=mark)
        assert card.params["message_thread_id"] == thread and "reply_markup" in card.params
        assert "پرونده من را فراموش نکنید" in card.params["text"]
        city = services.engine.city_name("prague", "fa")
        handed = t(
            "fa",
            "I have asked a caseworker in {city} to take over. You can keep writing here: everything you "
            "send goes to them.",
        ).format(city=city)
        told = await api.wait_for("sendMessage", lambda c: sent_to(c, 2103), since=mark)
        assert handed in told.params["text"]
        copy = await world.to_group(person.user.send("ممنون"), PRAGUE)
        assert copy.params["message_thread_id"] == thread and copy.params["text"].startswith("👤 ممنون")
        assert len([c for c in api.calls[mark:] if c.method == "createForumTopic"]) == 1
        for _ in range(100):  # the last step is recorded right after the notice was sent
            if await storage.steps.get(case.id) is None:
                break
            await asyncio.sleep(0.05)
        assert await storage.steps.get(case.id) is None

        # A crash right after the case row was committed (the handler dies): /human continues it.
        other = Chat(api, api.user(2104, "Olena", language_code="uk"), services)
        await other.onboard("uk", "prague")
        committed = storage.cases.open

        async def crash_after_commit(*args: Any, **kwargs: Any) -> Any:
            await committed(*args, **kwargs)
            raise ConnectionResetError("the process died here")

        monkeypatch.setattr(storage.cases, "open", crash_after_commit)
        [sorry] = await other.say("/human")
        monkeypatch.undo()
        apology = "Sorry, something went wrong on my side. Please try again, or talk to a person with /human."
        assert sorry["text"] == t("uk", apology)
        half = await storage.cases.open_of(2104)
        assert half is not None and half.thread_id is None
        thread2, _card = await world.new_case(other.say("/human"))
        resumed = await storage.cases.open_of(2104)
        assert resumed is not None and resumed.id == half.id and resumed.thread_id == thread2
        assert [e.action for e in await storage.cases.audit_log(half.id)] == ["open"]  # one case, not two


@pytest.mark.postgres
async def test_nul_characters_are_stored_on_postgresql_and_relayed(
    world: World,
    services: Services,
    postgres: PostgresServer,
) -> None:
    """PostgreSQL refuses NUL in text: the turn is stored with U+FFFD, the caseworker gets the text."""
    world.url = postgres.create_database("handoff")
    api = world.api
    async with world.running() as storage:
        person = Chat(api, api.user(2105, "Olena", language_code="uk"), services)
        await person.onboard("uk", "prague")
        thread, _card = await world.new_case(person.say("/human"))
        copy = await world.to_group(person.user.send("номер справи\x0012 \ud83d"), PRAGUE)
        assert copy.params["message_thread_id"] == thread
        assert copy.params["text"].startswith("👤 номер справи")
        [*_, last] = await storage.recent_turns(2105)
        assert last.role == "user" and last.text == "номер справи\ufffd12 \ufffd"


async def test_a_transfer_waits_for_the_other_group_and_the_case_stays_usable_meanwhile(
    world: World, services: Services
) -> None:
    api, t = world.api, world.t
    async with world.running() as storage:
        person = Chat(api, api.user(2106, "Olena", language_code="uk"), services)
        await person.onboard("uk", "prague")
        thread, _card = await world.new_case(person.say("/human"))

        # Osijek's group cannot be reached: the transfer waits, the case stays in Prague meanwhile.
        api.faults.add(500, methods={"createForumTopic"}, chat=test_handoff.OSIJEK)
        waiting = await world.to_group(
            world.jana.send("/transfer osijek", chat=PRAGUE, thread_id=thread), PRAGUE
        )
        assert waiting.params["text"] == "⏳ " + t(
            "cs",
            "The other group cannot be reached right now. I will keep trying; the case stays here until it "
            "has moved.",
        )
        copy = await world.to_group(person.user.send("я ще тут"), PRAGUE)
        assert copy.params["message_thread_id"] == thread
        busy = await world.to_group(
            world.jana.send("/transfer osijek", chat=PRAGUE, thread_id=thread), PRAGUE
        )
        assert busy.params["text"] == t("cs", "This case is already being moved.")

        # Osijek is back: the reconciler finishes the transfer where it stopped.
        api.faults.clear()
        mark = len(api.calls)
        world.clock.now += dt.timedelta(minutes=1)
        topic = await api.wait_for("createForumTopic", lambda c: sent_to(c, test_handoff.OSIJEK), since=mark)
        card = await api.wait_for("sendMessage", lambda c: sent_to(c, test_handoff.OSIJEK), since=mark)
        thread2 = topic.result["message_thread_id"]
        origin = t("hr", "Transferred from {city}.").format(city=services.engine.city_name("prague", "hr"))
        assert card.params["message_thread_id"] == thread2 and origin in card.params["text"]
        moved = await api.wait_for("sendMessage", lambda c: sent_to(c, 2106), since=mark)
        assert moved.params["text"] == t(
            "uk", "Your conversation has been passed to caseworkers in {city}."
        ).format(city=services.engine.city_name("osijek", "uk"))
        await api.wait_for("closeForumTopic", lambda c: sent_to(c, PRAGUE), since=mark)
        assert world.prague.topics[thread].closed
        copy = await world.to_group(person.user.send("дякую"), test_handoff.OSIJEK)
        assert copy.params["message_thread_id"] == thread2
        case = await storage.cases.open_of(2106)
        assert case is not None and case.city == "osijek" and case.thread_id == thread2
        assert [e.action for e in await storage.cases.audit_log(case.id)].count("transfer") == 1


async def test_a_topic_whose_card_telegram_refuses_is_labelled_unused_and_closed(
    world: World, services: Services
) -> None:
    api, t = world.api, world.t
    async with world.running() as storage:
        person = Chat(api, api.user(2107, "Olena", language_code="uk"), services)
        await person.onboard("uk", "prague")
        api.faults.add(403, methods={"sendMessage"}, chat=PRAGUE, times=1)  # the card is refused
        mark = len(api.calls)
        [contacts] = await person.say("/human")
        assert contacts["text"].startswith(t("uk", "These people can help you in person:"))
        topic = await api.wait_for("createForumTopic", lambda c: sent_to(c, PRAGUE), since=mark)
        thread = topic.result["message_thread_id"]
        label = await api.wait_for("sendMessage", lambda c: sent_to(c, PRAGUE) and c.ok, since=mark)
        assert label.params["message_thread_id"] == thread
        assert label.params["text"] == "🗂 " + t(
            "cs", "This topic is not in use: {case} ended before it was ready."
        ).format(case="C-0001")
        await api.wait_for("closeForumTopic", lambda c: sent_to(c, PRAGUE), since=mark)
        assert world.prague.topics[thread].closed
        assert await storage.cases.open_of(2107) is None and await storage.steps.get(1) is None
        assert [e.action for e in await storage.cases.audit_log(1)] == ["open", "return"]
