"""Human handoff end to end: a person's private chat and forum staff groups on the local Bot API server.

The bot runs with long polling against ``tests.botapi.FakeBotAPI``, the real engine (Rasa on loopback)
and a real SQLite database; the handoff clock is moved by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.runtime import Services
from bot.settings import HandoffSettings, Settings, StaffGroup
from bot.storage import Storage
from bot.telegram import build_application, serving
from bot.telegram.handoff import QUICK_REPLIES
from bot.telegram.ui import RLM

from .botapi import FakeBotAPI
from .botapi.server import Call
from .test_telegram import TOKEN, Chat, buttons

pytestmark = pytest.mark.rasa

JSON = dict[str, Any]
PRAGUE, OSIJEK = -1001000000001, -1001000000002
JANA, PETR, KAREL, IVA = 501, 502, 503, 504  # Jana and Petr: Prague staff; Karel: member, not allowed
MONDAY_10_PRAGUE = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
SATURDAY_NOON = dt.datetime(2026, 11, 28, 11, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


class World:
    """The fake Telegram, staff groups, the settings, one database; the bot can be (re)started."""

    def __init__(self, api: FakeBotAPI, services: Services, settings: Settings, db: Path) -> None:
        self.api, self.services, self.settings, self.db = api, services, settings, db
        self.url = f"sqlite+aiosqlite:///{db}"  # or a PostgreSQL database's
        self.clock = Clock(MONDAY_10_PRAGUE)
        self.prague = api.forum(
            PRAGUE, "Prague caseworkers", {JANA: "member", PETR: "administrator", KAREL: "member"}
        )
        self.osijek = api.forum(OSIJEK, "Osijek caseworkers", {IVA: "creator"})
        self.jana = api.user(JANA, "Jana", "cs")
        self.petr = api.user(PETR, "Petr", "cs")
        self.karel = api.user(KAREL, "Karel", "cs")
        self.iva = api.user(IVA, "Iva", "hr")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Storage]:
        """One run of the bot process (its own storage connection), as in production."""
        async with Storage(self.url, clock=self.clock) as storage:
            application = build_application(self.settings, self.services, storage)
            async with serving(application):
                yield storage

    def t(self, lang: str, message: str) -> str:
        return self.services.catalogues[lang].gettext(message)

    async def to_group(self, action: Any, group: int, method: str = "sendMessage") -> Call:
        """Do ``action``; the next call of ``method`` into ``group``."""
        mark = len(self.api.calls)
        await action
        return await self.api.wait_for(method, lambda c: c.params.get("chat_id") == group, since=mark)

    async def new_case(self, action: Any, group: int = PRAGUE) -> tuple[int, JSON]:
        """Do ``action`` (which hands over); the new topic's thread id and its case card."""
        mark = len(self.api.calls)
        await action
        topic = await self.api.wait_for(
            "createForumTopic", lambda c: c.params.get("chat_id") == group, since=mark
        )
        card = await self.api.wait_for(
            "sendMessage",
            lambda c: c.params.get("chat_id") == group and "reply_markup" in c.params,
            since=mark,
        )
        thread = topic.result["message_thread_id"]
        assert card.result["message_thread_id"] == thread
        return thread, card.result


@pytest.fixture
async def world(services: Services, tmp_path: Path) -> AsyncIterator[World]:
    async with FakeBotAPI(TOKEN) as api:
        handoff = HandoffSettings(
            groups={
                "prague": StaffGroup(
                    chat_id=PRAGUE,
                    language="cs",
                    timezone="Europe/Prague",
                    office_hours={day: "08:00-17:00" for day in ("mon", "tue", "wed", "thu", "fri")},
                    allow=(JANA, PETR),
                ),
                "osijek": StaffGroup(
                    chat_id=OSIJEK,
                    language="hr",
                    timezone="Europe/Zagreb",
                    office_hours={day: "08:00-16:00" for day in ("mon", "tue", "wed", "thu", "fri")},
                ),
            },
            remind_after_minutes=10,
            urgent_remind_after_minutes=3,
            check_interval_seconds=0.05,
        )
        settings = services.settings.model_copy(
            update={
                "telegram_token": SecretStr(TOKEN),
                "telegram_api_base_url": api.base_url,
                "handoff": handoff,
            }
        )
        yield World(api, services, settings, tmp_path / "handoff.db")


