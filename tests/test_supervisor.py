"""The embedded NLU server's supervision, with real processes (a stand-in server that loads at once).

Killed (kill -9) or hung (SIGSTOP) servers are restarted on the same URL; failed starts back off,
bounded; the server dies with the process that started it, even by kill -9; a running server is
reused only when it is ours and serves this model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.runtime import reusable_server
from bot.settings import ROOT
from nlu import EmbeddedServer, NLUClient, RasaProject, Supervisor

SECRET = "supervisor-test-secret-0123456789"
FAKE_SERVER = Path(__file__).with_name("fake_rasa.py")


def fake_project(root: Path, script: Path = FAKE_SERVER) -> RasaProject:
    """A Rasa project whose runtime is the stand-in server, run by this Python."""
    venv, project = root / "venv", root / "project"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "bin" / "rasa").touch()
    (project / "runtime").mkdir(parents=True)
    shutil.copy(script, project / "runtime" / "serve.py")
    return RasaProject(project, venv)


def gone(pid: int) -> bool:
    """The process has ended (a zombie waiting for its reaper counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}


async def until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - conditions on other processes, polled, bounded
            await asyncio.sleep(0.05)


@pytest.fixture
def project(tmp_path: Path) -> RasaProject:
    return fake_project(tmp_path / "good")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return tmp_path / "nlu-0123456789abcdef.tar.gz"


@pytest.fixture
async def supervised(project: RasaProject, model: Path) -> AsyncIterator[Supervisor]:
    server = EmbeddedServer(project, model, SECRET, startup_timeout=30)
    supervisor = Supervisor(server, interval=0.2, timeout=1.0, failures=2, backoff=0.05, max_backoff=0.2)
    await supervisor.start()
    try:
        yield supervisor
    finally:
        pid = server.pid
        await supervisor.stop()
        assert pid is not None and gone(pid)


async def test_a_killed_server_is_restarted_on_the_same_url(supervised: Supervisor, model: Path) -> None:
    server = supervised.server
    assert isinstance(server, EmbeddedServer) and server.pid is not None
    first, url = server.pid, server.url
    async with NLUClient(url, SECRET, timeout=2.0) as client:
        assert (await client.status())["model_file"] == str(model)
        os.kill(first, signal.SIGKILL)
        await until(lambda: supervised.restarts == 1)
        assert server.pid != first and server.url == url and gone(first)
        # The same client, untouched, is answered again.
        assert (await client.classify("hello")).key == "greet"


async def test_a_hung_server_is_killed_and_restarted(supervised: Supervisor) -> None:
    server = supervised.server
    assert isinstance(server, EmbeddedServer) and server.pid is not None
    first = server.pid
    os.kill(first, signal.SIGSTOP)  # alive, listening, answering nothing
    await until(lambda: supervised.restarts == 1)
    assert server.pid != first and gone(first)
    assert await server.healthy()


async def test_a_busy_server_is_not_restarted(supervised: Supervisor, model: Path) -> None:
    """Its health checks wait behind a long request (as Rasa's do behind a queue of questions), but it
    is using CPU: not hung, so it keeps running and answers again when the work is done."""
    server = supervised.server
    assert isinstance(server, EmbeddedServer) and server.pid is not None
    first = server.pid
    async with NLUClient(server.url, SECRET, timeout=10.0) as client:
        # 3 s of work: ten health checks' time (0.2 s apart, 1 s each, 2 failures would restart it).
        assert (await client.classify("spin:3")).key == "greet"
        assert supervised.restarts == 0 and server.pid == first
        assert (await client.status())["model_file"] == str(model)


