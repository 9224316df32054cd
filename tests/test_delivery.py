"""The delivery layer (bot/telegram/delivery.py) under Telegram's faults, through PTB's real HTTP path
and the local Bot API server's injected faults: flood limits, a person who blocked the bot, network
errors and 5xx, and captions a label would make too long.

The end-to-end scenarios with the whole bot (a 429 storm, a blocked person's case, the staff check)
are in test_delivery_bot.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

import pytest
from telegram import Message, Update
from telegram.error import Forbidden
from telegram.ext import ApplicationHandlerStop, ExtBot

from bot.storage import Storage
from bot.telegram.delivery import (
    MAX_CAPTION,
    SKIPPED,
    Delivery,
    Failure,
    RateLimiter,
    Undelivered,
    chat_member_changed,
)

from .botapi import DROP, FakeBotAPI
from .botapi.server import Call

if TYPE_CHECKING:
    from bot.telegram.context import BotContext

TOKEN = "123456:delivery-test-token"
ANA, BEN = 2001, 2002
STAFF = -1002000000001


class Layer:
    """A bot with the application's rate limiter and delivery layer, on the fake Bot API."""

    def __init__(self, api: FakeBotAPI, bot: ExtBot[int], delivery: Delivery, storage: Storage) -> None:
        self.api, self.bot, self.delivery, self.storage = api, bot, delivery, storage
        self.closed: list[int] = []  # chats whose case on_blocked was asked to close

    def calls_to(self, chat_id: int, since: int = 0) -> list[Call]:
        return [c for c in self.api.calls[since:] if c.params.get("chat_id") in {chat_id, str(chat_id)}]


@pytest.fixture
async def layer(tmp_path: Path) -> AsyncIterator[Layer]:
    async with (
        FakeBotAPI(TOKEN) as api,
        Storage(f"sqlite+aiosqlite:///{tmp_path / 'delivery.db'}") as storage,
    ):
        limiter = RateLimiter()
        bot: ExtBot[int] = ExtBot(
            TOKEN, base_url=api.base_url, base_file_url=api.base_file_url, rate_limiter=limiter
        )
        delivery = limiter.delivery = Delivery(bot, backoff=0.05)
        async with bot:
            await delivery.open(storage)
            made = Layer(api, bot, delivery, storage)

            async def closed(chat_id: int) -> None:
                made.closed.append(chat_id)

            delivery.on_blocked = closed
            api.user(ANA, "Ana")
            api.user(BEN, "Ben")
            api.forum(STAFF, "Staff")
            await storage.save_person(ANA, language="uk")
            await storage.save_person(BEN, language="hr")
            yield made
            await delivery.aclose()


async def test_a_person_who_blocked_the_bot_is_marked_once_and_never_called_again(layer: Layer) -> None:
    api, delivery = layer.api, layer.delivery
    api.faults.add(403, chat=ANA)
    with pytest.raises(Undelivered) as first:
        await delivery.send(ANA, "hello")
    assert first.value.failure is Failure.BLOCKED
    assert [c.error for c in layer.calls_to(ANA)] == ["Forbidden: bot was blocked by the user"]
    assert await layer.storage.is_blocked(ANA) and layer.closed == [ANA]
    # Later sends, however they are made, are skipped without a call; others are not affected.
    mark = len(api.calls)
    with pytest.raises(Undelivered) as later:
        await delivery.send(ANA, "are you there?")
    assert later.value.failure is Failure.BLOCKED
    with pytest.raises(Forbidden, match=r"known, not sent"):
        await layer.bot.send_message(ANA, "directly")
    delivery.typing(ANA)
    await delivery.aclose()
    assert layer.calls_to(ANA, mark) == [] and SKIPPED.startswith("Forbidden")
    assert (await delivery.send(BEN, "hello Ben")).text == "hello Ben"
    assert layer.closed == [ANA]  # the case is closed once
    # Unblocked (Telegram's my_chat_member update, or seen by another worker): sent to again.
    await layer.storage.set_blocked(ANA, False)
    api.faults.clear()
    assert (await delivery.send(ANA, "welcome back")).text == "welcome back"


async def test_a_new_process_knows_who_blocked_the_bot_from_storage(layer: Layer) -> None:
    await layer.storage.set_blocked(BEN, True)
    fresh = Delivery(layer.bot)
    await fresh.open(layer.storage)
    assert fresh.blocked == {BEN}


