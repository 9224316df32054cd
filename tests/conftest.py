from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.runtime import Services, rasa_project, var_dir
from bot.settings import ROOT, Settings, load_settings

# One PostgreSQL server for the whole session (a fixture imported into each test module would start
# one server per module).
from .pg import PostgresServer, postgres  # noqa: F401

CONTENT = ROOT / "content"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database on each backend: SQLite, and PostgreSQL (marked ``postgres``)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'integra.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database("test")


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The shipped deployment settings (config.yml), without environment overrides."""
    return load_settings(ROOT / "config.yml", environ={})


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


ENTRY = """\
{key}:
  updated: 2026-11-01
{checked}  sources:
    - https://www.example.gov/{key}
  answer:
{answers}
"""


def entry(key: str, checked: tuple[str, str] | None = None, **answers: str) -> str:
    """An answer entry; ``checked`` is (organisation, YYYY-MM-DD) when a partner checked it."""
    lines = "\n".join(f"    {lang}: {text}" for lang, text in answers.items())
    check = f'  checked:\n    by: "{checked[0]}"\n    on: {checked[1]}\n' if checked else ""
    return ENTRY.format(key=key, checked=check, answers=lines)


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    """A small knowledge base: country 'cz' with two cities, Prague overriding one key."""
    root = tmp_path / "content"
    root.mkdir()
    shutil.copy(CONTENT / "keys.yml", root / "keys.yml")
    write(root / "cities/prague/city.yml", "country: cz\nlocal_language: cs\nname: {en: Prague, cs: Praha}\n")
    write(root / "cities/brno/city.yml", "country: cz\nlocal_language: cs\nname: {en: Brno, cs: Brno}\n")
    write(
        root / "countries/cz/permit.yml",
        entry("permit.renewal", en="Renew at the Ministry of the Interior.", cs="Prodloužení na OAMP.")
        + entry("permit.first_application", en="Apply at an embassy.", cs="Požádejte na ambasádě."),
    )
    write(
        root / "countries/cz/services.yml",
        entry("services.integration_centre", en="National integration centres.", cs="Integrační centra."),
    )
    write(
        root / "cities/prague/services.yml",
        entry(
            "services.integration_centre",
            checked=("Integration Centre Prague", "2026-11-10"),
            en="Integration Centre Prague.",
            cs="Integrační centrum Praha.",
            uk="Інтеграційний центр Прага.",
        ),
    )
    return root


@pytest.fixture(scope="session")
async def services(settings: Settings) -> AsyncIterator[Services]:
    if not rasa_project(settings).runtime_available():
        pytest.fail("the Rasa runtime is missing: `make test` installs it (scripts/setup-rasa.sh)")
    opened = Services(settings, reuse_running=False)
    await opened.open()
    assert opened.server is not None and opened.server.pid is not None
    state = var_dir(settings) / "nlu-server.json"
    state.write_text(
        json.dumps({"url": opened.server.url, "pid": opened.server.pid, "model": opened.server.model.name})
    )
    try:
        yield opened
    finally:
        state.unlink(missing_ok=True)
        await opened.aclose()
