"""A bounded retry of a storage unit of work while the database is briefly away or locked.

Every public storage method is one transaction (``async with session.begin()``), so running it again
after a failure that rolled it back is safe. Retried: a PostgreSQL server restarting or refusing
connections, a connection cut in the middle, SQLite's "database is locked" (after its own busy
timeout). Anything else — constraint violations, bad SQL, bad data — fails at once.

One case is not certain: a connection lost while COMMIT was on its way may or may not have committed;
a retry then runs the unit again (at worst a conversation turn is stored twice; conditional updates,
such as claiming a case, find the row already changed and say so).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError

__all__ = ["RETRY_SECONDS", "retried", "transient", "units_of_work"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
C = TypeVar("C", bound=type)

# How long a unit of work keeps trying (a PostgreSQL restart takes a few seconds), and its pauses.
RETRY_SECONDS = 20.0
_FIRST_PAUSE = 0.05
_LONGEST_PAUSE = 2.0

_TRANSIENT_MESSAGES = (
    "database is locked",
    "database is busy",
    "connection refused",
    "connection was closed",
    "connection is closed",
    "connection reset",
    "terminating connection",
    "server closed the connection",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "cannot connect now",
    "connection does not exist",
)


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is briefly unavailable or busy (worth another try)."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        cause: BaseException = exc.orig if isinstance(exc.orig, BaseException) else exc
    else:
        cause = exc
    if isinstance(cause, (ConnectionError, TimeoutError)):
        return True
    if isinstance(cause, OSError) and not isinstance(exc, DBAPIError):
        return True  # asyncpg's connect() raises socket errors as they are
    text = f"{type(cause).__name__} {cause}".lower()
    return any(message in text for message in _TRANSIENT_MESSAGES)


def retried(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Run ``method`` (one unit of work) again while it fails with a transient database error, for up
    to ``RETRY_SECONDS`` with growing pauses; then the last error is raised."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        deadline = time.monotonic() + RETRY_SECONDS
        pause = _FIRST_PAUSE
        attempt = 1
        while True:
            try:
                return await method(*args, **kwargs)
            except Exception as exc:
                if not transient(exc) or time.monotonic() + pause > deadline:
                    raise
                logger.warning(
                    "storage %s: database unavailable (%s, attempt %d), trying again in %.2f s",
                    method.__name__,
                    type(exc).__name__,
                    attempt,
                    pause,
                )
            await asyncio.sleep(pause)
            pause = min(_LONGEST_PAUSE, pause * 2)
            attempt += 1

    return wrapper


def units_of_work(cls: C) -> C:
    """Class decorator: every public coroutine method defined in ``cls`` itself (each one
    transaction) is ``retried``; inherited ones (``Database.open``, ``aclose``) are not."""
    for name, value in list(vars(cls).items()):
        if name.startswith("_") or not inspect.iscoroutinefunction(value):
            continue
        setattr(cls, name, retried(value))
    return cls
