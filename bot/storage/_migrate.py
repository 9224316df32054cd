"""Database URLs and schema migrations (Alembic, run programmatically on the application's engine)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import DEFAULT_DATABASE_URL

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["DEFAULT_URL", "HEAD_REVISION", "MIGRATIONS", "alembic_config", "database_url", "migrate"]

DEFAULT_URL = DEFAULT_DATABASE_URL
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key held while the schema is migrated (PostgreSQL).
MIGRATION_LOCK = 0x1B7E_6A10
# The newest revision in migrations/versions/ (a test checks it against Alembic's own reading). A
# database already there is opened without importing Alembic at all: Alembic, Mako and Pygments are
# ~11 MiB of the bot's resident memory, and the schema changes far more rarely than the bot restarts.
HEAD_REVISION = "0009"


def sqlite_file(url: URL) -> str | None:
    """The path of a SQLite database file in ``url``; None for another backend or an in-memory or
    ``file:`` URI database."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return database


def database_url(url: str | URL, root: Path | None = None) -> URL:
    """Parse a SQLAlchemy URL; a relative SQLite path is taken from ``root`` (the deployment's
    ``settings.root``, where ``var/`` is) and its folder created. Without a root it must be absolute."""
    parsed = make_url(url)
    database = sqlite_file(parsed)
    if database is None:
        return parsed
    path = Path(database)
    if not path.is_absolute():
        if root is None:
            raise ValueError(f"the SQLite path {database} is relative: give the root it is relative to")
        path = root / path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return parsed.set(database=str(path))


def alembic_config() -> Config:
    """An Alembic configuration that needs no ``alembic.ini`` (the application's own)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    return config


def _at_head(connection: Connection) -> bool:
    """Whether the schema is at ``HEAD_REVISION`` already (read without Alembic)."""
    if not inspect(connection).has_table("alembic_version"):
        return False
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return versions == [HEAD_REVISION]


def _upgrade(connection: Connection) -> None:
    if _at_head(connection):
        return
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; a no-op when it is already there."""
    sqlite = engine.dialect.name == "sqlite"
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # Several workers may start at once: one migrates, the others wait and find it done.
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        if sqlite:
            # Batch migrations copy and drop tables: with foreign keys on, dropping `people` would
            # cascade into `turns`. The pragma only takes effect outside a transaction.
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            await connection.run_sync(_upgrade)
            await connection.commit()
        finally:
            if sqlite:
                await connection.rollback()
                await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                await connection.commit()
