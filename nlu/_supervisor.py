"""Keeps an embedded NLU server running: restarted when it dies or stops answering, with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ._exceptions import NLUUnavailable
from ._server import free_port, port_free

__all__ = ["Supervisor", "cpu_seconds"]

logger = logging.getLogger(__name__)


class Supervised(Protocol):
    """What the supervisor needs of a server (``EmbeddedServer`` has it)."""

    host: str
    port: int

    @property
    def url(self) -> str: ...

    @property
    def pid(self) -> int | None: ...

    @property
    def running(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self, grace: float = 15.0) -> None: ...

    async def wait(self) -> int: ...

    async def healthy(self, timeout: float = 5.0) -> bool: ...  # noqa: ASYNC109


# A server whose health check timed out is only busy, not hung, when it used at least this share of
# one core meanwhile (Rasa answers requests one after another: /status waits behind the queue).
BUSY_SHARE = 0.2


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time a process has used so far (Linux); 0 when it is unknown or gone."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Supervisor:
    """Starts a server and restarts it whenever its process ends or it fails ``failures`` health
    checks in a row (one every ``interval`` seconds, each bounded by ``timeout``). A check missed while
    the server was using CPU does not count: it is busy with a queue of questions, not hung.

    Restarts keep the server's URL, so clients find it again by themselves; only when another program
    took the port meanwhile does the server move to a new one, and ``on_moved(old_url, new_url)`` is
    called. Consecutive failed starts wait ``backoff`` seconds, doubling up to ``max_backoff``; the
    count starts again once a server has stayed up for ``stable`` seconds. ``on_started`` is called
    after every successful restart. While the server is away, callers get ``NLUUnavailable`` at once
    (connection refused) and answer in degraded mode.
    """

    def __init__(
        self,
        server: Supervised,
        *,
        interval: float = 5.0,
        timeout: float = 5.0,
        failures: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        stable: float = 300.0,
        on_started: Callable[[], None] | None = None,
        on_moved: Callable[[str, str], None] | None = None,
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        self.server = server
        self.interval = interval
        self.timeout = timeout
        self.failures = failures
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stable = stable
        self.on_started = on_started
        self.on_moved = on_moved
        self.restarts = 0  # how many times the server was started again
        self.last_outage: float | None = None  # seconds from noticing the fault to answering again
        self._task: asyncio.Task[None] | None = None
        self._attempts = 0  # restarts since the server last stayed up for `stable` seconds
        self._up_since = 0.0

    @property
    def watching(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the server (waiting until it is ready), then watch it in the background."""
        await self.server.start()
        self._up_since = time.monotonic()
        self._task = asyncio.create_task(self._watch(), name="nlu-supervisor")

    async def stop(self) -> None:
        """Stop watching, then stop the server."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.server.stop()

    async def _watch(self) -> None:
        failed = 0
        ended: asyncio.Task[int] | None = None
        try:
            while True:
                if not self.server.running:
                    await self._restart("its process ended")
                    failed, ended = 0, None
                if ended is None or ended.done():
                    ended = asyncio.create_task(self.server.wait())
                # Wake up at once when the process ends, else after `interval` for a health check.
                await asyncio.wait({ended}, timeout=self.interval)
                if ended.done():
                    logger.warning("NLU server ended (status %s)", ended.result())
                    continue
                checked, worked = time.monotonic(), cpu_seconds(self.server.pid)
                if await self.server.healthy(self.timeout):
                    failed = 0
                    if time.monotonic() - self._up_since >= self.stable:
                        self._attempts = 0
                    continue
                used = cpu_seconds(self.server.pid) - worked
                if used >= BUSY_SHARE * (time.monotonic() - checked):
                    # Working through a queue of questions, not hung (a stopped or deadlocked process
                    # uses no CPU): callers are answered in degraded mode meanwhile; no restart.
                    logger.warning("NLU server busy: its health check waits behind other requests")
                    failed = 0
                    continue
                failed += 1
                logger.warning("NLU server did not answer its health check (%d of %d)", failed, self.failures)
                if failed >= self.failures:
                    ended.cancel()
                    await self._restart("it stopped answering")
                    failed, ended = 0, None
        finally:
            if ended is not None:
                ended.cancel()

    async def _restart(self, reason: str) -> None:
        """Stop what is left of the server and start it again until it is ready, with backoff."""
        noticed = time.monotonic()
        await self.server.stop(grace=2.0)
        while True:
            delay = min(self.max_backoff, self.backoff * 2**self._attempts) if self._attempts else 0.0
            self._attempts += 1
            logger.warning("NLU server restart: %s; starting it again in %.1f s", reason, delay)
            await asyncio.sleep(delay)
            if not port_free(self.server.host, self.server.port):
                old = self.server.url
                self.server.port = free_port(self.server.host)
                logger.warning("NLU server port taken by another program; moving to %d", self.server.port)
                if self.on_moved is not None:
                    self.on_moved(old, self.server.url)
            started = time.monotonic()
            try:
                await self.server.start()
            except (NLUUnavailable, OSError) as exc:
                await self.server.stop(grace=2.0)
                reason = f"the start failed ({type(exc).__name__})"
                continue
            self.restarts += 1
            self._up_since = time.monotonic()
            self.last_outage = self._up_since - noticed
            logger.warning(
                "NLU server answering again (loaded in %.0f s, %.0f s after the fault was noticed)",
                self._up_since - started,
                self.last_outage,
            )
            if self.on_started is not None:
                self.on_started()
            return
