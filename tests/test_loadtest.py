"""The load generator's open loop (``python -m bot loadtest --rate``), against a stand-in Telegram."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from typing import Any

from bot.tools.loadtest import FIRST_USER, Level, _arrivals


class StandIn:
    """Telegram as the load generator sees it: people who send, and a reply 50 ms later."""

    def __init__(self) -> None:
        self.waiting: dict[int, asyncio.Future[float]] = {}
        self.outstanding: dict[int, int] = {}
        self.most_at_once = 0
        self.sent: list[int] = []

    def user(self, chat_id: int, _name: str, language_code: str) -> Any:
        api = self

        class Person:
            async def send(self, text: str) -> None:
                assert text
                api.sent.append(chat_id)
                api.outstanding[chat_id] = api.outstanding.get(chat_id, 0) + 1
                api.most_at_once = max(api.most_at_once, api.outstanding[chat_id])
                future = api.waiting[chat_id]

                def reply() -> None:
                    api.outstanding[chat_id] -= 1
                    future.set_result(time.perf_counter())

                asyncio.get_running_loop().call_later(0.05, reply)

        return Person()


async def test_questions_arrive_at_the_rate_each_from_a_person_not_already_waiting() -> None:
    api = StandIn()
    people = [(FIRST_USER + i, "en") for i in range(5)]
    streams = {chat_id: itertools.cycle(["how do i renew my permit"]) for chat_id, _ in people}
    level = Level(users=5, delay_ms=0, seconds=2.0, rate=40.0)
    until = time.perf_counter() + level.seconds
    await _arrivals(api, people, streams, level, until, grace=5.0, rng=random.Random(7))
    # About 80 arrivals in 2 s; with 5 people and 50 ms replies some find everyone busy.
    assert 50 <= level.sent + level.skipped <= 110
    assert level.sent == len(api.sent) == len(level.latencies) and level.lost == 0
    assert api.most_at_once == 1  # never a second question from someone still waiting
    assert all(0.04 <= latency < 1.0 for latency in level.latencies)
    # Only a question asked in the last 50 ms is answered after the level's time.
    assert level.sent - 2 <= level.answered_in_time <= level.sent
