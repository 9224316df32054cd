"""Partner organisations end to end: routing by topic and language, /refer with and without the
person's consent, the referring topic told when the case is taken, a reminded referral, and transfer.

Prague has two partners (the integration centre, the default; legal aid for work and legal questions,
whose staff speak Czech, Ukrainian, Russian and English), Osijek one. Everything runs against the local
Bot API server with the real engine, as in test_handoff.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.runtime import Services
from bot.settings import HandoffSettings, Partner, Settings
from bot.storage import AuditRow, Storage

from .botapi import FakeBotAPI
from .test_handoff import OSIJEK, PRAGUE, World, sent_to
from .test_telegram import TOKEN, Chat, buttons

pytestmark = pytest.mark.rasa

PRAGUE_LEGAL = -1001000000003
MIRA = 505  # legal aid's caseworker
CENTRE, LEGAL, OSIJEK_CENTRE = "Integration Centre Prague", "Legal Aid Prague", "Centar za integraciju Osijek"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


class PartnerWorld(World):
    def __init__(self, api: FakeBotAPI, services: Services, settings: Settings, db: Path) -> None:
        super().__init__(api, services, settings, db)
        self.legal = api.forum(PRAGUE_LEGAL, "Legal aid caseworkers", {MIRA: "member"})
        self.mira = api.user(MIRA, "Mira", "cs")


@pytest.fixture
async def world(services: Services, tmp_path: Path) -> AsyncIterator[PartnerWorld]:
    async with FakeBotAPI(TOKEN) as api:
        handoff = HandoffSettings(
            partners={
                "prague": (
                    Partner(
                        id="icp",
                        name=CENTRE,
                        chat_id=PRAGUE,
                        language="cs",
                        timezone="Europe/Prague",
                        office_hours={day: "08:00-17:00" for day in WEEKDAYS},
                        default=True,
                    ),
                    Partner(
                        id="legal",
                        name=LEGAL,
                        chat_id=PRAGUE_LEGAL,
                        language="cs",
                        timezone="Europe/Prague",
                        languages=("cs", "uk", "ru", "en"),
                        handles=("services.legal_aid", "work.*"),
                    ),
                ),
                "osijek": (Partner(id="osijek-centre", name=OSIJEK_CENTRE, chat_id=OSIJEK, language="hr"),),
            },
            remind_after_minutes=10,
            urgent_remind_after_minutes=3,
            referral_remind_after_minutes=30,
            check_interval_seconds=0.05,
        )
        settings = services.settings.model_copy(
            update={
                "telegram_token": SecretStr(TOKEN),
                "telegram_api_base_url": api.base_url,
                "handoff": handoff,
            }
        )
        yield PartnerWorld(api, services, settings, tmp_path / "partners.db")


def nothing_personal(log: list[AuditRow], texts: list[str]) -> None:
    """The audit names partners, keys and answers, never a message or a note."""
    for row in log:
        assert row.detail is None or not any(text in row.detail for text in texts), row


async def test_cases_go_to_the_partner_for_their_topic_and_language_and_transfer_routes_too(
    world: PartnerWorld, services: Services
) -> None:
    api, t = world.api, world.t
    async with world.running() as storage:
        # By topic: a Ukrainian work question goes to legal aid, whose staff speak Ukrainian.
        olena = Chat(api, api.user(3001, "Olena", language_code="uk"), services)
        await olena.onboard("uk", "prague")
        await olena.say("роботодавець не віддає останню зарплату")
        mark = len(api.calls)
        _thread, card = await world.new_case(olena.say("/human"), PRAGUE_LEGAL)
        case = await storage.cases.open_of(3001)
        assert case is not None and case.partner == "legal" and (case.key or "").startswith("work.")
        assert t("cs", "Organisation: {name}").format(name=LEGAL) in card["text"]
        # The person is not told which organisation: a caseworker introduces themself.
        told = [c.params["text"] for c in api.calls[mark:] if c.method == "sendMessage" and sent_to(c, 3001)]
        assert told and not any(LEGAL in text or CENTRE in text for text in told)
        assert [(row.action, row.partner) for row in await storage.cases.audit_log(case.id)] == [
            ("open", "legal")
        ]

        # By language: the same kind of question in Persian goes to the default partner (legal aid's
        # staff do not speak Persian).
        hassan = Chat(api, api.user(3002, "Hassan", language_code="fa"), services)
        await hassan.onboard("fa", "prague")
        await hassan.say("یه ماه کامل کار کردم و یه قرون بهم ندادن")
        thread2, card2 = await world.new_case(hassan.say("/human"), PRAGUE)
        persian = await storage.cases.open_of(3002)
        assert persian is not None and persian.partner == "icp" and (persian.key or "").startswith("work.")
        assert t("cs", "Organisation: {name}").format(name=CENTRE) in card2["text"]

        # Staff see whom they act for.
        mark = len(api.calls)
        await world.mira.send("/help", chat=PRAGUE_LEGAL)
        helped = await api.wait_for("sendMessage", lambda c: sent_to(c, PRAGUE_LEGAL), since=mark)
        assert helped.params["text"].startswith(
            t("cs", "You act for {organisation}.").format(organisation=LEGAL)
        )

        # Transfer still works, and routes in the new city: Osijek's only partner takes it.
        mark = len(api.calls)
        thread3, card3 = await world.new_case(
            world.jana.send("/transfer osijek", chat=PRAGUE, thread_id=thread2), OSIJEK
        )
        await api.wait_for("sendMessage", lambda c: sent_to(c, 3002), since=mark)  # told: it moved
        moved = await storage.cases.get(persian.id)
        assert moved is not None and moved.city == "osijek" and moved.partner == "osijek-centre"
        assert t("hr", "Organisation: {name}").format(name=OSIJEK_CENTRE) in card3["text"]
        assert world.prague.topics[thread2].closed
        copy = await world.to_group(hassan.user.send("ممنون"), OSIJEK)
        assert copy.params["message_thread_id"] == thread3
        log = [(row.action, row.actor_id, row.partner) for row in await storage.cases.audit_log(persian.id)]
        assert log == [("open", None, "icp"), ("transfer", world.jana.id, "icp")]


async def test_referral_with_consent_brings_the_conversation_and_the_referrer_sees_it_taken(
    world: PartnerWorld, services: Services
) -> None:
    api, t = world.api, world.t
    async with world.running() as storage:
        person = Chat(api, api.user(3003, "Oksana", language_code="uk"), services)
        await person.onboard("uk", "prague")
        thread, _card = await world.new_case(person.say("/human"), PRAGUE)
        words = "мені не заплатили за два місяці роботи на складі"
        await world.to_group(person.user.send(words), PRAGUE)
        await person.replies(
            world.jana.send("Dobrý den, podívám se na to.", chat=PRAGUE, thread_id=thread), 2
        )

        # /refer alone lists the other partners, in every city; only the owner may refer.
        mark = len(api.calls)
        await world.jana.send("/refer", chat=PRAGUE, thread_id=thread)
        usage = await api.wait_for("sendMessage", lambda c: sent_to(c, PRAGUE), since=mark)
        listed = usage.params["text"].split("\n")[1:]
        osijek = services.engine.city_name("osijek", "cs")
        prague = services.engine.city_name("prague", "cs")
        assert listed == [f"legal — {LEGAL} ({prague})", f"osijek-centre — {OSIJEK_CENTRE} ({osijek})"]
        mark = len(api.calls)
        await world.petr.send("/refer legal", chat=PRAGUE, thread_id=thread)
        refused = await api.wait_for("sendMessage", lambda c: sent_to(c, PRAGUE), since=mark)
        assert refused.params["text"] == t("cs", "Only {name}, who claimed this case, can refer it.").format(
            name="Jana"
        )

        # Jana refers the case to legal aid: a new topic there, with the note but not the conversation.
        note = "needs a lawyer for unpaid wages"
        mark = len(api.calls)
        legal_thread, legal_card = await world.new_case(
            world.jana.send(f"/refer legal {note}", chat=PRAGUE, thread_id=thread), PRAGUE_LEGAL
        )
        assert t("cs", "Referred by {organisation}.").format(organisation=CENTRE) in legal_card["text"]
        assert note in legal_card["text"]
        assert words not in legal_card["text"]
        asked = await api.wait_for(
            "sendMessage", lambda c: sent_to(c, 3003) and "reply_markup" in c.params, since=mark
        )
        assert asked.result["text"].startswith(
            t(
                "uk",
                "{organisation} can help you better with this, so a caseworker has passed your request to "
                "them. May they see your conversation so far? If you say no, they only learn what your "
                "question is about, your language and your city.",
            ).format(organisation=LEGAL)
        )
        yes, no = "✅ " + t("uk", "Yes, share it"), "✖️ " + t("uk", "No, do not share it")
        assert buttons(asked.result) == [yes, no]
        in_old_topic = " ".join(m.get("text", "") for m in api.messages_to(PRAGUE, thread))
        assert LEGAL in in_old_topic and world.prague.topics[thread].closed
        [referral] = await storage.referrals.of_case(1)
        assert (referral.from_partner, referral.to_partner, referral.consent) == ("icp", "legal", None)

        # Yes: the conversation goes to legal aid's topic.
        mark = len(api.calls)
        [thanks] = await person.press(asked.result, yes)
        assert thanks["text"] == t("uk", "Thank you. {organisation} can now see your conversation.").format(
            organisation=LEGAL
        )
        shared = await api.wait_for(
            "sendMessage", lambda c: sent_to(c, PRAGUE_LEGAL) and words in c.params["text"], since=mark
        )
        assert shared.params["message_thread_id"] == legal_thread
        assert shared.params["text"].startswith(
            "✅ " + t("cs", "The person agreed to share their conversation with you.")
        )
        assert buttons(api.message(asked.result)) == []  # one answer only

        # Mira claims it: the integration centre's topic is told.
        mark = len(api.calls)
        await world.mira.press(legal_card, text="✋ " + t("cs", "Claim"))
        taken = await api.wait_for(
            "sendMessage",
            lambda c: sent_to(c, PRAGUE) and c.params.get("message_thread_id") == thread,
            since=mark,
        )
        assert taken.params["text"] == "✅ " + t(
            "cs", "{organisation} has taken {case}, which you referred to them."
        ).format(organisation=LEGAL, case="C-0001")
        [referral] = await storage.referrals.of_case(1)
        assert referral.consent is True and referral.claimed_at == world.clock.now
        copy = await world.to_group(person.user.send("дякую"), PRAGUE_LEGAL)
        assert copy.params["message_thread_id"] == legal_thread

        log = await storage.cases.audit_log(1)
        assert [(row.action, row.partner) for row in log] == [
            ("open", "icp"),
            ("claim", "icp"),
            ("reply", "icp"),
            ("refer", "icp"),
            ("consent", "legal"),
            ("claim", "legal"),
        ]
        assert [row.detail for row in log if row.action in ("refer", "consent")] == ["legal", "yes"]
        nothing_personal(log, [words, note, "Dobrý den"])


async def test_referral_without_consent_to_another_city_is_reminded_to_both_when_nobody_takes_it(
    world: PartnerWorld, services: Services
) -> None:
    api, t = world.api, world.t
    async with world.running() as storage:
        person = Chat(api, api.user(3004, "Dmitry", language_code="ru"), services)
        await person.onboard("ru", "prague")
        words = "я переезжаю в Осиек, мне нужна помощь там"
        await person.say(words)
        thread, _card = await world.new_case(person.say("/human"), PRAGUE)

        mark = len(api.calls)
        osijek_thread, osijek_card = await world.new_case(
            world.petr.send("/refer OSIJEK-CENTRE", chat=PRAGUE, thread_id=thread), OSIJEK
        )
        assert t("hr", "Referred by {organisation}.").format(organisation=CENTRE) in osijek_card["text"]
        assert words not in osijek_card["text"]
        asked = await api.wait_for(
            "sendMessage", lambda c: sent_to(c, 3004) and "reply_markup" in c.params, since=mark
        )
        # No: only the topic, language and city went across, and nothing more follows.
        mark = len(api.calls)
        [ok] = await person.press(asked.result, "✖️ " + t("ru", "No, do not share it"))
        assert ok["text"] == t(
            "ru",
            "All right: {organisation} only knows what your question is about, your language and your "
            "city. What you write here from now on goes to them.",
        ).format(organisation=OSIJEK_CENTRE)
        declined = await api.wait_for("sendMessage", lambda c: sent_to(c, OSIJEK), since=mark)
        assert declined.params["message_thread_id"] == osijek_thread
        assert declined.params["text"].startswith("✖️")
        assert not any(words in m.get("text", "") for m in api.messages_to(OSIJEK))
        referral = (await storage.referrals.of_case(1))[0]
        assert referral.consent is False

        # Half an hour later nobody in Osijek has taken it: both topics are reminded, once.
        referred_at = world.clock.now
        world.clock.now += dt.timedelta(minutes=29)
        assert await storage.referrals.due(world.clock.now, dt.timedelta(minutes=30)) == []
        mark = len(api.calls)
        world.clock.now += dt.timedelta(minutes=2)
        osijek = services.catalogues["hr"].ngettext(
            "{case} was referred to you by {organisation} {minutes} minute ago and nobody has taken it yet. "
            "Who can take it?",
            "{case} was referred to you by {organisation} {minutes} minutes ago and nobody has taken it yet. "
            "Who can take it?",
            31,
        )
        prague = services.catalogues["cs"].ngettext(
            "{organisation} has not taken {case} yet, {minutes} minute after you referred it. You may want "
            "to contact them.",
            "{organisation} has not taken {case} yet, {minutes} minutes after you referred it. You may want "
            "to contact them.",
            31,
        )
        there = await api.wait_for(
            "sendMessage",
            lambda c: (
                sent_to(c, OSIJEK)
                and c.params["text"] == "⏰ " + osijek.format(case="C-0001", organisation=CENTRE, minutes=31)
            ),
            since=mark,
        )
        here = await api.wait_for(
            "sendMessage",
            lambda c: (
                sent_to(c, PRAGUE)
                and c.params["text"]
                == "⏰ " + prague.format(case="C-0001", organisation=OSIJEK_CENTRE, minutes=31)
            ),
            since=mark,
        )
        assert (
            there.params["message_thread_id"] == osijek_thread and here.params["message_thread_id"] == thread
        )
        referral = (await storage.referrals.of_case(1))[0]
        assert referral.reminded_at == world.clock.now and referral.claimed_at is None
        assert referral.created_at == referred_at
        # Not again until another half hour has passed.
        assert await storage.referrals.due(world.clock.now, dt.timedelta(minutes=30)) == []

        log = await storage.cases.audit_log(1)
        steps = [(row.action, row.detail, row.partner) for row in log if row.action != "remind" or row.detail]
        assert steps[-3:] == [
            ("refer", "osijek-centre", "icp"),
            ("consent", "no", "osijek-centre"),
            ("remind", "referral", "osijek-centre"),
        ]
        nothing_personal(log, [words])


async def test_after_a_declined_referral_a_transfer_carries_no_conversation(
    world: PartnerWorld, services: Services
) -> None:
    api, t = world.api, world.t
    async with world.running() as storage:
        person = Chat(api, api.user(3005, "Iryna", language_code="uk"), services)
        await person.onboard("uk", "prague")
        words = "я хочу переїхати до Осієка"
        await person.say(words)
        thread, _card = await world.new_case(person.say("/human"), PRAGUE)
        mark = len(api.calls)
        legal_thread, legal_card = await world.new_case(
            world.jana.send("/refer legal", chat=PRAGUE, thread_id=thread), PRAGUE_LEGAL
        )
        assert words not in legal_card["text"]
        asked = await api.wait_for(
            "sendMessage", lambda c: sent_to(c, 3005) and "reply_markup" in c.params, since=mark
        )
        await person.press(asked.result, "✖️ " + t("uk", "No, do not share it"))

        # Legal aid sends the case on to Osijek: the person's earlier conversation stays behind.
        _thread, card = await world.new_case(
            world.mira.send("/transfer osijek", chat=PRAGUE_LEGAL, thread_id=legal_thread), OSIJEK
        )
        assert words not in card["text"]
        withheld = t(
            "hr",
            "The person has not agreed (yet) to share their conversation with this organisation: "
            "you see only the topic, their language and city.",
        )
        assert withheld in card["text"]
        assert [r.consent for r in await storage.referrals.of_case(1)] == [False]


CONSENT_QUESTION = (
    "{organisation} can help you better with this, so a caseworker has passed your request to them. May "
    "they see your conversation so far? If you say no, they only learn what your question is about, your "
    "language and your city."
)


async def steps_done(storage: Storage, case_id: int) -> None:
    """Wait (bounded) until the case's last step is recorded: right after its last message was sent."""
    for _ in range(100):
        if await storage.steps.get(case_id) is None:
            return
        await asyncio.sleep(0.05)
    assert await storage.steps.get(case_id) is None


