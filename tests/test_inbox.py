"""The durable inbox: the store on SQLite and PostgreSQL, chat keys, and replaying what was sent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from telegram import Bot

from bot.settings import Settings
from bot.storage import Storage
from bot.storage._models import Feedback, Turn
from bot.telegram import replay
from bot.telegram.inbox import chat_key

from .botapi import FakeBotAPI
from .pg import PostgresServer

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
TOKEN = "123456:inbox-unit-token"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def storage(url: str) -> AsyncIterator[Storage]:
    async with Storage(url, clock=Clock()) as opened:
        yield opened


def message(update_id: int, chat_id: int, text: str = "hi", thread: int | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"message_id": update_id, "date": 0, "chat": {"id": chat_id, "type": "private"}}
    msg["text"] = text
    if thread is not None:
        msg.update(message_thread_id=thread, is_topic_message=True)
        msg["chat"] = {"id": chat_id, "type": "supergroup", "is_forum": True}
    return {"update_id": update_id, "message": msg}


def rows(*updates: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
    return [(u["update_id"], chat_key(u), u) for u in updates]


async def test_an_update_is_stored_once_and_only_the_oldest_of_each_chat_is_claimed(storage: Storage) -> None:
    inbox = storage.inbox
    assert await inbox.add(rows(message(1, 100), message(2, 100), message(3, 200))) == 3
    assert await inbox.add(rows(message(2, 100), message(4, 300))) == 1  # 2 again: Telegram resent it
    claimed = await inbox.claim("w1", limit=10, lease=LEASE)
    assert [(i.update_id, i.chat_key, i.attempts) for i in claimed] == [
        (1, "100", 1),
        (3, "200", 1),
        (4, "300", 1),
    ]
    assert claimed[0].data == message(1, 100) and claimed[0].sent == []
    # Chat 100's second update waits for its first, also for another worker.
    assert await inbox.claim("w2", limit=10, lease=LEASE) == []
    await inbox.done(1)
    [second] = await inbox.claim("w2", limit=10, lease=LEASE)
    assert second.update_id == 2
    assert await inbox.counts() == {"pending": 3, "done": 1, "failed": 0}


async def test_a_staff_topic_is_its_own_queue_and_a_lease_that_ran_out_is_claimed_again(
    storage: Storage,
) -> None:
    inbox, clock = storage.inbox, storage.clock
    assert isinstance(clock, Clock)
    await inbox.add(
        rows(message(10, -1001, thread=7), message(11, -1001, thread=8), message(12, -1001, thread=7))
    )
    claimed = await inbox.claim("w1", limit=10, lease=LEASE)
    assert [i.update_id for i in claimed] == [10, 11]
    await inbox.record_sent(10, [{"m": "sendmessage", "r": {"message_id": 5}}])
    clock.now += timedelta(seconds=30)
    assert await inbox.renew("w1", [10], LEASE) == 1  # still handling 10; 11 is left to run out
    clock.now += timedelta(seconds=45)
    [again] = await inbox.claim("w2", limit=10, lease=LEASE)
    assert (again.update_id, again.attempts) == (11, 2)
    assert await inbox.renew("w1", [11], LEASE) == 0  # w1 lost it
    await inbox.release("w1")  # a clean stop: w1's 10 is claimable at once, with what it sent
    [replayed] = await inbox.claim("w3", limit=10, lease=LEASE)
    assert replayed.update_id == 10 and replayed.sent == [{"m": "sendmessage", "r": {"message_id": 5}}]


async def test_a_worker_never_claims_again_an_update_it_is_still_handling(storage: Storage) -> None:
    # The lease of an update still in hand ran out (the clock jumped, the heartbeat stalled): the same
    # worker must not start it a second time beside the first; another worker may take it over.
    inbox, clock = storage.inbox, storage.clock
    assert isinstance(clock, Clock)
    await inbox.add(rows(message(20, 100), message(21, 200)))
    claimed = await inbox.claim("w1", limit=10, lease=LEASE)
    assert [i.update_id for i in claimed] == [20, 21]
    await inbox.done(21)
    clock.now += timedelta(days=1)
    assert await inbox.claim("w1", limit=10, lease=LEASE, busy=[20]) == []
    [taken] = await inbox.claim("w2", limit=10, lease=LEASE)
    assert (taken.update_id, taken.attempts) == (20, 2)


async def test_done_updates_lose_their_content_and_are_purged_after_a_day(storage: Storage) -> None:
    inbox, clock = storage.inbox, storage.clock
    assert isinstance(clock, Clock)
    await inbox.add(rows(message(1, 100, "my residence permit"), message(2, 200)))
    await inbox.claim("w1", limit=10, lease=LEASE)
    await inbox.done(1)
    await inbox.done(2, failed=True)
    async with storage.engine.connect() as connection:
        from sqlalchemy import text

        stored = (await connection.execute(text("SELECT data, sent FROM inbox"))).all()
    assert [tuple(row) for row in stored] == [(None, None), (None, None)]
    assert await inbox.add(rows(message(1, 100))) == 0  # a redelivery is still recognised
    assert await inbox.purge(now=clock.now + timedelta(hours=23), done_older_than=timedelta(days=1)) == 0
    assert await inbox.purge(now=clock.now + timedelta(hours=25), done_older_than=timedelta(days=1)) == 2
    assert await inbox.counts() == {"pending": 0, "done": 0, "failed": 0}


async def test_a_failed_attempt_waits_before_the_chat_goes_on(storage: Storage) -> None:
    inbox, clock = storage.inbox, storage.clock
    assert isinstance(clock, Clock)
    await inbox.add(rows(message(1, 100), message(2, 100)))
    await inbox.claim("w1", limit=10, lease=LEASE)
    await inbox.retry_later(1, "w1", timedelta(seconds=4))
    assert await inbox.claim("w1", limit=10, lease=LEASE) == []  # 1 waits, and 2 waits behind it
    clock.now += timedelta(seconds=5)
    [item] = await inbox.claim("w1", limit=10, lease=LEASE)
    assert (item.update_id, item.attempts) == (1, 2)


async def test_concurrent_claims_never_hand_out_an_update_twice(storage: Storage) -> None:
    inbox = storage.inbox
    await inbox.add(rows(*(message(n, 1000 + n % 7) for n in range(1, 71))))
    handed: list[int] = []

    async def worker(name: str) -> None:
        for _ in range(40):
            items = await inbox.claim(name, limit=3, lease=LEASE)
            handed.extend(i.update_id for i in items)
            for item in items:
                await inbox.done(item.update_id)
            if not items:
                await asyncio.sleep(0.01)

    await asyncio.gather(*(worker(f"w{n}") for n in range(4)))
    assert sorted(handed) == list(range(1, 71))
    # Each chat's updates were handed out in their order.
    for chat in range(7):
        mine = [n for n in handed if n % 7 == chat]
        assert mine == sorted(mine)


def test_chat_keys_order_a_private_chat_with_its_buttons_and_a_topic_apart_from_its_group() -> None:
    assert chat_key(message(1, 42)) == "42"
    press = {"update_id": 2, "callback_query": {"id": "q", "from": {"id": 42}, "data": "x",
             "message": {"message_id": 9, "date": 0, "chat": {"id": 42, "type": "private"}}}}  # fmt: skip
    assert chat_key(press) == "42"
    assert chat_key(message(3, -1001, thread=7)) == "-1001:7"
    card_press = {"update_id": 4, "callback_query": {"id": "q", "from": {"id": 5}, "data": "x",
                  "message": message(4, -1001, thread=7)["message"]}}  # fmt: skip
    assert chat_key(card_press) == "-1001:7"
    blocked = {"update_id": 5, "my_chat_member": {"chat": {"id": 42, "type": "private"}, "from": {"id": 42}}}
    assert chat_key(blocked) == "42"
    assert chat_key({"update_id": 6, "edited_message": message(6, 42)["message"]}) == "42"
    assert chat_key({"update_id": 7, "poll": {"id": "p"}}) == "update:7"


async def test_a_replayed_update_gets_its_sends_from_the_record_without_calling_telegram() -> None:
    records: list[list[dict[str, Any]]] = []

    async def record(update_id: int, steps: list[dict[str, Any]]) -> None:
        records.append([dict(step) for step in steps])

    async with FakeBotAPI(TOKEN) as api:
        api.user(42, "Ana")
        bot = Bot(TOKEN, base_url=api.base_url, request=replay.ReplayingRequest())
        async with bot:

            async def handle(earlier: list[dict[str, Any]]) -> list[int]:
                replay.handling.set(replay.Handling(7, earlier, record))
                first = await bot.send_message(42, "Your answer")
                await bot.send_chat_action(42, "typing")  # harmless to repeat: never recorded
                second = await bot.send_message(42, "And a follow-up")
                return [first.message_id, second.message_id]

            ids = await asyncio.create_task(handle([]))
            assert len(api.calls_of("sendMessage")) == 2
            steps = records[-1]
            assert [s["m"] for s in steps] == ["sendmessage", "sendmessage"]
            assert "text" not in steps[0]["r"] and steps[0]["r"]["chat"] == {"id": 42, "type": "private"}
            # Killed after the first send was recorded: the replay sends only the second one.
            again = await asyncio.create_task(handle(steps[:1]))
            assert again[0] == ids[0]
            assert [c.params["text"] for c in api.calls_of("sendMessage")] == [
                "Your answer",
                "And a follow-up",
                "And a follow-up",
            ]
            assert len(api.calls_of("sendChatAction")) == 2


async def test_sqlite_lets_many_handlers_write_at_once_without_database_is_locked(tmp_path: Path) -> None:
    """32 chats handled at once, each writing in turn after reading: on SQLite, WAL lets readers go on
    while one writes, and the busy timeout makes writers wait their turn instead of failing."""
    async with Storage(f"sqlite+aiosqlite:///{tmp_path / 'busy.db'}") as storage:
        async with storage.engine.connect() as connection:
            assert (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 30_000

        async def conversation(chat_id: int) -> None:
            for n in range(5):
                async with storage.session() as session, session.begin():
                    seen = await session.scalar(select(func.count()).select_from(Turn))
                    await asyncio.sleep(0)  # another chat's transaction gets its turn here
                    session.add(
                        Feedback(city="prague", language="en", key=f"k{seen}", helpful=True, created_at=T0)
                    )
                await storage.add_turn(chat_id, "user", f"question {n}")

        await asyncio.gather(*(conversation(chat_id) for chat_id in range(1, 33)))
        assert sum(row.helpful for row in await storage.feedback_report()) == 32 * 5
        turns = await storage.recent_turns(32, limit=20)
        assert [t.text for t in turns] == [f"question {n}" for n in range(5)]


@pytest.mark.postgres
async def test_workers_starting_at_once_on_a_new_postgresql_database_migrate_it_once(
    request: pytest.FixtureRequest,
) -> None:
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.create_database("start")
    workers = [Storage(url) for _ in range(4)]
    await asyncio.gather(*(worker.open() for worker in workers))  # one migrates, the others wait
    try:
        assert await workers[0].inbox.add(rows(message(1, 100))) == 1
        assert await workers[3].inbox.counts() == {"pending": 1, "done": 0, "failed": 0}
    finally:
        await asyncio.gather(*(worker.aclose() for worker in workers))


async def test_the_runtime_keeps_each_chats_order_and_gives_up_an_update_that_never_finished(
    tmp_path: Path,
) -> None:
    from telegram import Update
    from telegram.ext import Application, ContextTypes, MessageHandler, filters

    from bot.telegram.inbox import MAX_ATTEMPTS, Inbox

    handled: list[tuple[int, str]] = []
    finished = asyncio.Event()

    async def record(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None and update.effective_message is not None
        text = update.effective_message.text or ""
        await asyncio.sleep(0.001 * (int(text[1:]) % 5))  # chats finish in a different order than they began
        handled.append((update.effective_chat.id, text))
        if len(handled) == 39:
            finished.set()

    async with Storage(f"sqlite+aiosqlite:///{tmp_path / 'run.db'}") as storage, FakeBotAPI(TOKEN) as api:
        # Update 1 was claimed by processes that died each time they handled it.
        await storage.inbox.add(rows(message(1, 100, "m1")))
        for _ in range(MAX_ATTEMPTS):
            await storage.inbox.claim("died", limit=1, lease=LEASE)
            await storage.inbox.release()
        await storage.inbox.add(rows(*(message(n, 100 + n % 3, f"m{n}") for n in range(2, 41))))
        application = Application.builder().token(TOKEN).base_url(api.base_url).updater(None).build()
        application.add_handler(MessageHandler(filters.ALL, record))
        async with application:
            inbox = Inbox(application, storage, concurrency=4, idle=0.05)
            await inbox.start(single_process=True)
            try:
                async with asyncio.timeout(30):
                    await finished.wait()
            finally:
                await inbox.stop()  # lets the updates in hand finish
            assert await storage.inbox.counts() == {"pending": 0, "done": 39, "failed": 1}
    assert len(handled) == 39 and (100, "m1") not in handled
    for chat in (100, 101, 102):
        numbers = [int(text[1:]) for chat_id, text in handled if chat_id == chat]
        assert numbers == sorted(numbers) and numbers == [n for n in range(2, 41) if 100 + n % 3 == chat]


@pytest.mark.postgres
async def test_of_two_workers_one_runs_the_jobs_and_the_other_takes_over_when_it_goes(
    request: pytest.FixtureRequest, settings: Settings
) -> None:
    from telegram.ext import Application, ContextTypes

    from bot.telegram import serving
    from bot.telegram.context import BotData

    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.create_database("leader")
    ran = {"a": asyncio.Event(), "b": asyncio.Event()}

    def worker(name: str, storage: Storage, api: FakeBotAPI) -> Any:
        application = (
            Application.builder()
            .token(TOKEN)
            .base_url(api.base_url)
            .updater(None)
            .context_types(ContextTypes(bot_data=BotData))
            .build()
        )
        application.bot_data.settings, application.bot_data.storage = settings, storage

        async def job(_context: Any) -> None:  # a periodic job, such as the reminders
            ran[name].set()

        assert application.job_queue is not None
        application.job_queue.run_repeating(job, interval=0.05, first=0.0)
        return application

    async with FakeBotAPI(TOKEN) as api, Storage(url) as first, Storage(url) as second:
        async with contextlib.AsyncExitStack() as leader:
            await leader.enter_async_context(serving(worker("a", first, api)))
            async with serving(worker("b", second, api)):
                async with asyncio.timeout(10):
                    await ran["a"].wait()
                await asyncio.sleep(0.5)  # ten runs of the job, all of them in a
                assert not ran["b"].is_set()
                await leader.aclose()  # a stops (or dies: its database connection goes either way)
                async with asyncio.timeout(20):
                    await ran["b"].wait()  # b leads within a few seconds


@pytest.mark.postgres
async def test_a_leader_whose_connection_broke_leads_again_at_once_unless_another_worker_took_over(
    request: pytest.FixtureRequest,
) -> None:
    """The advisory lock goes with its connection (a restarted server, a cut session). The worker
    takes it again in the same check if nobody else has, so polling does not pause for a whole
    ``LEAD_INTERVAL``; if another worker took it meanwhile, this one stops leading."""
    from sqlalchemy import text

    from bot.telegram.intake import Leadership

    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.create_database("leader_again")

    async def cut(storage: Storage, leadership: Leadership) -> None:
        assert leadership._connection is not None
        pid = (await leadership._connection.exec_driver_sql("SELECT pg_backend_pid()")).scalar()
        async with storage.engine.connect() as other:
            assert await other.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    async with Storage(url) as first, Storage(url) as second:
        a, b = Leadership(first), Leadership(second)
        assert await a.acquire()
        assert not await b.acquire()
        await cut(first, a)
        assert await a.acquire()  # taken again at once
        assert not await b.acquire()
        await cut(first, a)
        assert await b.acquire()  # b checked first this time
        assert not await a.acquire()
        await a.release()
        await b.release()


async def test_a_stopped_poller_stops_even_when_storing_turns_the_cancellation_into_an_error() -> None:
    """A database driver interrupted mid-call may raise its own error instead of the cancellation.
    The poller's retry loop must not take that for a database fault and carry on: stop() (the
    worker losing its leadership, or shutting down) would then wait for ever."""
    from bot.telegram.intake import Poller

    class Inbox:
        calls = 0
        storing = asyncio.Event()

        async def store(self, batch: list[dict[str, Any]]) -> int:
            self.calls += 1
            self.storing.set()
            if self.calls > 1:  # a retry after stop() (cancellable, so that a failing test ends)
                await asyncio.sleep(60)
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                raise ConnectionError("connection was closed in the middle of operation") from None
            return len(batch)

    inbox = Inbox()
    async with FakeBotAPI(TOKEN) as api:
        user = api.user(43, "Omar")
        async with Bot(TOKEN, base_url=api.base_url) as bot:
            poller = Poller(bot, inbox, timeout=1)  # type: ignore[arg-type]
            poller.start()
            await user.send("hello")
            async with asyncio.timeout(10):
                await inbox.storing.wait()
            async with asyncio.timeout(5):
                await poller.stop()
            await asyncio.sleep(0.6)  # longer than the first retry's back-off
            assert inbox.calls == 1
