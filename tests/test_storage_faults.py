"""Fault: the database is briefly away (PostgreSQL restarted under load) or busy; nothing is lost."""

from __future__ import annotations

import asyncio
import inspect
import logging
import sqlite3

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from bot.storage import CaseStore, Storage
from bot.storage._models import Unanswered
from bot.storage._retry import retried, transient

from .pg import PostgresServer

WRITERS = 8
WRITES = 60


def test_what_counts_as_transient() -> None:
    assert transient(OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")))
    assert transient(ConnectionRefusedError(111, "Connect call failed"))
    assert transient(ConnectionResetError(104, "Connection reset by peer"))
    assert not transient(IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")))
    assert not transient(ValueError("language must be a two-letter code"))


async def test_a_transient_error_is_retried_and_a_lasting_one_given_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bot.storage._retry.RETRY_SECONDS", 0.5)
    failures = [ConnectionRefusedError(111, "refused")] * 3
    calls = 0

    @retried
    async def unit() -> str:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop()
        return "done"

    assert await unit() == "done" and calls == 4

    @retried
    async def never() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionRefusedError(111, "refused")

    calls = 0
    with pytest.raises(ConnectionRefusedError):
        await never()
    assert 1 < calls < 10  # tried again, within the bound

    @retried
    async def wrong() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("bad data")

    calls = 0
    with pytest.raises(ValueError):
        await wrong()
    assert calls == 1


@pytest.mark.postgres
async def test_postgresql_restarted_under_load_nothing_is_lost(
    postgres: PostgresServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage = Storage(postgres.create_database("restart"))
    await storage.open()
    caplog.set_level(logging.WARNING, logger="bot.storage._retry")
    written = 0

    async def writer(n: int) -> None:
        nonlocal written
        for i in range(WRITES):
            await storage.add_unanswered("prague", "en", f"question {n} {i}", None, 0.1)
            written += 1
            await asyncio.sleep(0.02)

    try:
        tasks = [asyncio.create_task(writer(n)) for n in range(WRITERS)]
        async with asyncio.timeout(120):
            while written < WRITERS * WRITES // 4:  # noqa: ASYNC110 - bounded; the writers run meanwhile
                await asyncio.sleep(0.05)
            loop = asyncio.get_running_loop()
            stopped_at = loop.time()
            await asyncio.to_thread(postgres.stop)  # fast shutdown: sessions in flight are cut
            await asyncio.sleep(1.0)
            await asyncio.to_thread(postgres.start_again)
            down = loop.time() - stopped_at
            await asyncio.gather(*tasks)  # no writer failed
        async with storage.session() as session:
            rows = await session.scalar(select(func.count()).select_from(Unanswered))
            distinct = await session.scalar(select(func.count(func.distinct(Unanswered.text))))
        assert rows is not None and distinct == WRITERS * WRITES  # nothing lost
        retries = [r for r in caplog.records if "trying again" in r.getMessage()]
        assert retries  # the restart was felt, and ridden out
        print(
            f"\nPostgreSQL restart: {WRITERS * WRITES} writes, server away {down:.1f} s, "
            f"{len(retries)} retries, lost 0, stored twice {rows - distinct}"
        )
    finally:
        await storage.aclose()


def test_every_unit_of_work_of_the_storage_is_retried() -> None:
    for store in (Storage, CaseStore):
        found = vars(store).items()
        methods = [n for n, v in found if not n.startswith("_") and inspect.iscoroutinefunction(v)]
        assert methods and all(hasattr(getattr(store, n), "__wrapped__") for n in methods), store
