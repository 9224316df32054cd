"""The handoff as caseworkers meet it, end to end on the local Bot API server: a case that is over says
so once, /forget deals with every topic that holds the person's messages, the card names the person's
language in the staff's and marks an earlier case, dates follow CLDR, /note confirms, /send says what
a caseworker's answer is.

The world (a Czech staff group in Prague, a Croatian one in Osijek) is test_handoff.py's.
"""

from __future__ import annotations

import datetime as dt

import pytest

from bot.render import review_note
from bot.runtime import Services
from bot.telegram.handoff import QUICK_REPLIES

from .botapi.server import Call
from .test_handoff import OSIJEK, PRAGUE, World, sent_to
from .test_handoff import world as world  # the fixture, shared
from .test_telegram import Chat

pytestmark = pytest.mark.rasa

ERASED = (
    "The person asked to delete their data, so this case ({case}) is over: nothing written here "
    "reaches them. Please delete this topic: it holds copies of their messages."
)
CLOSED = (
    "This case ({case}) is closed: nothing written here reaches the person any more. If they ask for a "
    "person again, a new case opens in a new topic."
)
MOVED = (
    "This case ({case}) has moved to another topic: nothing written here reaches the person. Please "
    "continue in its new topic."
)
CHOSEN = (
    "A caseworker chose this general information for you. Its sources, and whether a partner "
    "organisation has checked it, are at the end."
)


def into(calls: list[Call], chat: int, thread: int | None = None) -> list[Call]:
    """The messages sent into ``chat`` (into its topic ``thread``, if given)."""
    return [
        c
        for c in calls
        if c.method == "sendMessage"
        and sent_to(c, chat)
        and (thread is None or c.params.get("message_thread_id") == thread)
    ]


async def test_a_closed_case_says_so_once_marks_the_next_card_and_forget_asks_for_both_topics(
    world: World, services: Services
) -> None:
    """Persian to Czech caseworkers; the bot may not delete messages in the Prague group."""
    api, t = world.api, world.t
    world.prague.set_rights(api.world.bot.id, can_delete_messages=False)
    async with world.running() as storage:
        person = Chat(api, api.user(2101, "Reza", language_code="fa"), services)
        await person.onboard("fa", "prague")
        first, card = await world.new_case(person.say("/human"))

        # The card names the language in Czech (CLDR) and the time in Czech's own pattern.
        assert t("cs", "Language: {language}").format(language="perština (fa)") in card["text"]
        assert "فارسی" not in card["text"]
        assert t("cs", "Opened: {time}").format(time="23. listopadu 10:00") in card["text"]

        world.clock.now += dt.timedelta(minutes=1)
        await world.to_group(person.user.send("سلام، سوال دارم"), PRAGUE)
        await person.replies(world.jana.send("Dobrý den", chat=PRAGUE, thread_id=first), 2)  # claim, reply

        # /note is confirmed to the caseworker (and never reaches the person); without text it explains.
        kept = await world.to_group(
            world.jana.send("/note asi potřebuje právníka", chat=PRAGUE, thread_id=first), PRAGUE
        )
        assert kept.params["message_thread_id"] == first
        assert kept.params["text"] == "📝 " + t("cs", "Note kept in this topic. The person does not see it.")
        usage = await world.to_group(world.jana.send("/note", chat=PRAGUE, thread_id=first), PRAGUE)
        assert usage.params["text"] == t(
            "cs", "Usage: /note TEXT. A note stays in this topic; the person never sees it."
        )

        # /send: what a caseworker's answer is, and the answer's own sources and review note.
        mark = len(api.calls)
        [answer] = await person.replies(world.jana.send("/send permit.renewal", chat=PRAGUE, thread_id=first))
        expected = services.kb.answer("prague", "permit.renewal", "fa")
        assert expected is not None
        text = answer["text"].replace("\u200f", "")
        assert text.startswith(t("fa", CHOSEN))
        assert text.endswith(review_note(services.catalogues["fa"].gettext, expected, "fa"))
        assert "A caseworker sent you this information" not in text
        sent = await api.wait_for("sendMessage", lambda c: sent_to(c, PRAGUE), since=mark)
        topic = services.kb.title("permit.renewal", "cs")
        assert sent.params["text"] == "📤 " + t("cs", "Sent “{topic}” in {language}.").format(
            topic=topic, language="perština"
        )

        # Ready replies stay on screen; the case is closed with the Close button.
        menu = await world.to_group(world.jana.send("/quick", chat=PRAGUE, thread_id=first), PRAGUE)
        world.clock.now += dt.timedelta(minutes=1)
        closing = len(api.calls)
        await person.replies(world.jana.press(card, text="✅ " + t("cs", "Close")))
        await api.wait_for("answerCallbackQuery", since=closing)  # the press's last step

        # The next day Jana writes in the closed topic: told once that the case is over, then silence.
        world.clock.now += dt.timedelta(days=1)
        mark = len(api.calls)
        notice = await world.to_group(
            world.jana.send("Ještě jedna věc", chat=PRAGUE, thread_id=first), PRAGUE
        )
        assert notice.params["message_thread_id"] == first
        assert notice.params["text"] == "ℹ️ " + t("cs", CLOSED).format(case="C-0001")
        for again in ("A ještě tohle", "/send permit.renewal", "/note nic", "/close"):
            await world.jana.send(again, chat=PRAGUE, thread_id=first)
        ready = t("cs", QUICK_REPLIES[0])[:64]
        await world.jana.press(menu.result, text=ready)  # an old button: answered in a pop-up
        alert = await api.wait_for("answerCallbackQuery", since=mark)
        assert alert.params["text"] == t("cs", "This case is already closed.") and alert.params["show_alert"]
        assert into(api.calls[mark:], PRAGUE) == [notice]
        assert not into(api.calls[mark:], 2101)

        # The person asks the bot something, then for a person again: the new card marks case 1.
        world.clock.now += dt.timedelta(minutes=1)
        await person.say("چطور پزشک پیدا کنم؟")
        world.clock.now += dt.timedelta(minutes=1)
        second, card2 = await world.new_case(person.say("/human"))
        lines = card2["text"].split("\n")
        earlier = t("cs", "Earlier case {number} (closed {date})").format(
            number="C-0001", date="23. listopadu"
        )
        since = t("cs", "Since case {number} was closed").format(number="C-0001")
        assert earlier in lines and since in lines
        assert lines.index(earlier) < lines.index("👤 سلام، سوال دارم") < lines.index("🙋 Dobrý den")
        assert lines.index("🙋 Dobrý den") < lines.index(since) < lines.index("👤 چطور پزشک پیدا کنم؟")

        # /forget with one closed and one open case: both topics are dealt with. The bot may not delete
        # them here, so staff are asked in each, and the audit says so (no texts).
        [confirm] = await person.say("/forget")
        mark = len(api.calls)
        await person.press(confirm, "🗑 " + t("fa", "Yes, delete my data"))
        await api.wait_for("sendMessage", lambda c: sent_to(c, 2101), since=mark)  # "all deleted"
        for thread, case in ((first, "C-0001"), (second, "C-0002")):
            [asked] = into(api.calls[mark:], PRAGUE, thread)
            assert asked.params["text"] == "🗑 " + t("cs", ERASED).format(case=case)
            assert world.prague.topics[thread].closed
        assert [c.ok for c in api.calls_of("deleteForumTopic")] == [False, False]
        assert [row.action for row in await storage.cases.audit_log(1)][-1] == "delete_asked"
        assert [row.action for row in await storage.cases.audit_log(2)][-2:] == ["erase", "delete_asked"]

        # The request was the notice: writing there afterwards gets nothing; an old button says why.
        mark = len(api.calls)
        await world.jana.send("Smažu to", chat=PRAGUE, thread_id=second)
        await world.jana.press(menu.result, text=ready)
        alert = await api.wait_for("answerCallbackQuery", since=mark)
        assert alert.params["text"] == t("cs", "The person asked to delete their data; this case is over.")
        assert not into(api.calls[mark:], PRAGUE)