def sent_to(call: Call, chat_id: int) -> bool:
    return call.params.get("chat_id") in {chat_id, str(chat_id)}


async def test_handoff_in_ukrainian_relays_both_ways_sends_answers_and_closes_with_a_rating(
    world: World, services: Services
) -> None:
    api, t = world.api, world.t
    async with world.running() as storage:
        menu = {c["command"]: c["description"] for c in api.my_commands({"type": "chat", "chat_id": PRAGUE})}
        assert menu["send"] == t("cs", "send an answer in the person's language") and "note" in menu
        person = Chat(api, api.user(2001, "Olena", language_code="uk", username="olena_k"), services)
        await person.onboard("uk", "prague")
        await person.say("як продовжити посвідку на проживання")
        mark = len(api.calls)
        thread, card = await world.new_case(person.say("/human"))
        handed = await api.wait_for("sendMessage", lambda c: sent_to(c, 2001), since=mark)
        assert services.engine.city_name("prague", "uk") in handed.params["text"]

        # The topic: pseudonymous case number, city, language and topic; never the name or username.
        title = world.prague.topics[thread].name
        assert title.startswith("C-") and "Praha" in title and "UK" in title
        assert services.kb.title("permit.renewal", "cs") in title
        assert "Olena" not in title and "olena" not in title.lower()
        assert "як продовжити посвідку на проживання" in card["text"]
        assert "Olena" not in card["text"]
        claim, close, back = (t("cs", label) for label in ("Claim", "Close", "Return to bot"))
        assert buttons(card) == ["✋ " + claim, "✅ " + close, "🤖 " + back]

        # The person's messages, media included, are copied into the topic; the bot does not answer.
        mark = len(api.calls)
        copy = await world.to_group(person.user.send("а скільки це коштує?"), PRAGUE)
        assert copy.params["text"] == "👤 а скільки це коштує?" and copy.params["message_thread_id"] == thread
        photo = await world.to_group(person.user.send_photo("мій паспорт"), PRAGUE, "copyMessage")
        assert photo.params["caption"] == "👤 мій паспорт"
        for send in (person.user.send_document("lease.pdf"), person.user.send_voice()):
            copied = await world.to_group(send, PRAGUE, "copyMessage")
            assert copied.params["message_thread_id"] == thread
        in_topic = api.messages_to(PRAGUE, thread)
        assert sum("photo" in m for m in in_topic) == 1 and sum("document" in m for m in in_topic) == 1
        assert sum("voice" in m for m in in_topic) == 1
        assert not [c for c in api.calls[mark:] if sent_to(c, 2001)]

        # Claiming tells the person; the card loses its Claim button.
        [joined] = await person.replies(world.jana.press(card, text="✋ " + claim))
        assert joined["text"] == t("uk", "A caseworker is now looking at your conversation.")
        assert buttons(api.message(card)) == ["✅ " + close, "🤖 " + back]

        # Staff write in Czech; the person gets it marked as coming from a person.
        [reply] = await person.replies(
            world.jana.send("Dobrý den, pošlete nám prosím sken.", chat=PRAGUE, thread_id=thread)
        )
        assert reply["text"] == "🙋 " + t("uk", "Caseworker:") + "\nDobrý den, pošlete nám prosím sken."
        mark = len(api.calls)
        await world.jana.send_photo("formulář", chat=PRAGUE, thread_id=thread)
        copied = await api.wait_for("copyMessage", lambda c: sent_to(c, 2001), since=mark)
        assert copied.params["caption"] == "🙋 " + t("uk", "Caseworker:") + "\nformulář"

        # Internal notes are never relayed: the next thing the person gets is the /send answer.
        await world.jana.send("/note she seems to need a lawyer", chat=PRAGUE, thread_id=thread)
        [answer] = await person.replies(
            world.jana.send("/send permit.renewal", chat=PRAGUE, thread_id=thread)
        )
        expected = services.kb.answer("prague", "permit.renewal", "uk")
        assert expected is not None and expected.language == "uk"
        chosen = t(
            "uk",
            "A caseworker chose this general information for you. Its sources, and whether a partner "
            "organisation has checked it, are at the end.",
        )
        assert answer["text"].startswith(chosen)
        assert expected.text.split("\n")[0][:40] in answer["text"]
        assert "she seems" not in " ".join(m.get("text", "") for m in api.messages_to(2001))

        # A ready reply, chosen from Czech labels, arrives in Ukrainian.
        mark = len(api.calls)
        await world.jana.send("/quick", chat=PRAGUE, thread_id=thread)
        quick_menu = await api.wait_for(
            "sendMessage", lambda c: sent_to(c, PRAGUE) and "reply_markup" in c.params, since=mark
        )
        ready = t("cs", QUICK_REPLIES[0])[:64]
        [canned] = await person.replies(world.jana.press(quick_menu.result, text=ready))
        assert canned["text"].endswith(t("uk", QUICK_REPLIES[0]))

        # Close: the person is told and asked for a rating; the topic is closed; the bot is back.
        mark = len(api.calls)
        [closing] = await person.replies(world.jana.press(card, text="✅ " + close))
        await api.wait_for("closeForumTopic", since=mark)
        assert closing["text"].startswith(
            t("uk", "The caseworker has closed this conversation. From now on I answer your questions again.")
        )
        assert world.prague.topics[thread].closed
        [thanks] = await person.press(closing, "⭐⭐⭐⭐")
        assert thanks["text"] == t("uk", "Thank you for your rating!")
        [card_again] = await person.say("де знайти лікаря")
        assert "👍" in buttons(card_again)

        case = await storage.cases.get(1)
        assert case is not None and case.rating == 4 and case.status == "closed" and case.owner_id == JANA
        log = [(row.action, row.actor_id) for row in await storage.cases.audit_log(1)]
        assert log == [
            ("open", None),
            ("claim", JANA),
            ("reply", JANA),
            ("reply", JANA),
            ("note", JANA),
            ("send", JANA),
            ("quick", JANA),
            ("close", JANA),
            ("rating", None),
        ]