STILL_HERE = (
    "The other group cannot be reached right now. I will keep trying; the case stays here until it has moved."
)


async def test_a_referral_waits_while_telegram_fails_and_the_reconciler_finishes_it_asking_once(
    world: PartnerWorld, services: Services
) -> None:
    api, t = world.api, world.t
    async with world.running() as storage:
        person = Chat(api, api.user(3006, "Olha", language_code="uk"), services)
        await person.onboard("uk", "prague")
        words = "я хочу переїхати до Осієка"
        await person.say(words)
        thread, _card = await world.new_case(person.say("/human"), PRAGUE)
        case = await storage.cases.open_of(3006)
        assert case is not None and case.partner == "icp"

        # Osijek's group cannot be reached: the referral is recorded and waits; the case stays here.
        api.faults.add(500, methods={"createForumTopic"}, chat=OSIJEK)
        note = "moving to Osijek, needs housing advice"
        mark = len(api.calls)
        waiting = await world.to_group(
            world.jana.send(f"/refer osijek-centre {note}", chat=PRAGUE, thread_id=thread), PRAGUE
        )
        assert waiting.params["text"] == "⏳ " + t("cs", STILL_HERE)
        setup = await storage.steps.get(case.id)
        assert setup is not None and (setup.kind, setup.step, setup.to_partner) == (
            "refer",
            "topic",
            "osijek-centre",
        )
        copy = await world.to_group(person.user.send("я ще тут"), PRAGUE)  # tries again, then relays here
        assert copy.params["message_thread_id"] == thread
        still = await storage.cases.get(case.id)
        assert still is not None and (still.partner, still.thread_id) == ("icp", thread)
        assert await storage.referrals.of_case(case.id) == []
        assert not world.prague.topics[thread].closed
        assert not any(sent_to(c, 3006) and "reply_markup" in c.params for c in api.calls[mark:])

        # Osijek is back: the reconciler finishes the referral where it stopped.
        api.faults.clear()
        mark = len(api.calls)
        world.clock.now += dt.timedelta(minutes=1)
        topic = await api.wait_for("createForumTopic", lambda c: sent_to(c, OSIJEK) and c.ok, since=mark)
        osijek_thread = topic.result["message_thread_id"]
        card = await api.wait_for(
            "sendMessage", lambda c: sent_to(c, OSIJEK) and "reply_markup" in c.params, since=mark
        )
        assert card.params["message_thread_id"] == osijek_thread
        assert t("hr", "Referred by {organisation}.").format(organisation=CENTRE) in card.params["text"]
        assert note in card.params["text"] and words not in card.params["text"]
        told = await api.wait_for(
            "sendMessage",
            lambda c: (
                sent_to(c, PRAGUE) and c.params.get("message_thread_id") == thread and "↪️" in c.params["text"]
            ),
            since=mark,
        )
        assert told.params["text"] == "↪️ " + t(
            "cs",
            "{name} referred this case to {organisation}. The person is asked whether their conversation may "
            "go with it; this topic shows when {organisation} takes the case.",
        ).format(name="Jana", organisation=OSIJEK_CENTRE)
        await api.wait_for("closeForumTopic", lambda c: sent_to(c, PRAGUE), since=mark)
        assert world.prague.topics[thread].closed
        question = t("uk", CONSENT_QUESTION).format(organisation=OSIJEK_CENTRE)
        asked = await api.wait_for(
            "sendMessage", lambda c: sent_to(c, 3006) and c.params["text"] == question, since=mark
        )
        assert "reply_markup" in asked.params
        await steps_done(storage, case.id)

        referred = await storage.cases.get(case.id)
        assert referred is not None and (referred.partner, referred.thread_id) == (
            "osijek-centre",
            osijek_thread,
        )
        assert referred.city == "prague"  # the person's city; the case is with Osijek's partner
        copy = await world.to_group(person.user.send("дякую"), OSIJEK)
        assert copy.params["message_thread_id"] == osijek_thread
        # Once each: one topic, one consent question, one referral.
        assert (
            len([c for c in api.calls if c.method == "createForumTopic" and sent_to(c, OSIJEK) and c.ok]) == 1
        )
        assert len([c for c in api.calls if sent_to(c, 3006) and c.params.get("text") == question]) == 1
        [referral] = await storage.referrals.of_case(case.id)
        assert (referral.from_partner, referral.to_partner, referral.from_thread_id) == (
            "icp",
            "osijek-centre",
            thread,
        )
        log = await storage.cases.audit_log(case.id)
        assert [(row.action, row.actor_id, row.partner) for row in log if row.action == "refer"] == [
            ("refer", world.jana.id, "icp")
        ]
        nothing_personal(log, [words, note])


