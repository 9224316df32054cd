"""A real, throw-away PostgreSQL server for the tests (binaries from scripts/setup-postgres.sh).

The session-scoped ``postgres`` fixture runs ``initdb`` in a temporary directory (trust
authentication, 127.0.0.1 only, a free port, the Unix socket in the same directory), starts the
server with ``pg_ctl`` and stops and removes it at the end. PostgreSQL refuses to run as root, so
as root the server runs as the ``postgres`` system user. Without the binaries the tests are skipped,
except under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = ["PostgresServer", "find_bindir", "postgres", "postgres_url"]

INSTALL_HINT = "run `bash scripts/setup-postgres.sh` (as root) to install PostgreSQL"


def find_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin with initdb and pg_ctl, else the ones on PATH."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    bindir: Path
    directory: Path
    port: int = 0
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def datadir(self) -> Path:
        return self.directory / "data"

    def _run(self, *args: str | Path, as_server: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(arg) for arg in args]
        if as_server and os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            log = self.directory / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} failed ({result.returncode}): {result.stderr.strip()}\n{tail}")

    def start(self) -> None:
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(f"no 'postgres' system user to run the server; {INSTALL_HINT}") from None
            os.chown(self.directory, user.pw_uid, user.pw_gid)
        self._check(
            self._run(
                self.bindir / "initdb",
                "--pgdata", self.datadir,
                "--username", "postgres",
                "--auth", "trust",
                "--encoding", "UTF8",
                "--locale", "C",
                "--no-sync",
                "--no-instructions",
            ),
            "initdb",
        )  # fmt: skip
        for _attempt in range(3):  # another process may take the free port before the server does
            self.port = _free_port()
            result = self._pg_ctl_start()
            if result.returncode == 0:
                return
        self._check(result, "pg_ctl start")

    def _pg_ctl_start(self) -> subprocess.CompletedProcess[str]:
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.directory} "
            "-F -c full_page_writes=off -c synchronous_commit=off"
        )
        return self._run(
            self.bindir / "pg_ctl", "start", "--pgdata", self.datadir, "--wait", "--timeout", "60",
            "--log", self.directory / "server.log", "-o", options,
        )  # fmt: skip

    def stop(self) -> None:
        self._run(self.bindir / "pg_ctl", "stop", "--pgdata", self.datadir, "--mode", "fast", "--wait")

    def start_again(self) -> None:
        """Start the stopped server on the same port and data (after ``stop()``, for fault tests)."""
        self._check(self._pg_ctl_start(), "pg_ctl start")

    def create_database(self, prefix: str = "integra") -> str:
        """Create an empty database; returns its asyncpg URL."""
        name = f"{prefix}_{next(self._names)}"
        self._check(
            self._run(
                self.bindir / "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name,
                as_server=False,
            ),
            f"createdb {name}",
        )  # fmt: skip
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own for this test session."""
    bindir = find_bindir()
    if bindir is None:
        message = f"PostgreSQL server binaries (initdb, pg_ctl) not found; {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # As root the directory must be reachable by the postgres user: /tmp, not a private TMPDIR.
    parent = "/tmp" if os.geteuid() == 0 else None
    server = PostgresServer(bindir, Path(tempfile.mkdtemp(prefix="integra-pg-", dir=parent)))
    try:
        server.start()
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres: PostgresServer) -> str:
    """``postgresql+asyncpg://postgres@127.0.0.1:PORT/DB`` of an empty database on that server."""
    return postgres.create_database("integra")