async def test_two_claims_in_a_row_the_first_wins_and_non_staff_are_ignored(
    world: World, services: Services
) -> None:
    """Both presses reach the bot, which handles updates one at a time: the second is refused with the
    winner's name. Truly simultaneous claims (two bot processes, one database) are decided by one
    conditional UPDATE: test_storage.py::test_two_simultaneous_claims_from_two_processes_one_wins."""
    api, t = world.api, world.t
    async with world.running() as storage:
        person = Chat(api, api.user(2002, "Omar", language_code="ar"), services)
        await person.onboard("ar", "prague")
        mark = len(api.calls)
        thread, card = await world.new_case(person.say("أريد التحدث مع موظف حقيقي"))  # the human_handoff key
        told = await api.wait_for("sendMessage", lambda c: sent_to(c, 2002), since=mark)
        assert told.params["text"].startswith(RLM)

        claim = "✋ " + t("cs", "Claim")
        mark = len(api.calls)
        await asyncio.gather(world.jana.press(card, text=claim), world.petr.press(card, text=claim))
        first = await api.wait_for("answerCallbackQuery", since=mark)
        second = await api.wait_for("answerCallbackQuery", since=api.calls.index(first) + 1)
        answers = [first.params, second.params]
        case = await storage.cases.get(1)
        assert case is not None and case.owner_id in (JANA, PETR)
        winner, loser = (world.jana, world.petr) if case.owner_id == JANA else (world.petr, world.jana)
        texts = sorted(a.get("text", "") for a in answers)
        assert texts == sorted(
            [
                t("cs", "The case is yours."),
                t("cs", "{name} has already claimed this case.").format(name=winner.first_name),
            ]
        )
        assert len([c for c in api.calls[mark:] if c.method == "sendMessage" and sent_to(c, 2002)]) == 1

        # Karel is in the group but not on the allow-list: ignored entirely.
        mark = len(api.calls)
        await world.karel.send("I'll answer this one", chat=PRAGUE, thread_id=thread)
        await world.karel.press(card, text="✅ " + t("cs", "Close"))
        refused = await api.wait_for("answerCallbackQuery", since=mark)
        assert refused.params["text"] == t("cs", "Only caseworkers of this group can do this.")
        # The loser may not write to the person either; they are told who has the case.
        await loser.send("Můžu pomoct?", chat=PRAGUE, thread_id=thread)
        hint = await api.wait_for("sendMessage", lambda c: sent_to(c, PRAGUE), since=mark)
        assert hint.params["text"] == t(
            "cs", "{name} has claimed this case. Use /note for internal notes."
        ).format(name=winner.first_name)
        assert not [c for c in api.calls[mark:] if sent_to(c, 2002)]
        still = await storage.cases.get(1)
        assert still is not None and still.status == "open"

        # Return to bot: the person is told in Arabic, and the bot answers again.
        [back] = await person.replies(winner.press(card, text="🤖 " + t("cs", "Return to bot")))
        assert back["text"] == RLM + t(
            "ar",
            "A caseworker has passed the conversation back to me. Ask me anything, or send /human "
            "to talk to a person again.",
        )
        actions = [(row.action, row.actor_id) for row in await storage.cases.audit_log(1)]
        assert actions == [("open", None), ("claim", winner.account.id), ("return", winner.account.id)]


