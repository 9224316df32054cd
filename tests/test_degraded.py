"""Fault: the Rasa server is killed (kill -9) while the bot answers several people.

Every person still gets a useful reply (the closest topics by their words, the topic menu and the
offer of a person — never only "try again later"); the supervisor starts Rasa again and the same
bot, never restarted, answers from the model again. The test has a Rasa server of its own (the
shared one of the ``services`` fixture is never killed): one model load to start, one to recover.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.engine import Outcome
from bot.runtime import Services
from bot.settings import Settings
from bot.storage import Storage
from bot.telegram import build_application, serving
from bot.telegram.ui import answer_keyboard

from .botapi import FakeBotAPI
from .test_telegram import TOKEN, Chat, buttons

pytestmark = pytest.mark.rasa

# (language, city) of the people asking at the same time.
PEOPLE = [
    ("en", "prague"),
    ("uk", "sofia"),
    ("ru", "kosice"),
    ("ar", "rubano"),
    ("cs", "prague"),
    ("it", "osijek"),
]
KEY = "permit.renewal"
DEGRADED_TEXT = (
    "I cannot fully understand questions right now because of a technical problem. Is your "
    "question about one of these topics? You can also ask to talk to a person."
)


@pytest.fixture(scope="module")
async def own_services(settings: Settings) -> AsyncIterator[Services]:
    """A Services with a Rasa server of its own, which this module may kill."""
    services = Services(settings, reuse_running=False)
    await services.open()
    try:
        yield services
    finally:
        await services.aclose()


@pytest.fixture
async def app(own_services: Services, tmp_path: Path) -> AsyncIterator[tuple[FakeBotAPI, Storage]]:
    storage = Storage(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await storage.open()
    async with FakeBotAPI(TOKEN) as api:
        settings = own_services.settings.model_copy(
            update={"telegram_token": SecretStr(TOKEN), "telegram_api_base_url": api.base_url}
        )
        application = build_application(settings, services=own_services, storage=storage)
        async with serving(application):  # as `python -m bot run`: long polling into the inbox
            yield api, storage
    await storage.aclose()


async def ask_all(chats: list[Chat], questions: list[str]) -> list[tuple[dict[str, Any], float]]:
    """Everyone sends a question at once; each first reply with the seconds it took."""

    async def one(chat: Chat, text: str) -> tuple[dict[str, Any], float]:
        sent = time.time()
        [reply] = await chat.say(text)
        call = next(c for c in reversed(chat.api.calls_of("sendMessage")) if c.result == reply)
        return reply, call.time - sent

    return await asyncio.gather(*(one(chat, text) for chat, text in zip(chats, questions, strict=True)))


def useful(chat: Chat, lang: str, reply: dict[str, Any], title: str) -> bool:
    """A degraded reply that helps: the right topic among the closest ones, the menu and a person."""
    offered = buttons(reply)
    return (
        reply["text"] == chat.t(lang, DEGRADED_TEXT)
        and title in offered
        and "📋 " + chat.t(lang, "Browse topics") in offered
        and "🙋 " + chat.t(lang, "Talk to a person") in offered
    )


@pytest.mark.parametrize(
    "fault", [pytest.param(signal.SIGKILL, id="killed"), pytest.param(signal.SIGSTOP, id="hung")]
)
async def test_rasa_killed_or_hung_under_load_people_get_useful_replies_and_rasa_comes_back(
    app: tuple[FakeBotAPI, Storage], own_services: Services, fault: signal.Signals
) -> None:
    """Killed: the supervisor sees the process end. Hung (SIGSTOP: it listens, answers nothing):
    each question waits ``nlu.timeout`` (2.5 s), and three failed health checks get it restarted."""
    api, _storage = app
    services = own_services
    server, supervisor, nlu = services.server, services.supervisor, services.nlu
    assert server is not None and server.pid is not None and supervisor is not None
    chats, questions, titles = [], [], []
    for i, (lang, city) in enumerate(PEOPLE):
        chat = Chat(api, api.user(3001 + i, f"Person {i}", language_code=lang), services)
        await chat.onboard(lang, city)
        question = next(text for key, text in services.kb.examples(lang) if key == KEY)
        reply = await services.engine.ask(question, city, lang)
        assert reply.outcome is Outcome.ANSWER and reply.key == KEY  # the model knows it
        chats.append(chat)
        questions.append(question)
        titles.append(services.kb.title(KEY, lang))

    def answered_by_model(lang: str, city: str, reply: dict[str, Any]) -> bool:
        expected = services.kb.answer(city, KEY, lang)
        return expected is not None and expected.text.split("\n")[0][:40] in reply["text"]

    before = await ask_all(chats, questions)
    assert all(answered_by_model(lang, city, r) for (lang, city), (r, _) in zip(PEOPLE, before, strict=True))

    # kill -9 (or SIGSTOP) of the Rasa server, with everyone asking.
    first_pid, restarts = server.pid, supervisor.restarts
    os.kill(first_pid, fault)
    faulted = time.monotonic()
    rounds: list[list[tuple[dict[str, Any], float]]] = []
    async with asyncio.timeout(600):
        while supervisor.restarts == restarts:
            replies = await ask_all(chats, questions)
            rounds.append(replies)
            for (lang, city), chat, title, (message, _) in zip(PEOPLE, chats, titles, replies, strict=True):
                # In the round when Rasa comes back, some may already be answered by the model.
                assert useful(chat, lang, message, title) or answered_by_model(lang, city, message), message[
                    "text"
                ]
            await asyncio.sleep(2.0)
    outage = time.monotonic() - faulted  # to the round that saw it back (rounds are ~2-5 s apart)
    assert server.pid != first_pid and services.nlu is nlu  # the same bot, the same client

    after = await ask_all(chats, questions)
    assert all(answered_by_model(lang, city, r) for (lang, city), (r, _) in zip(PEOPLE, after, strict=True))

    latencies = [seconds for replies in rounds for _, seconds in replies]
    assert supervisor.last_outage is not None
    print(
        f"\nRasa {fault.name}: {len(rounds)} rounds, {len(latencies)} questions during the outage, "
        f"all useful; reply p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms; Rasa back {outage:.0f} s after the fault, "
        f"{supervisor.last_outage:.0f} s after the supervisor noticed (restarts: {supervisor.restarts})"
    )


async def test_without_any_close_topic_the_menu_and_a_person_are_offered(own_services: Services) -> None:
    """The words match no topic at all: still the menu and a person, not only 'try again'."""
    engine = own_services.engine
    reply = engine.degraded("ꙮꙮꙮ", "prague", "en", None)
    assert reply.outcome is Outcome.UNAVAILABLE and reply.degraded
    markup = answer_keyboard(engine, reply)
    assert markup is not None
    offered = [button.text for row in markup.inline_keyboard for button in row]
    assert offered == ["📋 Browse topics", "🙋 Talk to a person"]
