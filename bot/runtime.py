"""Builds the application's long-lived services once and closes them on exit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from nlu import EmbeddedServer, NLUClient, NLUError, RasaProject, Supervisor

from .engine import Engine
from .i18n import Catalogues
from .knowledge import NOT_EMERGENCY_KEY, KnowledgeBase, load_knowledge_base
from .language import LanguageDetector
from .settings import Settings

__all__ = ["Services", "load_content", "rasa_project", "reusable_server", "var_dir"]

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def var_dir(settings: Settings) -> Path:
    """Where the application keeps its state (database, NLU secret, logs); not in git."""
    path = settings.root / "var"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def rasa_project(settings: Settings) -> RasaProject:
    return RasaProject(settings.path(settings.nlu.project_dir), settings.path(settings.nlu.rasa_venv))


def load_content(settings: Settings) -> KnowledgeBase:
    kb = load_knowledge_base(settings.path(settings.content_dir), settings.cities, settings.languages)
    for problem in kb.errors:
        logger.warning("content problem: %s", problem)
    return kb


def training_examples(kb: KnowledgeBase, detector_negatives: bool = True) -> list[tuple[str, str, str]]:
    """(key, text, language) for every example question, emergency situations included, and (unless
    ``detector_negatives`` is false) the not-emergencies under ``NOT_EMERGENCY_KEY``."""
    examples = [(key, text, lang) for lang in kb.texts for key, text in kb.examples(lang)]
    if detector_negatives:
        languages = [*kb.texts, *(lang for lang in kb.safety.not_emergencies if lang not in kb.texts)]
        examples += [(key, text, lang) for lang in languages for key, text in kb.detector_negatives(lang)]
    return examples


def training_keys(kb: KnowledgeBase, detector_negatives: bool = True) -> list[str]:
    """The labels of ``training_examples``: every key, and ``NOT_EMERGENCY_KEY`` with the negatives."""
    return [*kb.taxonomy.all_keys, *([NOT_EMERGENCY_KEY] if detector_negatives else [])]


def ensure_model(settings: Settings, kb: KnowledgeBase, progress: Progress = _stderr) -> Path:
    """Generate training data and train the NLU model if the content or pipeline changed."""
    return rasa_project(settings).ensure_model(training_keys(kb), training_examples(kb), progress)


def local_secret(settings: Settings) -> str:
    """The JWT secret for a locally run NLU server: configured, or generated once and kept private."""
    if settings.nlu.jwt_secret is not None:
        return settings.nlu.jwt_secret.get_secret_value()
    path = var_dir(settings) / "nlu.secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _state_file(settings: Settings) -> Path:
    return var_dir(settings) / "nlu-server.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _serves_model(pid: int, model: Path) -> bool:
    """Whether process ``pid`` is alive and (where /proc tells) a Rasa server of this model file."""
    if not _pid_alive(pid):
        return False
    if not Path("/proc/self").is_dir():
        return True  # no /proc here: the other checks must do
    try:
        command = [
            Path(os.fsdecode(part)).name for part in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        ]
    except OSError:
        return False
    return "serve.py" in command and model.name in command


async def reusable_server(state: Path, model: Path, secret: str, timeout: float) -> NLUClient | None:  # noqa: ASYNC109
    """A client for the local server that ``state`` announces, if it is safe to share.

    Reused only when all hold: the state file names this model; its process is alive and a Rasa
    server of this model file; it listens on loopback; it accepts our secret and says (``/status``)
    that this model is loaded. Anything else is not ours, or stale: the caller starts its own server.
    """
    try:
        info = json.loads(await asyncio.to_thread(state.read_text))
        url, pid, name = str(info["url"]), int(info["pid"]), str(info["model"])
        host = httpx.URL(url).host
    except (OSError, ValueError, KeyError, TypeError, httpx.InvalidURL):
        return None
    loopback = host in {"127.0.0.1", "localhost", "::1"}
    if name != model.name or not loopback or not _serves_model(pid, model):
        return None
    client = NLUClient(url, secret, timeout=timeout)
    try:
        status = await client.status()
    except NLUError:
        status = {}
    if Path(str(status.get("model_file") or "")).name != model.name:
        await client.aclose()
        return None
    return client


class Services:
    """Settings, knowledge base, language detector, catalogues, NLU client and engine.

    ::

        async with Services(settings) as services:
            reply = await services.engine.ask("...", city="prague")
    """

    def __init__(
        self, settings: Settings, progress: Progress = _stderr, *, reuse_running: bool = True
    ) -> None:
        self.settings = settings
        self.reuse_running = reuse_running
        self.progress = progress
        self.kb = load_content(settings)
        self.catalogues = Catalogues(settings.languages)
        lang = settings.language
        self.detector = LanguageDetector(
            settings.languages,
            default=settings.default_language,
            min_letters_to_switch=lang.min_letters_to_switch,
            switch_ratio=lang.switch_ratio,
        )
        self.server: EmbeddedServer | None = None
        self.supervisor: Supervisor | None = None
        self._serving = False
        self._stack = AsyncExitStack()
        self._nlu: NLUClient | None = None
        self._engine: Engine | None = None

    @property
    def nlu(self) -> NLUClient:
        if self._nlu is None:
            raise RuntimeError("services are not open")
        return self._nlu

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("services are not open")
        return self._engine

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Connect to the NLU server: the configured one, a running local one, or a new embedded one."""
        nlu = self.settings.nlu
        if nlu.url:
            secret = nlu.jwt_secret.get_secret_value() if nlu.jwt_secret else None
            self._nlu = await self._stack.enter_async_context(NLUClient(nlu.url, secret, timeout=nlu.timeout))
        else:
            self._nlu = await self._open_local()
        self._engine = Engine(self.settings, self.kb, self._nlu, self.detector, self.catalogues)
        # The index by words for when the model is away (~2 s, ~18 MiB), built now: not while someone
        # waits for a reply.
        await asyncio.to_thread(lambda: self.engine.lexical)

    async def _open_local(self) -> NLUClient:
        nlu = self.settings.nlu
        secret = local_secret(self.settings)
        model = await asyncio.to_thread(ensure_model, self.settings, self.kb, self.progress)
        running = await self._running_local_server(model, secret) if self.reuse_running else None
        if running is not None:
            return running
        self.progress("Starting the NLU server…")
        self.server = EmbeddedServer(
            rasa_project(self.settings),
            model,
            secret,
            startup_timeout=nlu.startup_timeout,
            log_file=var_dir(self.settings) / "nlu-server.log",
        )
        client = NLUClient(self.server.url, secret, timeout=nlu.timeout)
        self._stack.push_async_callback(client.aclose)
        # Restarted when it dies or stops answering (people get degraded replies meanwhile); killed
        # with this process, even by kill -9, by its parent-death signal.
        server = self.server

        def restarted() -> None:
            client.revive(server.url)
            self._announce()

        self.supervisor = Supervisor(server, on_started=restarted, on_moved=client.replace_server)
        await self.supervisor.start()
        self._stack.push_async_callback(self.supervisor.stop)
        return client

    async def _running_local_server(self, model: Path, secret: str) -> NLUClient | None:
        """A client for a server started by `python -m bot nlu serve` with the current model."""
        client = await reusable_server(_state_file(self.settings), model, secret, self.settings.nlu.timeout)
        return None if client is None else await self._stack.enter_async_context(client)

    def _write_state(self) -> None:
        assert self.server is not None
        state = {"url": self.server.url, "pid": self.server.pid, "model": self.server.model.name}
        _state_file(self.settings).write_text(json.dumps(state))

    def _announce(self) -> None:
        """After a restart: tell other local commands where the served model is now."""
        if self._serving:
            self._write_state()

    async def serve_forever(self) -> None:
        """Run the embedded server until interrupted, announcing it to other local commands."""
        if self.server is None:
            raise RuntimeError("no embedded server: NLU_URL points to an external one")
        self._serving = True
        self._write_state()
        try:
            await asyncio.Event().wait()
        finally:
            self._serving = False
            _state_file(self.settings).unlink(missing_ok=True)

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self._stack.aclose()