async def test_emergency_numbers_first_then_an_urgent_case_and_two_misses_hand_over(
    world: World, services: Services
) -> None:
    api = world.api
    async with world.running() as storage:
        person = Chat(api, api.user(2003, "Nina", language_code="ru"), services)
        await person.onboard("ru", "prague")
        mark = len(api.calls)
        thread, card = await world.new_case(person.say("помогите, муж меня бьёт, мне страшно"))
        to_person = [c for c in api.calls[mark:] if c.method == "sendMessage" and sent_to(c, 2003)]
        assert "112" in to_person[0].params["text"]  # the numbers come first
        assert world.prague.topics[thread].name.startswith("🚨 C-")
        assert "🚨" in card["text"]
        case = await storage.cases.open_of(2003)
        assert case is not None and case.urgent and case.key == "safety.emergency"
        # Urgent cases are reminded after 3 minutes, not 10.
        assert case.remind_at == MONDAY_10_PRAGUE + dt.timedelta(minutes=3)

        other = Chat(api, api.user(2004, "Luca", language_code="it"), services)
        await other.onboard("it", "prague")
        [answer] = await other.say("dove trovo un medico di base")
        [_sorry] = await other.press(answer, "👎")
        assert await storage.cases.open_of(2004) is None  # one miss: a person is offered, not imposed
        [answer] = await other.say("come rinnovo il permesso di soggiorno")
        thread2, _card = await world.new_case(other.press(answer, "👎"))
        intro = world.t("it", "I could not find the right answer for you, so I am asking a person to help.")
        told = await api.wait_for(
            "sendMessage", lambda c: sent_to(c, 2004) and intro in c.params["text"], since=0
        )
        assert told.params["text"].startswith(
            world.t("it", "I could not find the right answer for you, so I am asking a person to help.")
        )
        assert thread2 != thread


async def test_restart_mid_case_loses_nothing_and_reminders_keep_their_time(
    world: World, services: Services
) -> None:
    api, t = world.api, world.t
    person = Chat(api, api.user(2005, "Hassan", language_code="fa"), services)
    async with world.running() as storage:
        await person.onboard("fa", "prague")
        thread, _card = await world.new_case(person.say("/human"))
        await world.to_group(person.user.send("کی جواب من را می دهید؟"), PRAGUE)
        case = await storage.cases.open_of(2005)
        assert case is not None and case.remind_at == MONDAY_10_PRAGUE + dt.timedelta(minutes=10)
        world.clock.now += dt.timedelta(minutes=9)
        assert await storage.cases.due_reminders(world.clock.now) == []

    # The bot is down for a while; a message sent meanwhile waits in Telegram.
    world.clock.now += dt.timedelta(minutes=2)
    await person.user.send("هنوز منتظرم")
    async with world.running() as storage:
        relayed = await api.wait_for(
            "sendMessage", lambda c: sent_to(c, PRAGUE) and "هنوز" in c.params["text"], since=0
        )
        assert relayed.params["message_thread_id"] == thread
        reminder = await api.wait_for(
            "sendMessage", lambda c: sent_to(c, PRAGUE) and c.params["text"].startswith("⏰"), since=0
        )
        assert reminder.params["message_thread_id"] == thread and "C-0001" in reminder.params["text"]
        sorry = services.catalogues["fa"].ngettext(
            "Sorry for the wait: you have been waiting {minutes} minute. The caseworkers are busy, but "
            "your conversation is in the queue and nothing you wrote is lost.",
            "Sorry for the wait: you have been waiting {minutes} minutes. The caseworkers are busy, but "
            "your conversation is in the queue and nothing you wrote is lost.",
            11,
        )
        waited = await api.wait_for(
            "sendMessage",
            lambda c: sent_to(c, 2005) and c.params["text"] == RLM + sorry.format(minutes=11),
            since=0,
        )
        assert waited.params["text"].startswith(RLM)
        case = await storage.cases.open_of(2005)
        assert case is not None and case.reminders == 1
        assert case.remind_at == world.clock.now + dt.timedelta(minutes=10)  # the next one, not at once

        [joined, reply] = await person.replies(world.petr.send("Dobrý den", chat=PRAGUE, thread_id=thread), 2)
        assert joined["text"] == RLM + t("fa", "A caseworker is now looking at your conversation.")
        assert reply["text"] == RLM + "🙋 " + t("fa", "Caseworker:") + "\n" + RLM + "Dobrý den"
        claimed = await storage.cases.get(1)
        assert claimed is not None and claimed.owner_id == PETR  # replying claimed it
        await world.to_group(person.user.send("ممنون"), PRAGUE)  # updates are handled in order
        turns = [turn.role for turn in await storage.recent_turns(2005)]
        assert turns[-4:] == ["user", "user", "staff", "user"]