async def test_network_errors_and_5xx_are_retried_a_bounded_number_of_times(layer: Layer) -> None:
    api, delivery = layer.api, layer.delivery
    api.faults.add(DROP, methods={"sendMessage"}, times=1)
    api.faults.add(502, methods={"sendMessage"}, times=1)
    assert (await delivery.send(BEN, "through")).text == "through"
    assert [c.error for c in layer.calls_to(BEN)] == ["connection dropped", "Bad Gateway", None]
    # Telegram down for longer: the layer gives up after its attempts and says why.
    api.faults.add(500, methods={"sendMessage"})
    mark = len(api.calls)
    with pytest.raises(Undelivered) as failed:
        await delivery.send(BEN, "lost?")
    assert failed.value.failure is Failure.UNREACHABLE
    assert len(layer.calls_to(BEN, mark)) == delivery.attempts
    # A refused message is not retried.
    api.faults.clear()
    mark = len(api.calls)
    with pytest.raises(Undelivered) as refused:
        await delivery.send(BEN, "<b>broken", html=True)
    assert refused.value.failure is Failure.REFUSED and len(layer.calls_to(BEN, mark)) == 1


def quiet_after_each_429(calls: list[Call], retry_after: float) -> bool:
    """``calls`` (to one chat) honoured each 429's ``retry_after``, by the server's own log: the next
    call of the same method came ``retry_after`` later or more, and no other call landed from half a
    second after the 429 until then (calls already under way beside it — "typing…" goes in the
    background next to the answer — land within that half second)."""
    for i, flood in enumerate(calls):
        if not (flood.error and flood.error.startswith("Too Many Requests")):
            continue
        same = next((c for c in calls[i + 1 :] if c.method == flood.method), None)
        if same is not None and same.time - flood.time < retry_after:
            return False
        if any(flood.time + 0.5 < c.time < flood.time + retry_after for c in calls):
            return False
    return True


async def test_typing_is_shown_only_when_the_answer_is_slow_in_coming(layer: Layer) -> None:
    api, delivery = layer.api, layer.delivery
    quick = delivery.typing(ANA, after=0.3)
    await asyncio.sleep(0.05)  # the answer was ready at once
    quick.cancel()
    slow = delivery.typing(BEN, after=0.3)
    await api.wait_for("sendChatAction")  # the answer is still being worked out: "typing…" goes
    slow.cancel()  # too late to stop, and harmless
    await delivery.aclose()
    assert [c.method for c in layer.calls_to(ANA)] == []
    assert [c.method for c in layer.calls_to(BEN)] == ["sendChatAction"]


async def test_a_retry_after_is_waited_out_before_the_next_call_to_that_chat(layer: Layer) -> None:
    api, delivery = layer.api, layer.delivery
    api.faults.add(429, retry_after=1, chat=BEN, times=1)
    delivery.typing(BEN)  # a 429 on "typing…" never reaches the caller
    await api.wait_for("sendChatAction")
    api.faults.add(429, retry_after=1, chat=BEN, times=2)
    sent = await delivery.send(BEN, "after the wait")
    assert sent.text == "after the wait"
    calls = layer.calls_to(BEN)
    assert [c.ok for c in calls].count(False) == 3 and calls[-1].ok and len(calls) >= 4
    assert quiet_after_each_429(calls, 1.0)
    # The limiter gave up (more 429s than its retries): the next call to the chat still waits.
    api.faults.add(429, retry_after=1, chat=BEN)
    with pytest.raises(Undelivered) as flooded:
        await delivery.send(BEN, "still flooded")
    assert flooded.value.failure is Failure.UNREACHABLE
    api.faults.clear()
    apology = await delivery.send(BEN, "sorry")  # e.g. the error handler's, right after
    assert apology.text == "sorry" and quiet_after_each_429(layer.calls_to(BEN), 1.0)


