"""The connection every part of the storage shares: engine, sessions, clock, and small helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy import Delete, Update, create_engine, event
from sqlalchemy.engine import URL, Connection, CursorResult, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from ..clock import Clock, utcnow
from ._migrate import database_url, migrate, sqlite_file

__all__ = ["Database", "StorageClosedError", "aware", "changed", "changed_now", "language_code"]

T = TypeVar("T")


class StorageClosedError(RuntimeError):
    """The storage was used before ``open()`` or after ``aclose()``."""


def language_code(value: str | None) -> str | None:
    """A two-letter language code (or None); anything else is a programming error."""
    if value is not None and not (len(value) == 2 and value.isascii() and value.isalpha()):
        raise ValueError(f"language must be a two-letter code, not {value!r}")
    return value


def aware(value: datetime, name: str) -> datetime:
    """``value``, which must be timezone-aware (a naive time means different things on each machine)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, not {value.isoformat()}")
    return value


async def changed(session: AsyncSession, stmt: Delete | Update) -> int:
    """Run a bulk DELETE or UPDATE; how many rows it changed."""
    result = await session.execute(stmt, execution_options={"synchronize_session": False})
    assert isinstance(result, CursorResult)
    return result.rowcount


def changed_now(connection: Connection, stmt: Delete | Update, params: dict[str, Any] | None = None) -> int:
    """``changed`` inside a unit of work given to ``Database.run`` (a synchronous connection)."""
    return connection.execute(stmt, params).rowcount


# How long a SQLite connection waits for another one's write to finish before "database is locked":
# SQLite's own bounded retry. Updates are handled concurrently, so writers do meet.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """Foreign keys; WAL, so that readers never wait for the writer; a busy timeout, so that writers
    wait their turn (concurrent handlers do meet) instead of failing with "database is locked"."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


class Database:
    """An async engine on SQLite or PostgreSQL, opened with the schema migrated to the newest revision.

    A relative SQLite path is taken from ``root``. Every time stored is ``clock()``.
    """

    def __init__(self, url: str | URL, *, root: Path | None = None, clock: Clock = utcnow) -> None:
        self.url = database_url(url, root)
        self._clock = clock
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._threaded: Engine | None = None

    @property
    def clock(self) -> Clock:
        """The clock rows are stamped with: the application's one clock."""
        return self._clock

    async def open(self) -> None:
        """Connect and bring the schema up to date (a fresh SQLite file or empty database is fine)."""
        if self._engine is not None:
            return
        sqlite_backend = self.url.get_backend_name() == "sqlite"
        engine = create_async_engine(self.url, pool_pre_ping=not sqlite_backend)
        if sqlite_backend:
            event.listen(engine.sync_engine, "connect", _configure_sqlite)
        try:
            await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        if sqlite_file(self.url) is not None:
            # The busiest units of work (``run``) go to a thread with SQLite's own driver: one
            # hand-off per unit instead of one per statement through aiosqlite (docs/benchmarks.md).
            self._threaded = create_engine(self.url.set(drivername="sqlite"))
            event.listen(self._threaded, "connect", _configure_sqlite)

    async def aclose(self) -> None:
        engine, self._engine, self._sessions = self._engine, None, None
        threaded, self._threaded = self._threaded, None
        if threaded is not None:
            threaded.dispose()
        if engine is not None:
            await engine.dispose()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise StorageClosedError("call Storage.open() first")
        return self._engine

    def session(self) -> AsyncSession:
        """A new session; use it as ``async with db.session() as s, s.begin():`` (one transaction)."""
        if self._sessions is None:
            raise StorageClosedError("call Storage.open() first")
        return self._sessions()

    async def run(self, unit: Callable[[Connection], T]) -> T:
        """``unit(connection)`` as one transaction (SQL statements, no ORM session), for the units of
        work every update runs.

        On a SQLite file, in a worker thread with SQLite's own driver: one hand-off to a thread per
        unit, where aiosqlite makes one per statement, and no ORM session (together about a third of
        the CPU per transaction: docs/benchmarks.md). On PostgreSQL (and an in-memory SQLite), through
        the async connection (``run_sync``): asyncpg needs no thread. A writer waiting for SQLite's
        lock waits in the thread, not in the event loop.
        """
        engine = self.engine
        threaded = self._threaded
        if threaded is None:
            async with engine.begin() as connection:
                return await connection.run_sync(unit)

        def in_thread() -> T:
            with threaded.begin() as connection:
                return unit(connection)

        return await asyncio.to_thread(in_thread)