async def test_out_of_hours_transfer_and_erasure(world: World, services: Services) -> None:
    api, t = world.api, world.t
    world.clock.now = SATURDAY_NOON
    async with world.running() as storage:
        person = Chat(api, api.user(2006, "Ana", language_code="uk"), services)
        await person.onboard("uk", "prague")
        mark = len(api.calls)
        thread, _card = await world.new_case(person.say("/human"))
        told = (await api.wait_for("sendMessage", lambda c: sent_to(c, 2006), since=mark)).params["text"]
        back = t(
            "uk",
            "Caseworkers are not at work right now. They will be back on {time}, and your messages "
            "will be waiting for them.",
        )
        # Prague time, in CLDR's Ukrainian pattern for a weekday, day and month, and a time.
        assert back.format(time="пн, 30 листопада, 08:00") in told.split("\n\n")
        case = await storage.cases.open_of(2006)
        monday_8 = dt.datetime(2026, 11, 30, 7, 0, tzinfo=dt.UTC)
        assert case is not None and case.remind_at == monday_8

        # Jana moves the case to Osijek's group: a new topic there, the Prague one closes.
        mark = len(api.calls)
        thread2, card2 = await world.new_case(
            world.jana.send("/transfer osijek", chat=PRAGUE, thread_id=thread), OSIJEK
        )
        moved = await api.wait_for("sendMessage", lambda c: sent_to(c, 2006), since=mark)
        assert moved.params["text"] == t(
            "uk", "Your conversation has been passed to caseworkers in {city}."
        ).format(city=services.engine.city_name("osijek", "uk"))
        assert world.prague.topics[thread].closed and not world.osijek.topics[thread2].closed
        assert "Osijek" in world.osijek.topics[thread2].name and "UK" in world.osijek.topics[thread2].name
        origin = t("hr", "Transferred from {city}.").format(city=services.engine.city_name("prague", "hr"))
        assert origin in card2["text"]
        copy = await world.to_group(person.user.send("дякую"), OSIJEK)
        assert copy.params["message_thread_id"] == thread2

        # /forget: the case closes; the Prague topic it moved away from is deleted; in Osijek the bot
        # may not delete messages, so staff there are asked to delete the topic.
        world.osijek.set_rights(api.world.bot.id, can_delete_messages=False)
        [confirm] = await person.say("/forget")
        mark = len(api.calls)
        await person.press(confirm, "🗑 " + t("uk", "Yes, delete my data"))
        note = await api.wait_for("sendMessage", lambda c: sent_to(c, OSIJEK), since=mark)
        asked = t(
            "hr",
            "The person asked to delete their data, so this case ({case}) is over: nothing written here "
            "reaches them. Please delete this topic: it holds copies of their messages.",
        )
        assert note.params["message_thread_id"] == thread2
        assert note.params["text"] == "🗑 " + asked.format(case="C-0001")
        await api.wait_for("sendMessage", lambda c: sent_to(c, 2006), since=mark)  # "all deleted"
        assert world.osijek.topics[thread2].closed and thread not in world.prague.topics
        assert await storage.cases.get(1) is None  # erased with the person
        actions = [row.action for row in await storage.cases.audit_log(1)]
        assert actions[:3] == ["open", "transfer", "erase"]  # the audit log keeps no person data
        assert sorted(actions[3:]) == ["delete_asked", "topic_deleted"]