async def test_long_text_is_split_and_a_label_too_long_for_a_caption_goes_apart(layer: Layer) -> None:
    api, delivery = layer.api, layer.delivery
    long = ("word " * 1000).strip()  # 4,999 characters
    last = await delivery.send(BEN, long, markup=None)
    texts = [m["text"] for m in api.messages_to(BEN)]
    assert len(texts) == 2 and " ".join(texts) == long and last.text == texts[-1]
    photo = Message.de_json(
        (await api.user(BEN, "Ben").send_photo("x" * (MAX_CAPTION - 5)))["message"], layer.bot
    )
    assert photo is not None
    mark = len(api.calls)
    await delivery.copy(ANA, photo, label="🙋 Caseworker:")
    arrived = api.messages_to(ANA)
    assert [m.get("text") for m in arrived] == ["🙋 Caseworker:", None]
    assert arrived[1]["caption"] == "x" * (MAX_CAPTION - 5) and "photo" in arrived[1]
    assert all(c.ok for c in api.calls[mark:])
    short = Message.de_json((await api.user(BEN, "Ben").send_photo("a form"))["message"], layer.bot)
    assert short is not None
    await delivery.copy(ANA, short, label="🙋 Caseworker:")
    assert api.messages_to(ANA)[-1]["caption"] == "🙋 Caseworker:\na form"


async def test_twenty_replies_through_a_five_second_storm_and_one_blocked_chat(layer: Layer) -> None:
    """The figures in docs/reliability.md ("Delivery faults"); ``-s`` prints them."""
    api, delivery = layer.api, layer.delivery
    people = list(range(5001, 5021))
    for chat_id in people:
        api.user(chat_id, f"P{chat_id}")
        await layer.storage.save_person(chat_id, language="en")
    begun = time.time()
    api.faults.add(429, retry_after=2, seconds=5)

    typing: list[asyncio.Task[None]] = []

    async def reply(chat_id: int) -> float:
        handle = delivery.typing(chat_id)
        assert handle.task is not None
        typing.append(handle.task)
        await delivery.send(chat_id, "answer")
        return time.time() - begun

    arrived = await asyncio.gather(*(reply(chat_id) for chat_id in people))
    # "typing…" runs in the background and may trail its answer through the storm: let it land
    # before the blocked chat is counted.
    await asyncio.gather(*typing)
    floods = [c for c in api.calls if c.error and c.error.startswith("Too Many Requests")]
    assert len(arrived) == 20 and all(quiet_after_each_429(layer.calls_to(p), 2.0) for p in people)
    assert {"sendChatAction", "sendMessage"} <= {c.method for c in floods}
    print(
        f"\nstorm: 20 of 20 replies, the last {max(arrived):.1f} s after the 5 s storm began; "
        f"{len(floods)} answers of 429 ({sum(c.method == 'sendChatAction' for c in floods)} to 'typing…')"
    )
    api.faults.clear()
    api.faults.add(403, chat=people[0])
    mark = len(api.calls)

    async def news(chat_id: int) -> float | Failure:
        start = time.time()
        try:
            await delivery.send(chat_id, "news")
        except Undelivered as exc:
            return exc.failure
        return time.time() - start

    rounds = [await asyncio.gather(*(news(chat_id) for chat_id in people)) for _ in range(2)]
    assert [r[0] for r in rounds] == [Failure.BLOCKED, Failure.BLOCKED]
    assert len(layer.calls_to(people[0], mark)) == 1
    others = sorted(t for r in rounds for t in r[1:] if isinstance(t, float))
    assert len(others) == 38
    print(
        f"blocked: 1 call to the blocked chat in 2 rounds; the 19 others: 38 of 38, "
        f"median {others[19] * 1000:.0f} ms, max {others[-1] * 1000:.0f} ms"
    )


async def test_telegrams_my_chat_member_update_marks_a_block_and_an_unblock(layer: Layer) -> None:
    def change(status: str) -> Update:
        account = {"id": ANA, "is_bot": False, "first_name": "Ana"}
        bot = {"id": 123456, "is_bot": True, "first_name": "Bot"}
        body = {
            "update_id": 1,
            "my_chat_member": {
                "chat": {"id": ANA, "type": "private", "first_name": "Ana"},
                "from": account,
                "date": 0,
                "old_chat_member": {"status": "member", "user": bot},
                "new_chat_member": {"status": status, "user": bot, "until_date": 0},
            },
        }
        update = Update.de_json(body, layer.bot)
        assert update is not None
        return update

    context = cast("BotContext", SimpleNamespace(delivery=layer.delivery))
    with pytest.raises(ApplicationHandlerStop):
        await chat_member_changed(change("kicked"), context)
    assert await layer.storage.is_blocked(ANA) and layer.closed == [ANA]
    with pytest.raises(ApplicationHandlerStop):
        await chat_member_changed(change("member"), context)
    assert not await layer.storage.is_blocked(ANA)
    assert (await layer.delivery.send(ANA, "welcome back")).text == "welcome back"