async def test_a_referral_whose_card_is_refused_is_called_off_and_its_topic_labelled_and_closed(
    world: PartnerWorld, services: Services
) -> None:
    api, t = world.api, world.t
    async with world.running() as storage:
        person = Chat(api, api.user(3007, "Oksana", language_code="uk"), services)
        await person.onboard("uk", "prague")
        thread, _card = await world.new_case(person.say("/human"), PRAGUE)
        api.faults.add(403, methods={"sendMessage"}, chat=PRAGUE_LEGAL, times=1)  # the card is refused
        mark = len(api.calls)
        await world.jana.send("/refer legal needs a lawyer", chat=PRAGUE, thread_id=thread)
        topic = await api.wait_for("createForumTopic", lambda c: sent_to(c, PRAGUE_LEGAL), since=mark)
        legal_thread = topic.result["message_thread_id"]
        label = await api.wait_for("sendMessage", lambda c: sent_to(c, PRAGUE_LEGAL) and c.ok, since=mark)
        assert label.params["message_thread_id"] == legal_thread
        assert label.params["text"] == "🗂 " + t(
            "cs", "This topic is not in use: moving {case} here was called off; it stays where it was."
        ).format(case="C-0001")
        await api.wait_for("closeForumTopic", lambda c: sent_to(c, PRAGUE_LEGAL), since=mark)
        assert world.legal.topics[legal_thread].closed
        told = await api.wait_for("sendMessage", lambda c: sent_to(c, PRAGUE), since=mark)
        assert told.params["message_thread_id"] == thread
        assert told.params["text"] == "⚠️ " + t(
            "cs", "The other organisation's group cannot be reached; the case stays here."
        )

        # The case stays where it was, fully usable; the person was never asked anything.
        assert not world.prague.topics[thread].closed
        case = await storage.cases.open_of(3007)
        assert case is not None and (case.partner, case.thread_id) == ("icp", thread)
        await steps_done(storage, case.id)
        assert await storage.referrals.of_case(case.id) == []
        assert not any(sent_to(c, 3007) and "reply_markup" in c.params for c in api.calls[mark:])
        copy = await world.to_group(person.user.send("я ще тут"), PRAGUE)
        assert copy.params["message_thread_id"] == thread
        assert "refer" not in [row.action for row in await storage.cases.audit_log(case.id)]


