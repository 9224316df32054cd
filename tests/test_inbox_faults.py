"""Faults on the real bot process (``python -m bot run``, tests/botapi/process.py): kill -9 with
updates in flight, and two worker processes on one PostgreSQL database."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import inspect
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.runtime import Services
from bot.storage import Storage

from .botapi import FakeBotAPI
from .botapi.process import BotProcess
from .pg import PostgresServer

pytestmark = pytest.mark.rasa

TOKEN = "123456:inbox-fault-token"
QUESTIONS = (
    "How do I renew my residence permit?",
    "Where can I find a family doctor?",
    "How do I enrol my child in a school?",
    "Where can I sleep tonight?",
    "How can I find a job here?",
)


class HoldingAPI(FakeBotAPI):
    """The fake Bot API, where sendMessage to some chats waits at a gate: ``before`` — before Telegram
    runs it (nothing is sent yet), ``after`` — after it ran, before the bot hears back (once: should
    the bot time out and try again, the next attempt waits before). ``held``: chats waiting."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.gate = asyncio.Event()
        self.before: set[int] = set()
        self.after: set[int] = set()
        self.held: set[int] = set()

    async def execute(self, method: str, params: Any) -> tuple[int, str]:
        chat = params.get("chat_id")
        held = method.lower() == "sendmessage" and isinstance(chat, int)
        if held and chat in self.before:
            self.held.add(chat)
            await self.gate.wait()
        answer = await super().execute(method, params)
        if held and chat in self.after:
            self.after.discard(chat)
            self.before.add(chat)
            self.held.add(chat)
            await self.gate.wait()
        return answer


async def seed(url: str, people: range) -> None:
    """People who have agreed and chosen Prague, as if they had onboarded before."""
    async with Storage(url) as storage:
        for chat_id in people:
            await storage.save_person(
                chat_id, language="en", city="prague", consent_at=dt.datetime.now(dt.UTC)
            )


def sends(api: FakeBotAPI, chats: range) -> dict[int, list[str]]:
    """The texts of the messages the bot sent (successfully) to each chat, in order."""
    found: dict[int, list[str]] = collections.defaultdict(list)
    for call in api.calls_of("sendMessage"):
        if call.ok and call.params.get("chat_id") in chats:
            found[call.params["chat_id"]].append(call.params["text"])
    return found


def duplicates(sent: dict[int, list[str]], asked: int = 1) -> int:
    """Messages beyond one answer per question (every answer here is one message)."""
    return sum(max(len(texts) - asked, 0) for texts in sent.values())


