"""The real bot process (``python -m bot run``) against a FakeBotAPI hosted in the test process.

For fault tests that need a real process: kill -9 and restart, several workers on one database,
load from outside. The child gets the fake's base URL (``TELEGRAM_API_BASE_URL``), a token, a
database (``DATABASE_URL``) and a copy of config.yml with your changes. The NLU model is the test
session's Rasa server: pass ``nlu_url=services.server.url`` (the child gets ``NLU_URL`` and the local
JWT secret), or leave it out and the child finds the server through ``var/nlu-server.json`` (written
by the ``services`` fixture in tests/conftest.py). Either way no second Rasa is started. Usage::

    async with FakeBotAPI(TOKEN) as api:
        db = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        bot = BotProcess(api, tmp_path, database_url=db, nlu_url=services.server.url)
        async with bot:                      # started, and ready (its "is running" line was seen)
            await api.user(1001, "Ana").send("/start")
            await api.wait_for("sendMessage")
            await bot.kill()                 # SIGKILL, no clean-up in the child
            await bot.start()                # the same command again, on the same database

- ``config``: a mapping merged (one level deep per section) into config.yml, e.g.
  ``{"handoff": {"groups": {...}}}``; ``env``: extra environment variables (e.g. ``NLU_URL``).
- ``bot.log`` is the child's stderr (appended across restarts); ``bot.pid`` and ``bot.returncode``.
- Every wait is bounded; the child dies with the test process (``PR_SET_PDEATHSIG``), and
  ``stop()``/``kill()``/leaving the ``async with`` never leave it running.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import yaml

from bot.runtime import local_secret
from bot.settings import ROOT, load_settings

if TYPE_CHECKING:
    from .server import FakeBotAPI

__all__ = ["READY_LINE", "BotProcess"]

# What the bot prints on stderr once it takes updates (bot/telegram/app.py).
READY_LINE = "The bot is running"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


class BotProcess:
    """``python -m bot run`` as a child process; ``start()``, ``kill()``, ``stop()``; restartable."""

    def __init__(
        self,
        api: FakeBotAPI,
        directory: Path,
        *,
        database_url: str,
        config: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        nlu_url: str | None = None,
        name: str = "bot",
    ) -> None:
        self.api = api
        self.directory = directory
        self.database_url = database_url
        self.name = name
        self.log = directory / f"{name}.log"
        self.config_file = directory / f"{name}-config.yml"
        shipped = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
        # Relative paths (content, nlu, var/ with the NLU server's state file) stay the project's.
        self.config = _merge({**shipped, "root": str(ROOT)}, config or {})
        self.extra_env = dict(env or {})
        if nlu_url is not None:
            secret = local_secret(load_settings(ROOT / "config.yml", environ={}))
            self.extra_env = {"NLU_URL": nlu_url, "NLU_JWT_SECRET": secret, **self.extra_env}
        self._process: asyncio.subprocess.Process | None = None
        self._starts = 0

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        """None while running (or never started)."""
        return None if self._process is None else self._process.returncode

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def environment(self) -> dict[str, str]:
        drop = {
            "NLU_URL",
            "NLU_JWT_SECRET",
            "TELEGRAM_BOT_TOKEN",
            "DATABASE_URL",
            "TELEGRAM_MODE",
            "INTEGRA_CONFIG",
        }
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update(
            TELEGRAM_BOT_TOKEN=self.api.token,
            TELEGRAM_API_BASE_URL=self.api.base_url,
            DATABASE_URL=self.database_url,
            INTEGRA_CONFIG=str(self.config_file),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def start(self, timeout: float = 120.0) -> None:  # noqa: ASYNC109 - a bounded wait is the point
        """Start the process and wait (at most ``timeout`` s) until it prints that it is running."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.config_file.write_text(yaml.safe_dump(self.config, allow_unicode=True), encoding="utf-8")
        self._starts += 1
        with self.log.open("a", encoding="utf-8") as log:
            log.write(f"--- start {self._starts}\n")
        offset = self.log.stat().st_size
        with self.log.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                cwd=ROOT,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        try:
            async with asyncio.timeout(timeout):
                while True:
                    with self.log.open("rb") as log:
                        log.seek(offset)
                        if READY_LINE.encode() in log.read():
                            return
                    if self._process.returncode is not None:
                        raise RuntimeError(
                            f"{self.name} exited ({self._process.returncode}) before it was running:\n"
                            + self.log_text()[-3000:]
                        )
                    await asyncio.sleep(0.1)
        except TimeoutError:
            await self.kill()
            raise RuntimeError(
                f"{self.name} was not running within {timeout}s:\n" + self.log_text()[-3000:]
            ) from None

    async def kill(self) -> None:
        """SIGKILL (kill -9): no clean-up in the child. Returns once it is gone."""
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGKILL)
            async with asyncio.timeout(30):
                await self._process.wait()

    async def stop(self, timeout: float = 30.0) -> int | None:  # noqa: ASYNC109 - bounded
        """SIGTERM, wait up to ``timeout`` s for a clean exit, then SIGKILL; the exit code."""
        process = self._process
        if process is None:
            return None
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(timeout):
                    await process.wait()
            except TimeoutError:
                await self.kill()
        return process.returncode

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