async def test_a_case_referred_to_another_city_can_be_transferred_back_from_there(
    world: PartnerWorld, services: Services
) -> None:
    api, t = world.api, world.t
    engine = services.engine
    async with world.running() as storage:
        person = Chat(api, api.user(3008, "Iryna", language_code="uk"), services)
        await person.onboard("uk", "prague")
        thread, _card = await world.new_case(person.say("/human"), PRAGUE)
        mark = len(api.calls)
        osijek_thread, _card = await world.new_case(
            world.jana.send("/refer osijek-centre", chat=PRAGUE, thread_id=thread), OSIJEK
        )
        question = t("uk", CONSENT_QUESTION).format(organisation=OSIJEK_CENTRE)
        await api.wait_for(
            "sendMessage", lambda c: sent_to(c, 3008) and c.params["text"] == question, since=mark
        )
        case = await storage.cases.open_of(3008)
        assert case is not None and (case.city, case.partner) == ("prague", "osijek-centre")

        # Osijek is where the case is now: /transfer osijek is refused, and Prague is offered.
        usage = await world.to_group(
            world.iva.send("/transfer osijek", chat=OSIJEK, thread_id=osijek_thread), OSIJEK
        )
        cities = usage.params["text"].rsplit(": ", 1)[1].split(", ")
        assert f"prague ({engine.city_name('prague', 'hr')})" in cities
        assert not any(city.startswith("osijek") for city in cities)

        # Osijek sends it back to Prague (the person's own city, not the case's "same city").
        expected = world.settings.route("prague", case.key, "uk")
        assert expected is not None
        mark = len(api.calls)
        back_thread, back_card = await world.new_case(
            world.iva.send("/transfer prague", chat=OSIJEK, thread_id=osijek_thread), expected.chat_id
        )
        origin = t(expected.language, "Transferred from {city}.").format(
            city=engine.city_name("osijek", expected.language)
        )
        assert origin in back_card["text"]
        moved = await api.wait_for("sendMessage", lambda c: sent_to(c, 3008), since=mark)
        assert moved.params["text"] == t(
            "uk", "Your conversation has been passed to caseworkers in {city}."
        ).format(city=engine.city_name("prague", "uk"))
        await api.wait_for("closeForumTopic", lambda c: sent_to(c, OSIJEK), since=mark)
        assert world.osijek.topics[osijek_thread].closed
        back = await storage.cases.get(case.id)
        assert back is not None and (back.city, back.partner, back.thread_id) == (
            "prague",
            expected.id,
            back_thread,
        )
        log = [(row.action, row.partner) for row in await storage.cases.audit_log(case.id)]
        assert log[-2:] == [("refer", "icp"), ("transfer", "osijek-centre")]
