"""Run a Rasa NLU server as a child process on loopback, for the embedded default."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from ._client import NLUClient
from ._exceptions import NLUError, NLUUnavailable
from ._training import RasaProject

__all__ = ["EmbeddedServer", "free_port", "port_free"]

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_free(host: str, port: int) -> bool:
    """Whether nothing listens on ``host:port`` (so a server can bind it)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _parent_death_signal() -> Callable[[], None] | None:
    """For ``preexec_fn``: ask Linux to SIGKILL the child when the thread that started it ends (even
    by kill -9). The Rasa server is one process (Sanic with one worker starts no others), so the signal
    covers the whole tree. None where ``prctl`` does not exist."""
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
    parent = os.getpid()

    def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return die_with_parent


class EmbeddedServer:
    """A Rasa server started for this process and stopped with it.

    On Linux the server gets a parent-death signal: it is killed when the bot ends in any way,
    kill -9 included, so no orphan keeps its ~700 MB. (The signal follows the *thread* that started
    it: start it from the event loop's thread, not from a short-lived worker thread.)

    ::

        async with EmbeddedServer(project, model, secret) as server:
            client = NLUClient(server.url, secret)
    """

    def __init__(
        self,
        project: RasaProject,
        model: Path,
        secret: str,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = 180.0,
        log_file: Path | None = None,
    ) -> None:
        self.project = project
        self.model = model
        self.host = host
        self.port = port or free_port(host)
        self._secret = secret
        self._startup_timeout = startup_timeout
        self._log_file = log_file
        self._process: asyncio.subprocess.Process | None = None
        self._checker: NLUClient | None = None  # for health checks

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        """Whether the server process has been started and not ended (answering or not)."""
        return self._process is not None and self._process.returncode is None

    async def wait(self) -> int:
        """Wait until the server process ends; its exit status (negative: killed by that signal)."""
        if self._process is None:
            raise RuntimeError("the server was not started")
        return await self._process.wait()

    async def healthy(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109 - one bounded request
        """Whether the server answers ``/status`` with its model loaded within ``timeout`` seconds.

        One client is kept for these checks (a new one costs ~20 ms of CPU), renewed when the server
        moved to another port."""
        if self._checker is None or self._checker.base_url != self.url:
            if self._checker is not None:
                await self._checker.aclose()
            self._checker = NLUClient(self.url, self._secret, timeout=timeout, probe=timeout)
        try:
            status = await self._checker.status()
        except NLUError:
            return False
        return bool(status.get("model_file"))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the server and wait until it answers ``/status`` with the model loaded."""
        if not self.project.runtime_available():
            raise NLUUnavailable(f"the Rasa runtime is missing ({self.project.venv}); run `make rasa`")
        env = self.project.env()
        env["NLU_JWT_SECRET"] = self._secret
        log = self._log_file.open("ab") if self._log_file else asyncio.subprocess.DEVNULL
        try:
            self._process = await asyncio.create_subprocess_exec(
                str(self.project.python),
                str(self.project.runtime_dir / "serve.py"),
                "--model",
                str(self.model),
                "--host",
                self.host,
                "--port",
                str(self.port),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                preexec_fn=_parent_death_signal(),
            )
        finally:
            if self._log_file and not isinstance(log, int):
                log.close()
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        async with NLUClient(self.url, self._secret, timeout=5.0) as client:
            while True:
                assert self._process is not None
                if self._process.returncode is not None:
                    raise NLUUnavailable(
                        f"the NLU server stopped while starting (exit {self._process.returncode}); "
                        f"see {self._log_file or 'its log'}"
                    )
                with contextlib.suppress(NLUError):
                    status = await client.status()
                    if status.get("model_file"):
                        return
                if time.monotonic() > deadline:
                    await self.stop()
                    raise NLUUnavailable(f"the NLU server was not ready after {self._startup_timeout:.0f} s")
                await asyncio.sleep(0.5)

    async def stop(self, grace: float = 15.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``grace`` seconds)."""
        checker, self._checker = self._checker, None
        if checker is not None:
            await checker.aclose()
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