async def until(predicate: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 60.0) -> None:  # noqa: ASYNC109
    """Wait (bounded) until ``predicate()`` is true: it looks at another process or the database,
    which cannot notify this one, so it is asked again every 50 ms."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                answer = predicate()
                if await answer if inspect.isawaitable(answer) else answer:
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {timeout}s: {what}") from None


async def pending(url: str, count: int) -> bool:
    """Whether the inbox has ``count`` updates pending."""
    async with Storage(url) as storage:
        return (await storage.inbox.counts())["pending"] == count


async def test_the_process_harness_runs_the_real_bot(services: Services, tmp_path: Path) -> None:
    assert services.server is not None
    async with FakeBotAPI(TOKEN) as api:
        database = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        bot = BotProcess(api, tmp_path, database_url=database, nlu_url=services.server.url)
        async with bot:
            await api.user(1001, "Ana", language_code="hr").send("/start")
            call = await api.wait_for("sendMessage", timeout=30)
            assert call.params["chat_id"] == 1001
        assert not bot.running and bot.returncode == 0  # SIGTERM: a clean stop


async def test_kill_9_with_20_updates_in_flight_then_restart_every_question_is_answered(
    services: Services, tmp_path: Path
) -> None:
    assert services.server is not None
    database = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    people = range(3001, 3021)
    await seed(database, people)
    async with HoldingAPI(TOKEN) as api:
        users = [api.user(chat_id, f"Person {chat_id}") for chat_id in people]
        bot = BotProcess(api, tmp_path, database_url=database, nlu_url=services.server.url)
        await bot.start()
        try:
            # 5 are answered; 14 wait for Telegram; 1 was sent, but the bot never heard back.
            api.before = set(range(3006, 3020))
            api.after = {3020}
            for n, user in enumerate(users):
                await user.send(QUESTIONS[n % len(QUESTIONS)])
            await until(
                lambda: all(sends(api, range(3001, 3006)).get(c) for c in range(3001, 3006)), "5 answers"
            )
            await until(lambda: api.held == set(range(3006, 3021)), "15 answers on their way")
            await until(lambda: not api.pending, "all 20 updates confirmed to Telegram")
            await until(lambda: pending(database, 15), "the 5 answered ones marked done")
            await bot.kill()
        finally:
            await bot.kill()
        answered_before = sends(api, people)
        assert sorted(answered_before) == [*range(3001, 3006), 3020]
        api.before, api.after = set(), set()
        api.gate.set()
        mark = len(api.calls)
        started = time.monotonic()
        async with bot:  # restarted on the same database: Telegram has nothing left to send
            ready = time.monotonic() - started
            await until(lambda: len(sends(api, people)) == 20, "every question answered", timeout=90)
            answered = time.monotonic() - started
            await until(lambda: pending(database, 0), "nothing pending")
        sent = sends(api, people)
        print(
            f"\nkill -9: 20 asked, {len(answered_before)} sends made before the kill (5 answered, 1 answer"
            f" out), 15 acknowledged and pending; after the restart: {len(sent)} of 20 answered,"
            f" {duplicates(sent)} duplicate(s); {ready:.1f} s to running again,"
            f" {answered:.1f} s to all answered"
        )
        assert sorted(sent) == list(people)  # 0 lost
        assert duplicates(sent) <= 1  # at most the one whose answer was out when the bot died
        assert {chat for chat, texts in sent.items() if len(texts) > 1} <= {3020}
        assert not [c for c in api.calls[mark:] if c.method == "getUpdates" and c.result]


@pytest.mark.postgres
async def test_two_workers_on_one_postgresql_keep_each_chats_order_and_handle_nothing_twice(
    services: Services, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    assert services.server is not None
    server: PostgresServer = request.getfixturevalue("postgres")
    database = server.create_database("workers")
    people = range(4001, 4009)
    await seed(database, people)
    async with FakeBotAPI(TOKEN) as api:
        users = [api.user(chat_id, f"Person {chat_id}") for chat_id in people]
        config = {"telegram": {"concurrency": 2}}  # two chats at a time each: both workers get work
        workers = [
            BotProcess(
                api, tmp_path, database_url=database, nlu_url=services.server.url, config=config, name=name
            )
            for name in ("worker-a", "worker-b")
        ]
        await asyncio.gather(*(worker.start() for worker in workers))
        started = time.monotonic()
        try:
            for question in QUESTIONS:  # every person asks five questions, one right after another
                await asyncio.gather(*(user.send(question) for user in users))
            await until(
                lambda: all(len(sends(api, people).get(c, [])) >= len(QUESTIONS) for c in people),
                "five answers for everyone",
                timeout=120,
            )
            elapsed = time.monotonic() - started
            await until(lambda: pending(database, 0), "nothing pending")
        finally:
            await asyncio.gather(*(worker.stop() for worker in workers))
        async with Storage(database) as storage:
            for chat_id in people:
                asked = [
                    turn.text for turn in await storage.recent_turns(chat_id, limit=20) if turn.role == "user"
                ]
                assert asked == list(QUESTIONS), chat_id  # each chat in order, each question once
            async with storage.engine.connect() as connection:
                by_worker = text("SELECT claimed_by, count(*) FROM inbox GROUP BY claimed_by")
                handled: dict[str, int] = {row[0]: row[1] for row in await connection.execute(by_worker)}
        sent = sends(api, people)
        print(
            f"\ntwo workers: {sum(handled.values())} updates from {len(people)} people in {elapsed:.1f} s;"
            f" handled per worker {sorted(handled.values())}; duplicates {duplicates(sent, len(QUESTIONS))}"
        )
        assert sum(handled.values()) == len(people) * len(QUESTIONS)
        assert len(handled) == 2, handled  # both workers handled updates
        assert all(len(sent[c]) == len(QUESTIONS) for c in people)  # one answer each, none twice
        # One leader polled: two pollers at once would have been told 409 Conflict.
        assert api.calls_of("getUpdates") and not [c for c in api.calls_of("getUpdates") if not c.ok]