async def test_failed_starts_back_off_bounded_then_recover(
    supervised: Supervisor, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = supervised.server
    assert isinstance(server, EmbeddedServer) and server.pid is not None
    good = server.project
    broken = tmp_path / "broken.py"
    broken.write_text("raise SystemExit(3)\n")
    server.project = fake_project(tmp_path / "broken", broken)
    caplog.set_level(logging.WARNING, logger="nlu._supervisor")
    os.kill(server.pid, signal.SIGKILL)
    waits = lambda: [r.getMessage() for r in caplog.records if "starting it again in" in r.getMessage()]  # noqa: E731
    await until(lambda: len(waits()) >= 5)
    server.project = good
    await until(lambda: supervised.restarts == 1)
    delays = [message.rsplit(" in ", 1)[1] for message in waits()[:5]]
    # backoff 0.05 s doubling up to 0.2 s: at once, then 0.1, 0.2, 0.2, 0.2
    assert delays == ["0.0 s", "0.1 s", "0.2 s", "0.2 s", "0.2 s"]
    assert [r for r in caplog.records if "the start failed (NLUUnavailable)" in r.getMessage()]
    assert await server.healthy()


async def test_backoff_doubles_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    class NeverStarts:
        host, port = "127.0.0.1", 0
        url = "http://127.0.0.1:0"
        pid = None
        running = False

        async def start(self) -> None:
            raise OSError("cannot start")

        async def stop(self, grace: float = 15.0) -> None:
            pass

        async def wait(self) -> int:
            return 0

        async def healthy(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
            return False

    supervisor = Supervisor(NeverStarts(), backoff=1.0, max_backoff=8.0)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 7:
            raise asyncio.CancelledError

    monkeypatch.setattr("nlu._supervisor.asyncio.sleep", sleep)
    with pytest.raises(asyncio.CancelledError):
        await supervisor._restart("test")
    assert slept == [0.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]


async def test_a_taken_port_moves_the_server(supervised: Supervisor) -> None:
    server = supervised.server
    assert isinstance(server, EmbeddedServer) and server.pid is not None
    moved: list[tuple[str, str]] = []
    old_url, port, first = server.url, server.port, server.pid
    async with NLUClient(old_url, SECRET, timeout=2.0) as client:

        def on_moved(old: str, new: str) -> None:
            moved.append((old, new))
            client.replace_server(old, new)

        supervised.on_moved = on_moved
        with socket.socket() as squatter:
            os.kill(first, signal.SIGKILL)
            # Synchronously (the supervisor cannot run meanwhile): wait for the port, then take it.
            deadline = time.monotonic() + 10
            while not gone(first) and time.monotonic() < deadline:
                time.sleep(0.01)  # noqa: ASYNC251 - on purpose: the supervisor must not run meanwhile
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            await until(lambda: supervised.restarts == 1)
        assert moved == [(old_url, server.url)] and server.port != port
        assert (await client.classify("hello")).key == "greet"


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from nlu import EmbeddedServer, RasaProject

    async def main():
        project = RasaProject(Path(sys.argv[1]), Path(sys.argv[2]))
        server = EmbeddedServer(project, Path(sys.argv[3]), sys.argv[4], startup_timeout=30)
        await server.start()
        print(server.pid, flush=True)
        await asyncio.sleep(120)

    asyncio.run(main())
    """
)


async def test_the_server_dies_with_its_parent_even_by_kill_9(project: RasaProject, model: Path) -> None:
    parent = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", CHILD, project.directory, project.venv, model, SECRET),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert parent.stdout is not None
        server = int(await asyncio.wait_for(parent.stdout.readline(), 30))
        assert not gone(server)
        parent.kill()
        await asyncio.wait_for(parent.wait(), 10)
        await until(lambda: gone(server), 10)
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()


# --- reusing a running server ------------------------------------------------------------------


def announce(state: Path, server: EmbeddedServer, **changes: object) -> Path:
    info: dict[str, object] = {"url": server.url, "pid": server.pid, "model": server.model.name}
    state.write_text(json.dumps({**info, **changes}))
    return state


async def test_a_running_server_is_reused_only_when_it_is_ours(
    project: RasaProject, model: Path, tmp_path: Path
) -> None:
    state = tmp_path / "nlu-server.json"
    other_model = tmp_path / "nlu-fedcba9876543210.tar.gz"
    async with (
        EmbeddedServer(project, model, SECRET) as ours,
        EmbeddedServer(project, model, "another-secret-0123456789-0123456789") as foreign,
        EmbeddedServer(project, other_model, SECRET) as older,
    ):
        client = await reusable_server(announce(state, ours), model, SECRET, 2.0)
        assert client is not None and client.servers == (ours.url,)
        await client.aclose()
        refused = {
            "another model": announce(state, ours, model=other_model.name),
            "our model, served by a process of another": announce(
                state, older, model=model.name, pid=older.pid
            ),
            "our model, but the pid is not a server of it": announce(state, ours, pid=older.pid),
            "a dead pid": announce(state, ours, pid=2**22 + 1),
            "not loopback": announce(state, ours, url=ours.url.replace("127.0.0.1", "192.0.2.1")),
            "another secret": announce(state, foreign),
            "not JSON": state,
        }
        for why, path in list(refused.items()):
            if why == "not JSON":
                path.write_text("{")
            found = await reusable_server(path, model, SECRET, 2.0)
            assert found is None, why
        # A server that answers our secret but has another model loaded, announced as ours.
        announce(state, older, model=model.name, pid=ours.pid)
        assert await reusable_server(state, model, SECRET, 2.0) is None