async def test_forget_with_only_closed_cases_deletes_their_topics_and_a_moved_case_says_where(
    world: World, services: Services
) -> None:
    api, t = world.api, world.t
    async with world.running() as storage:
        person = Chat(api, api.user(2102, "Oksana", language_code="uk"), services)
        await person.onboard("uk", "prague")
        prague, _card = await world.new_case(person.say("/human"))
        await world.to_group(person.user.send("Добрий день"), PRAGUE)

        # Moved to Osijek: the old topic says so once, in Czech, and sends nothing to the person.
        world.clock.now += dt.timedelta(minutes=1)
        moving = len(api.calls)
        osijek, card2 = await world.new_case(
            world.jana.send("/transfer osijek", chat=PRAGUE, thread_id=prague), OSIJEK
        )
        await api.wait_for("sendMessage", lambda c: sent_to(c, 2102), since=moving)  # the move's last step
        mark = len(api.calls)
        moved = await world.to_group(world.petr.send("Můžu pomoct?", chat=PRAGUE, thread_id=prague), PRAGUE)
        assert moved.params["text"] == "➡️ " + t("cs", MOVED).format(case="C-0001")
        await world.petr.send("Haló?", chat=PRAGUE, thread_id=prague)
        helped = await world.to_group(world.petr.send("/help", chat=PRAGUE), PRAGUE)  # after "Haló?"
        assert into(api.calls[mark:], PRAGUE) == [moved, helped]
        assert not into(api.calls[mark:], 2102)
        await person.replies(world.iva.press(card2, text="🤖 " + t("hr", "Return to bot")))

        # Only closed cases now: /forget deletes both topics, nothing is asked of staff.
        [confirm] = await person.say("/forget")
        mark = len(api.calls)
        await person.press(confirm, "🗑 " + t("uk", "Yes, delete my data"))
        await api.wait_for("sendMessage", lambda c: sent_to(c, 2102), since=mark)
        deleted = {
            (c.params["chat_id"], c.params["message_thread_id"]) for c in api.calls_of("deleteForumTopic")
        }
        assert deleted == {(PRAGUE, prague), (OSIJEK, osijek)}
        assert all(c.ok for c in api.calls_of("deleteForumTopic"))
        assert prague not in world.prague.topics and osijek not in world.osijek.topics
        assert not api.messages_to(OSIJEK, osijek) and not api.messages_to(PRAGUE, prague)
        assert not into(api.calls[mark:], PRAGUE) and not into(api.calls[mark:], OSIJEK)
        actions = [row.action for row in await storage.cases.audit_log(1)]
        assert actions == ["open", "transfer", "return", "topic_deleted", "topic_deleted"]
        assert await storage.cases.ended_topic(PRAGUE, prague) is None
