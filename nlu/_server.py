"""Run a Rasa NLU server as a child process on loopback, for the embedded default."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from ._client import NLUClient
from ._exceptions import NLUError, NLUUnavailable
from ._training import RasaProject

__all__ = ["EmbeddedServer", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedServer:
    """A Rasa server started for this process and stopped with it.

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

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

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

    async def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 15 s)."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
            await process.wait()