async def test_without_rights_to_open_topics_the_person_gets_the_citys_contacts(
    world: World, services: Services
) -> None:
    api = world.api
    world.osijek.set_member(api.world.bot.id, "member")  # an admin forgot to make the bot an admin
    async with world.running() as storage:
        person = Chat(api, api.user(2007, "Marko", language_code="hr"), services)
        await person.onboard("hr", "osijek")
        [contacts] = await person.say("/human")
        assert contacts["text"].startswith(world.t("hr", "These people can help you in person:"))
        expected = services.kb.answer("osijek", "services.integration_centre", "hr")
        assert expected is not None and expected.text.split("\n")[0][:40] in contacts["text"]
        assert await storage.cases.open_of(2007) is None
        assert [row.action for row in await storage.cases.audit_log(1)] == ["open", "return"]
        [card] = await person.say("kako produljiti boravak")  # the bot keeps answering
        assert "👍" in buttons(card)


async def test_danger_during_a_case_is_still_recognised_and_relays_carry_their_topic(
    world: World, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person writing Persian to Czech caseworkers: the bot keeps understanding while it is silent."""
    api, t = world.api, world.t
    async with world.running() as storage:
        person = Chat(api, api.user(2010, "Maryam", language_code="fa"), services)
        await person.onboard("fa", "prague")
        thread, _card = await world.new_case(person.say("/human"))

        # A question is relayed with the topic it seems to be about, in the staff's language.
        question = "چطور اجازه اقامتم را تمدید کنم؟"
        copy = await world.to_group(person.user.send(question), PRAGUE)
        title = services.kb.title("permit.renewal", "cs")
        label = t("cs", "Seems to be about: {topic} (/send {key})").format(topic=title, key="permit.renewal")
        assert copy.params["text"] == f"👤 {question}\n\n🏷 {label}"

        # Near the alarm without raising it (at a caution threshold of 0, every reply that is not an
        # answer): staff, who may not read Persian, are asked to read it first.
        nlu = services.settings.nlu.model_copy(update={"emergency_caution_threshold": 0.0})
        monkeypatch.setattr(services.engine, "settings", services.settings.model_copy(update={"nlu": nlu}))
        thanks = "ممنون"
        reply = await services.engine.ask(thanks, "prague", "fa")
        assert reply.caution and not reply.urgent
        copy = await world.to_group(person.user.send(thanks), PRAGUE)
        warning = t(
            "cs",
            "The bot is not sure, but this message may be about someone in danger. Please read it first.",
        )
        assert (
            warning
            != "The bot is not sure, but this message may be about someone in danger. Please read it first."
        )
        assert copy.params["text"] == f"👤 {thanks}\n\n⚠️ {warning}"
        monkeypatch.undo()

        # Danger: the numbers reach the person at once, the case turns urgent, staff get a 🚨 alert.
        mark = len(api.calls)
        danger = "دوباره اومده اینجا و داره منو میزنه"
        await person.user.send(danger)
        alert = await api.wait_for(
            "sendMessage", lambda c: sent_to(c, PRAGUE) and c.params["text"].startswith("🚨"), since=mark
        )
        case = await storage.cases.open_of(2010)
        assert case is not None and case.urgent
        assert alert.params["message_thread_id"] == thread
        assert alert.params["text"] == "🚨 " + t(
            "cs",
            "{case}: this message may mean the person is in danger right now. They have been shown the "
            "emergency numbers; please reply to them first.",
        ).format(case=case.number)
        numbers = [c for c in api.calls[mark:] if c.method == "sendMessage" and sent_to(c, 2010)]
        emergency = services.kb.answer("prague", "safety.emergency", "fa")
        assert (
            emergency is not None and numbers and emergency.text.split("\n")[0] in numbers[0].params["text"]
        )
        relayed = [
            c for c in api.calls[mark:] if sent_to(c, PRAGUE) and c.params.get("text", "").startswith("👤")
        ]
        assert relayed and relayed[0].params["text"].startswith("👤 " + danger)
        assert [e.action for e in await storage.cases.audit_log(case.id)].count("urgent") == 1
