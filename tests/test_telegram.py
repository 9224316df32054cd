"""End-to-end conversations through python-telegram-bot's real HTTP path and a local Bot API server.

The bot runs with long polling against ``tests.botapi.FakeBotAPI`` on 127.0.0.1, with the real
engine (Rasa model on loopback) and a real SQLite database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.engine import Outcome
from bot.language import native_name
from bot.runtime import Services
from bot.storage import Storage
from bot.telegram import build_application, serving
from bot.telegram.ui import RLM

from .botapi import FakeBotAPI

pytestmark = pytest.mark.rasa

TOKEN = "123456:scenario-test-token"
JSON = dict[str, Any]
Bot = tuple[FakeBotAPI, Storage]
PRIVACY_NOTICE = (
    "Before we start: to help you, I store your chat number, your language and city, the date you "
    "agreed, and your last messages with me (so a caseworker can read them if you ask for a person). "
    "Feedback and questions I could not answer are kept without your name or number, so the "
    "information can be improved. Nothing else is stored."
)
RETENTION = (
    "Your conversation is deleted after {days} day without use, and you can delete everything at any time "
    "with /forget.",
    "Your conversation is deleted after {days} days without use, and you can delete everything at any time "
    "with /forget.",
)
MEDIA_REPLY = "I can only read text messages. Please type your question, choose a topic, or talk to a person."


class Chat:
    """One person's private chat with the bot, seen from the person's side."""

    def __init__(self, api: FakeBotAPI, user: Any, services: Services) -> None:
        self.api, self.user, self.services = api, user, services

    async def replies(
        self,
        action: Awaitable[Any],
        count: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109 - passed on to the Bot-API server's bounded wait
    ) -> list[JSON]:
        """Do ``action`` and return the next ``count`` messages the bot sends to this chat (each
        within ``timeout`` seconds)."""
        mark = len(self.api.calls)
        await action
        found: list[JSON] = []
        while len(found) < count:
            call = await self.api.wait_for(
                "sendMessage",
                lambda c: c.params.get("chat_id") in {self.user.id, str(self.user.id)},
                timeout=timeout,
                since=mark,
            )
            mark = self.api.calls.index(call) + 1
            found.append(call.result)
        return found

    async def say(self, text: str, count: int = 1) -> list[JSON]:
        return await self.replies(self.user.send(text), count)

    async def press(self, message: JSON, text: str, count: int = 1) -> list[JSON]:
        button = self.api.button(message, text)
        return await self.replies(self.user.press(message, button["callback_data"]), count)

    def t(self, lang: str, message: str) -> str:
        return self.services.catalogues[lang].gettext(message)

    async def onboard(self, lang: str, city: str) -> None:
        """/start → confirm language → agree → choose city."""
        [hello] = await self.say("/start")
        [notice] = await self.press(hello, "✅ " + native_name(lang))
        [ask_city] = await self.press(notice, "✅ " + self.t(lang, "I agree"))
        await self.press(ask_city, self.services.engine.city_name(city, lang))


@pytest.fixture
async def bot(services: Services, tmp_path: Path) -> AsyncIterator[tuple[FakeBotAPI, Storage]]:
    storage = Storage(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await storage.open()
    async with FakeBotAPI(TOKEN) as api:
        settings = services.settings.model_copy(
            update={"telegram_token": SecretStr(TOKEN), "telegram_api_base_url": api.base_url}
        )
        application = build_application(settings, services=services, storage=storage)
        async with serving(application):  # as `python -m bot run`: long polling into the inbox
            yield api, storage
    await storage.aclose()


def buttons(message: JSON) -> list[str]:
    return [b["text"] for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


async def test_onboarding_in_ukrainian_then_a_question_gets_an_answer_card(
    bot: Bot, services: Services
) -> None:
    api, storage = bot
    chat = Chat(api, api.user(1001, "Olena", language_code="uk"), services)
    [hello] = await chat.say("/start")
    assert buttons(hello) == ["✅ Українська", "🌐 " + chat.t("uk", "Other languages")]
    [notice] = await chat.press(hello, "✅ Українська")
    deleted = services.catalogues["uk"].ngettext(*RETENTION, 90).format(days=90)  # retention_days: 90
    assert notice["text"] == chat.t("uk", PRIVACY_NOTICE) + " " + deleted
    assert await storage.get_person(1001) is None  # nothing stored before consent
    [ask_city] = await chat.press(notice, "✅ " + chat.t("uk", "I agree"))
    person = await storage.get_person(1001)
    assert person is not None and person.consent_at is not None and person.language == "uk"
    [welcome] = await chat.press(ask_city, services.engine.city_name("prague", "uk"))
    assert welcome["text"] == services.engine.conversation_text("greet", "prague", "uk")

    [card] = await chat.say("як продовжити посвідку на проживання")
    expected = services.kb.answer("prague", "permit.renewal", "uk")
    assert expected is not None and expected.text.split("\n")[0][:40] in card["text"]
    assert all(f'href="{url}"' in api.calls_of("sendMessage")[-1].params["text"] for url in expected.sources)
    assert buttons(card) == ["👍", "👎", "🙋 " + chat.t("uk", "Talk to a person")]
    [sorry] = await chat.press(card, "👎")
    assert sorry["text"] == chat.t(
        "uk", "Sorry this did not help. You can ask in other words, or talk to a person."
    )
    report = await storage.feedback_report()
    assert any(row.key == "permit.renewal" and row.unhelpful == 1 for row in report)
    # The insights report's counts: the question's outcome and the vote, without the text.
    since, until = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    usage = await storage.usage.rows("prague", since, until)
    assert [(row.language, row.key, row.event) for row in usage] == [
        ("uk", "permit.renewal", "answer"),
        ("uk", "permit.renewal", "unhelpful"),
    ]
    assert usage[0].pseudonym == usage[1].pseudonym != 1001


async def test_deep_link_chooses_the_city_and_arabic_answers_are_right_to_left(
    bot: Bot, services: Services
) -> None:
    api, storage = bot
    chat = Chat(api, api.user(1002, "Omar", language_code="ar"), services)
    [hello] = await chat.say("/start rubano")
    [notice] = await chat.press(hello, "✅ العربية")
    [welcome] = await chat.press(notice, "✅ " + chat.t("ar", "I agree"))
    assert welcome["text"] == services.engine.conversation_text("greet", "rubano", "ar")
    person = await storage.get_person(1002)
    assert person is not None and person.city == "rubano"
    [card] = await chat.say("أين أجد طبيب عام")
    assert card["text"].startswith(RLM)
    expected = services.kb.answer("rubano", "health.doctor", "ar")
    assert expected is not None and expected.language == "ar"


async def test_low_confidence_offers_did_you_mean_buttons_in_persian(bot: Bot, services: Services) -> None:
    api, _storage = bot
    candidates = ["اقامت", "کار", "مدرسه", "خانه", "بیمه", "کمک", "کارت", "پول"]
    for text in candidates:
        reply = await services.engine.ask(text, "sofia", "fa")
        if reply.outcome is Outcome.CLARIFY:
            break
    else:
        pytest.fail("none of the short Persian words was ambiguous to the model")
    chat = Chat(api, api.user(1003, "Sara", language_code="fa"), services)
    await chat.onboard("fa", "sofia")
    [clarify] = await chat.say(text)
    titles = [services.kb.title(a.key, "fa") for a in reply.alternatives]
    assert buttons(clarify)[: len(titles)] == titles
    [card] = await chat.press(clarify, titles[0])
    expected = services.kb.answer("sofia", reply.alternatives[0].key, "fa")
    assert expected is not None and "👍" in buttons(card)


async def test_a_reply_near_the_alarm_ends_with_the_emergency_number_and_a_person(
    bot: Bot, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, _storage = bot
    # Every reply that is not an answer comes "near the alarm" at a caution threshold of 0.
    nlu = services.settings.nlu.model_copy(update={"emergency_caution_threshold": 0.0})
    monkeypatch.setattr(services.engine, "settings", services.settings.model_copy(update={"nlu": nlu}))
    chat = Chat(api, api.user(1005, "Ahmad", language_code="ru"), services)
    await chat.onboard("ru", "sofia")
    thanks = "спасибо большое за всё"
    reply = await services.engine.ask(thanks, "sofia", "ru")
    assert reply.outcome is Outcome.CONVERSATION and not reply.urgent and reply.caution
    [welcome, caution] = await chat.say(thanks, count=2)
    assert welcome["text"] == reply.text
    assert caution["text"] == chat.t("ru", "If you are in danger, call 112 now.")
    assert buttons(caution) == ["🙋 " + chat.t("ru", "Talk to a person")]
    # A confident answer gets none: after the card comes the next question's reply.
    question = "как продлить вид на жительство"
    assert (await services.engine.ask(question, "sofia", "ru")).outcome is Outcome.ANSWER
    mark = len(api.calls)
    [card] = await chat.say(question)
    [welcome, caution] = await chat.say(thanks, count=2)
    sent = [
        c.result["text"]
        for c in api.calls[mark:]
        if c.method == "sendMessage" and c.params.get("chat_id") in {1005, "1005"}
    ]
    assert "👍" in buttons(card) and sent == [card["text"], welcome["text"], caution["text"]]


async def test_menu_browsing_media_and_switching_language_and_city(bot: Bot, services: Services) -> None:
    api, storage = bot
    chat = Chat(api, api.user(1004, "Petr", language_code="cs"), services)
    await chat.onboard("cs", "prague")
    [topics] = await chat.say("/menu")
    housing = "🏠 " + chat.t("cs", "Housing")
    assert housing in buttons(topics) and len(buttons(topics)) == 7
    [keys] = await chat.press(topics, housing)
    title = services.kb.title("housing.shelter", "cs")
    [card] = await chat.press(keys, title)
    expected = services.kb.answer("prague", "housing.shelter", "cs")
    assert expected is not None and expected.text[:30] in card["text"]

    media_text = chat.t("cs", MEDIA_REPLY)
    for send in (chat.user.send_photo(), chat.user.send_voice(), chat.user.send_sticker(),
                 chat.user.send_document(), chat.user.send_location(50.08, 14.43)):  # fmt: skip
        [answer] = await chat.replies(send)
        assert answer["text"] == media_text

    [picker] = await chat.say("/language")
    [changed] = await chat.press(picker, "Slovenčina")
    assert changed["text"] == chat.t("sk", "Language changed to {language}.").format(language="Slovenčina")
    [cities] = await chat.say("/city")
    await chat.press(cities, services.engine.city_name("kosice", "sk"))
    person = await storage.get_person(1004)
    assert person is not None and person.language == "sk" and person.city == "kosice"


async def test_commands_are_registered_in_every_language(bot: Bot, services: Services) -> None:
    api, _storage = bot
    for lang in services.settings.languages:
        commands = {c["command"]: c["description"] for c in api.my_commands(None, lang)}
        assert set(commands) == {"menu", "human", "language", "city", "forget", "help"}
        assert commands["menu"] == services.catalogues[lang].gettext("browse topics")


async def test_forget_deletes_everything(bot: Bot, services: Services) -> None:
    api, storage = bot
    chat = Chat(api, api.user(1005, "Ivan", language_code="ru"), services)
    await chat.onboard("ru", "osijek")
    await chat.say("нужен бесплатный юрист")
    assert await storage.recent_turns(1005)
    [confirm] = await chat.say("/forget")
    [done] = await chat.press(confirm, "🗑 " + chat.t("ru", "Yes, delete my data"))
    assert done["text"].startswith(chat.t("ru", "All your data has been deleted."))
    assert await storage.get_person(1005) is None and await storage.recent_turns(1005) == []
    # Afterwards the bot asks for consent again before answering anything.
    [notice] = await chat.say("нужен бесплатный юрист")
    assert "✅ " + chat.t("ru", "I agree") in buttons(notice)


async def test_forged_or_stale_button_data_is_answered_and_ignored(bot: Bot, services: Services) -> None:
    api, storage = bot
    chat = Chat(api, api.user(1006, "Eve", language_code="en"), services)
    await chat.onboard("en", "prague")
    [card] = await chat.say("how do I renew my residence permit")
    before = await storage.get_person(1006)
    capabilities = services.engine.conversation_text("bot_capabilities", "prague", "en")
    forged = [
        "fb:1:no.such_key",  # a key this knowledge base does not have
        "fb:2:permit.renewal",  # neither 👍 nor 👎
        "lang:xx",  # a language this deployment does not serve
        "city:atlantis",
        "topic:permits:extra",
        "key:permit.renewal\n",
        "menu:1",
        "case:claim:1",  # staff buttons outside a staff group
        "quick:1:0",
        "rate:1:9",
        "rate:1:5",  # a case that does not exist
        "forget:now",
        "",
        "🙂",
    ]
    for data in forged:
        mark = len(api.calls)
        await chat.user.forge_press(card, data)
        # Updates are handled one at a time: when /help is answered, the button's handling is over.
        [help_text] = await chat.say("/help")
        made = [c.method for c in api.calls[mark:] if c.method != "getUpdates"]
        assert made == ["answerCallbackQuery", "sendMessage"], data
        assert help_text["text"].startswith(capabilities)
    assert await storage.get_person(1006) == before
    assert await storage.feedback_report() == []


async def test_webhook_mode_checks_telegrams_secret_token(services: Services, tmp_path: Path) -> None:
    import httpx

    from bot.telegram.app import webhook_options
    from nlu import free_port

    port = free_port()
    async with Storage(f"sqlite+aiosqlite:///{tmp_path / 'hook.db'}") as storage, FakeBotAPI(TOKEN) as api:
        settings = services.settings.model_copy(
            update={
                "telegram_token": SecretStr(TOKEN),
                "telegram_api_base_url": api.base_url,
                "telegram": services.settings.telegram.model_copy(
                    update={
                        "mode": "webhook",
                        "webhook_url": f"http://127.0.0.1:{port}/telegram",
                        "port": port,
                        "webhook_secret": SecretStr("hook-secret-123"),
                    }
                ),
            }
        )
        options = webhook_options(settings)
        assert options["secret_token"] == "hook-secret-123" and options["url_path"] == "telegram"
        application = build_application(settings, services=services, storage=storage)
        async with serving(application):  # the webhook server; the webhook set with its secret
            assert api.webhook["url"] == f"http://127.0.0.1:{port}/telegram"
            chat = Chat(api, api.user(1010, "Ana", language_code="hr"), services)
            [hello] = await chat.say("/start")  # delivered by POST with the secret header
            assert buttons(hello)[0] == "✅ Hrvatski"
            async with httpx.AsyncClient() as http:
                forged = await http.post(
                    f"http://127.0.0.1:{port}/telegram",
                    json={"update_id": 999, "message": {}},
                    headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"},
                )
            assert forged.status_code == 403
            assert sum((await storage.inbox.counts()).values()) == 1  # /start; the forged one was not stored
