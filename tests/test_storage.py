"""Storage on both backends: SQLite (a file in tmp_path) and a real PostgreSQL server (tests/pg.py)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, inspect, select, text, update

from bot.runtime import var_dir
from bot.settings import ROOT, load_settings
from bot.storage import (
    CaseData,
    FeedbackRow,
    PersonData,
    Storage,
    StorageClosedError,
    TurnData,
    UnansweredRow,
    database_url,
)
from bot.storage._migrate import HEAD_REVISION, alembic_config
from bot.storage._models import Base, Feedback, Person, Turn, Unanswered

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TABLES = {"alembic_version", "people", "turns", "feedback", "unanswered", "cases", "audit", "referrals"}
TABLES |= {"inbox"}
TABLES |= {"case_setup", "handoff_messages"}
TABLES |= {"usage", "usage_people"}
TABLES |= {"ended_topics"}


class Clock:
    """The storage's clock, moved by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def storage(url: str, clock: Clock) -> AsyncIterator[Storage]:
    store = Storage(url, max_turns=3, clock=clock)
    await store.open()
    yield store
    await store.aclose()


async def count(storage: Storage, model: type[Base]) -> int:
    async with storage.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(model)) or 0)


async def head_revision(storage: Storage) -> str | None:
    async with storage.engine.connect() as connection:
        return await connection.scalar(text("SELECT version_num FROM alembic_version"))


def expected_head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


# Schema and migrations


async def test_open_migrates_an_empty_database_and_again_is_a_no_op(url: str, clock: Clock) -> None:
    async with Storage(url, clock=clock) as store:
        async with store.engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert tables == TABLES
        assert await head_revision(store) == expected_head() is not None
        await store.save_person(1, language="uk")
    async with Storage(url, clock=clock) as again:
        assert await head_revision(again) == expected_head()
        assert await again.get_person(1) == PersonData(1, "uk", None, None)


def test_the_head_revision_the_bot_checks_is_alembics_newest() -> None:
    assert HEAD_REVISION == expected_head()


# Opens the database given as argv[1] and says whether Alembic had to be imported for it.
OPEN_AND_REPORT = """
import asyncio, sys
from bot.storage import Storage

async def main():
    async with Storage(sys.argv[1]) as store:
        await store.get_person(1)
    print("alembic" in sys.modules)

asyncio.run(main())
"""


async def test_a_database_already_at_the_newest_schema_opens_without_alembic(url: str) -> None:
    async def opened() -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", OPEN_AND_REPORT, url, cwd=ROOT, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0
        return out.decode().strip()

    assert await opened() == "True"  # an empty database: migrated with Alembic
    assert await opened() == "False"  # at the newest revision: Alembic is never imported


async def test_the_models_match_the_migrations(storage: Storage) -> None:
    def differences(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with storage.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def alembic_cli(url: str, *args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), *args,
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()


async def test_alembic_cli_upgrade_head_creates_the_schema_and_is_idempotent(url: str) -> None:
    await alembic_cli(url, "upgrade", "head")
    await alembic_cli(url, "upgrade", "head")
    async with Storage(url) as store:
        assert await head_revision(store) == expected_head()
        await store.add_turn(5, "user", "hello")
        assert [t.text for t in await store.recent_turns(5)] == ["hello"]


async def test_a_relative_sqlite_path_is_taken_from_the_project_root(tmp_path: Path) -> None:
    resolved = database_url("sqlite+aiosqlite:///var/integra.db", root=tmp_path)
    assert resolved.database == str(tmp_path / "var" / "integra.db")
    assert (tmp_path / "var").is_dir()
    absolute = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    assert database_url(absolute).database == str(tmp_path / "x.db")
    pg = "postgresql+asyncpg://bot@db.internal:5432/integra"
    assert database_url(pg).render_as_string() == pg


async def test_the_database_and_var_dir_follow_the_configuration_file(tmp_path: Path) -> None:
    """With INTEGRA_CONFIG elsewhere, the default SQLite file and var/ are both beside that file."""
    config = tmp_path / "deployment" / "config.yml"
    config.parent.mkdir()
    config.write_text((ROOT / "config.yml").read_text(encoding="utf-8"), encoding="utf-8")
    settings = load_settings(config, environ={})
    assert settings.root == config.parent
    async with Storage.from_settings(settings) as store:
        assert store.url.database == str(config.parent / "var" / "integra.db")
    assert var_dir(settings) == config.parent / "var"
    with pytest.raises(ValueError, match="relative"):
        Storage("sqlite+aiosqlite:///var/integra.db")


async def test_using_a_closed_storage_is_an_error(url: str) -> None:
    store = Storage(url)
    with pytest.raises(StorageClosedError):
        await store.get_person(1)
    await store.open()
    await store.aclose()
    with pytest.raises(StorageClosedError):
        await store.add_turn(1, "user", "hi")


# People


async def test_a_unit_of_work_that_fails_leaves_nothing_behind(storage: Storage) -> None:
    """``Database.run``: one transaction — a unit that fails after writing has written nothing."""
    await storage.save_person(7, language="en")

    def unit(connection: Connection) -> None:
        connection.execute(update(Person).values(language="uk"))
        raise RuntimeError("the unit fails after its write")

    with pytest.raises(RuntimeError, match="after its write"):
        await storage.run(unit)
    assert await storage.get_person(7) == PersonData(7, "en", None, None)
    assert (
        await storage.run(lambda connection: connection.scalar(select(func.count()).select_from(Person))) == 1
    )


async def test_a_write_waiting_for_sqlites_lock_does_not_stop_the_event_loop(tmp_path: Path) -> None:
    """On SQLite a unit of work runs in a worker thread: while another connection holds the write lock,
    the bot's other chats (the event loop) go on, and the write lands once the lock is free."""
    import sqlite3

    path = tmp_path / "locked.db"
    async with Storage(f"sqlite+aiosqlite:///{path}") as store:
        await store.save_person(1, language="en")
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process is writing
            write = asyncio.create_task(store.add_turn(1, "user", "hello", message_id=1))
            ticks = 0
            for _ in range(20):  # the loop keeps running while the write waits
                await asyncio.sleep(0.01)
                ticks += 1
            assert ticks == 20 and not write.done()
            other.execute("COMMIT")
            await asyncio.wait_for(write, timeout=30)
        finally:
            other.close()
        assert [t.text for t in await store.recent_turns(1)] == ["hello"]


async def test_save_person_creates_then_changes_only_the_given_fields(storage: Storage, clock: Clock) -> None:
    assert await storage.get_person(42) is None
    created = await storage.save_person(42, language="uk")
    assert created == PersonData(chat_id=42, language="uk", city=None, consent_at=None)

    clock.advance(minutes=5)
    assert await storage.save_person(42, city="prague") == PersonData(42, "uk", "prague", None)
    assert await storage.save_person(42) == PersonData(42, "uk", "prague", None)
    assert await storage.save_person(42, language="cs") == PersonData(42, "cs", "prague", None)
    assert await storage.save_person(42, city=None) == PersonData(42, "cs", None, None)
    assert await storage.get_person(42) == PersonData(42, "cs", None, None)
    assert await storage.get_person(43) is None
    assert await count(storage, Person) == 1

    async with storage.engine.connect() as connection:
        created_at, last_seen_at = (
            await connection.execute(select(Person.created_at, Person.last_seen_at))
        ).one()
    assert (created_at, last_seen_at) == (T0, T0 + timedelta(minutes=5))


async def test_a_person_row_holds_no_names_usernames_or_phone_numbers(storage: Storage) -> None:
    async with storage.engine.connect() as connection:
        columns = await connection.run_sync(
            lambda sync: {c["name"] for c in inspect(sync).get_columns("people")}
        )
    assert columns == {
        "id",
        "chat_id",
        "language",
        "city",
        "consent_at",
        "created_at",
        "last_seen_at",
        "blocked_at",
    }


async def test_a_person_who_blocked_the_bot_is_marked_until_they_unblock_it(storage: Storage) -> None:
    await storage.save_person(7, language="uk")
    assert not await storage.set_blocked(8, True)  # nothing is stored about someone unknown
    assert await storage.set_blocked(7, True) and not await storage.set_blocked(7, True)
    assert await storage.is_blocked(7) and not await storage.is_blocked(8)
    assert await storage.blocked_chats() == {7}
    assert await storage.set_blocked(7, False)
    assert not await storage.is_blocked(7) and await storage.blocked_chats() == set()


async def test_language_must_be_a_two_letter_code(storage: Storage) -> None:
    for bad in ("eng", "u", "", "1a"):
        with pytest.raises(ValueError, match="two-letter"):
            await storage.save_person(1, language=bad)
    assert await storage.get_person(1) is None


async def test_consent_is_recorded_kept_and_can_be_withdrawn(storage: Storage, clock: Clock) -> None:
    await storage.save_person(7, language="ar")
    consent = clock.advance(seconds=30)
    assert (await storage.save_person(7, consent_at=consent)).consent_at == consent
    clock.advance(days=1)
    await storage.save_person(7, city="sofia")  # other changes keep the consent
    person = await storage.get_person(7)
    assert person is not None and person.consent_at == consent
    assert (await storage.save_person(7, consent_at=None)).consent_at is None
    assert (await storage.get_person(7)) == PersonData(7, "ar", "sofia", None)


# Conversation


async def test_turns_are_trimmed_to_max_turns_and_returned_oldest_first(
    storage: Storage, clock: Clock
) -> None:
    for n in range(1, 6):
        clock.advance(seconds=1)
        await storage.add_turn(1, "user" if n % 2 else "bot", f"message {n}", key=f"k{n}")
    await storage.add_turn(2, "user", "someone else")

    turns = await storage.recent_turns(1)
    assert [t.text for t in turns] == ["message 3", "message 4", "message 5"]
    assert turns[0] == TurnData("user", "message 3", "k3", T0 + timedelta(seconds=3))
    assert [t.role for t in turns] == ["user", "bot", "user"]
    assert [t.text for t in await storage.recent_turns(1, limit=2)] == ["message 4", "message 5"]
    assert [t.text for t in await storage.recent_turns(2)] == ["someone else"]
    assert await storage.recent_turns(3) == []
    assert await count(storage, Turn) == 4  # older turns are deleted, not only hidden


async def test_max_turns_is_configurable(url: str, clock: Clock) -> None:
    async with Storage(url, max_turns=25, clock=clock) as store:
        for n in range(30):
            await store.add_turn(1, "user", str(n))
        assert [t.text for t in await store.recent_turns(1, limit=100)] == [str(n) for n in range(5, 30)]
    assert Storage(url).max_turns == 20
    with pytest.raises(ValueError):
        Storage(url, max_turns=0)


async def test_add_turn_creates_the_person_and_only_their_own_messages_count_as_seen(
    storage: Storage, clock: Clock
) -> None:
    await storage.add_turn(9, "user", "hello")
    assert await storage.get_person(9) == PersonData(9, None, None, None)
    clock.advance(hours=1)
    await storage.add_turn(9, "bot", "hi")
    await storage.add_turn(9, "staff", "a caseworker here")
    async with storage.engine.connect() as connection:
        assert await connection.scalar(select(Person.last_seen_at)) == T0
    clock.advance(hours=1)
    await storage.add_turn(9, "user", "thanks")
    async with storage.engine.connect() as connection:
        assert await connection.scalar(select(Person.last_seen_at)) == T0 + timedelta(hours=2)
    with pytest.raises(ValueError, match="role"):
        await storage.add_turn(9, "system", "nope")


async def test_add_exchange_writes_both_turns_and_the_outcome_at_once(storage: Storage, clock: Clock) -> None:
    await storage.save_person(4, city="prague", consent_at=T0)
    for n in range(12):  # 24 turns: trimmed to the newest max_turns like add_turn
        clock.advance(seconds=1)
        await storage.add_exchange(
            4,
            f"question {n}",
            f"answer {n}",
            "housing.rent",
            message_id=100 + n,
            usage=("prague", "uk", "answer" if n % 2 else "clarify"),
        )
    await storage.add_exchange(4, "hello", "hi", None, message_id=200, usage=("prague", "uk", "conversation"))
    with pytest.raises(ValueError, match="usage event"):
        await storage.add_exchange(4, "x", "y", None, message_id=201, usage=("prague", "uk", "bogus"))

    turns = await storage.recent_turns(4, limit=100)
    assert [(t.role, t.text) for t in turns] == [("bot", "answer 11"), ("user", "hello"), ("bot", "hi")]
    assert await storage.question_key(4, 200) == (True, None)
    assert await storage.question_key(4, 201) == (False, None)  # the failed one left nothing
    rows = await storage.usage.rows("prague", T0, T0 + timedelta(days=1))
    assert [r.event for r in rows] == ["clarify", "answer"] * 6  # a greeting is not a question
    assert {r.language for r in rows} == {"uk"} and len({r.pseudonym for r in rows}) == 1


async def test_forget_erases_the_person_and_their_turns(storage: Storage) -> None:
    await storage.save_person(1, language="fa", city="osijek", consent_at=T0)
    await storage.add_turn(1, "user", "my address is …")
    await storage.add_turn(1, "bot", "an answer")
    await storage.add_turn(2, "user", "another person")
    # New connections, not the one that ran the migrations: each must enforce foreign keys (SQLite).
    await storage.engine.dispose()

    assert await storage.forget(1) is True
    assert await storage.get_person(1) is None
    assert await storage.recent_turns(1) == []
    assert await count(storage, Person) == 1
    assert await count(storage, Turn) == 1  # the database itself cascaded, nothing orphaned
    assert await storage.forget(1) is False
    assert await storage.forget(12345) is False
    assert [t.text for t in await storage.recent_turns(2)] == ["another person"]


# Anonymous records


async def test_feedback_and_unanswered_are_not_linked_to_a_person_and_survive_forget(
    storage: Storage,
) -> None:
    async with storage.engine.connect() as connection:
        for table in ("feedback", "unanswered"):

            def columns_of(sync: Connection, t: str = table) -> set[str]:
                return {c["name"] for c in inspect(sync).get_columns(t)}

            def foreign_keys_of(sync: Connection, t: str = table) -> list[Any]:
                return list(inspect(sync).get_foreign_keys(t))

            columns = await connection.run_sync(columns_of)
            assert not columns & {"chat_id", "person_id"}
            fks = await connection.run_sync(foreign_keys_of)
            assert fks == []

    await storage.add_turn(1, "user", "where is the office")
    await storage.add_feedback("prague", "uk", "permit.renewal", helpful=True)
    await storage.add_unanswered("prague", "uk", "where is the office", None, 0.12)
    assert await storage.forget(1)
    assert await storage.feedback_report() == [FeedbackRow("prague", "permit.renewal", 1, 0)]
    assert [row.text for row in await storage.unanswered_report()] == ["where is the office"]


async def test_feedback_report_counts_per_city_and_key(storage: Storage) -> None:
    for city, lang, key, helpful in [
        ("prague", "uk", "permit.renewal", True),
        ("prague", "cs", "permit.renewal", True),
        ("prague", "en", "permit.renewal", False),
        ("prague", "en", "housing.shelter", False),
        ("sofia", "bg", "permit.renewal", True),
    ]:
        await storage.add_feedback(city, lang, key, helpful)
    assert await storage.feedback_report() == [
        FeedbackRow("prague", "housing.shelter", helpful=0, unhelpful=1),
        FeedbackRow("prague", "permit.renewal", helpful=2, unhelpful=1),
        FeedbackRow("sofia", "permit.renewal", helpful=1, unhelpful=0),
    ]
    assert await count(storage, Feedback) == 5


async def test_unanswered_report_groups_orders_by_frequency_and_respects_since(
    storage: Storage, clock: Clock
) -> None:
    await storage.add_unanswered("rubano", "it", "Dove   posso dormire?", "housing.shelter", 0.2)
    clock.advance(hours=1)
    await storage.add_unanswered("rubano", "it", "dove posso dormire?\n", None, 0.1)
    await storage.add_unanswered("rubano", "en", "dove posso dormire?", None, 0.1)  # another language
    since = clock.advance(hours=1)
    await storage.add_unanswered("kosice", "sk", "kde je knižnica", None, 0.3)
    await storage.add_unanswered("kosice", "sk", "Kde je knižnica", None, 0.3)
    clock.advance(hours=1)
    await storage.add_unanswered("kosice", "sk", "kde je knižnica", None, 0.4)
    await storage.add_unanswered("kosice", "sk", "   ", None, 0.0)  # nothing to record
    await storage.add_unanswered("kosice", "sk", "x" * 700, None, 0.0)

    report = await storage.unanswered_report()
    assert report == [
        UnansweredRow("kosice", "sk", "kde je knižnica", 3, T0 + timedelta(hours=3)),
        UnansweredRow("rubano", "it", "dove posso dormire?", 2, T0 + timedelta(hours=1)),
        UnansweredRow("kosice", "sk", "x" * 500, 1, T0 + timedelta(hours=3)),
        UnansweredRow("rubano", "en", "dove posso dormire?", 1, T0 + timedelta(hours=1)),
    ]
    assert await storage.unanswered_report(limit=1) == report[:1]
    assert [(r.text[:5], r.count) for r in await storage.unanswered_report(since=since)] == [
        ("kde j", 3),
        ("xxxxx", 1),
    ]
    assert await storage.unanswered_report(since=T0 + timedelta(days=1)) == []
    assert await count(storage, Unanswered) == 7


# Retention


async def test_purge_deletes_exactly_what_is_older_than_the_limits(storage: Storage, clock: Clock) -> None:
    await storage.add_turn(1, "user", "old turn, inactive person")  # T0
    await storage.add_turn(2, "user", "old turn, active person")
    await storage.add_unanswered("sofia", "bg", "old question", None, 0.1)
    clock.advance(days=10)
    await storage.add_turn(2, "user", "turn on the boundary")  # T0 + 10 days
    await storage.add_unanswered("sofia", "bg", "question on the boundary", None, 0.1)
    clock.advance(days=1)
    await storage.add_turn(3, "user", "new")
    await storage.save_person(4, language="en")  # no turns
    await storage.add_feedback("sofia", "bg", "permit.renewal", False)

    now = T0 + timedelta(days=20)
    deleted = await storage.purge(
        now=now,
        turns_older_than=timedelta(days=10),  # keeps turns from T0 + 10 days on
        inactive_people_older_than=timedelta(days=15),  # person 1, last seen at T0, goes
        unanswered_older_than=timedelta(days=10),
    )
    assert deleted == {
        "turns": 2,
        "relayed": 0,
        "cases": 0,
        "people": 1,
        "unanswered": 1,
        "audit": 0,
        "ended_topics": 0,
    }
    assert await storage.get_person(1) is None
    assert [t.text for t in await storage.recent_turns(2)] == ["turn on the boundary"]
    assert [t.text for t in await storage.recent_turns(3)] == ["new"]
    assert await storage.get_person(4) is not None
    assert [r.text for r in await storage.unanswered_report()] == ["question on the boundary"]
    assert await count(storage, Feedback) == 1

    again = await storage.purge(
        now=now,
        turns_older_than=timedelta(days=10),
        inactive_people_older_than=timedelta(days=15),
        unanswered_older_than=timedelta(days=10),
    )
    assert set(again.values()) == {0} and set(again) == set(deleted)


# Time


async def test_timezone_aware_datetimes_round_trip(storage: Storage, clock: Clock) -> None:
    kyiv_summer = timezone(timedelta(hours=3))
    consent = datetime(2026, 7, 14, 23, 30, 15, 123456, tzinfo=kyiv_summer)
    person = await storage.save_person(5, consent_at=consent)
    stored = await storage.get_person(5)
    assert stored is not None and person.consent_at == stored.consent_at == consent
    assert stored.consent_at is not None and stored.consent_at.utcoffset() == timedelta(0)
    assert stored.consent_at.tzinfo is not None

    clock.now = datetime(2026, 7, 15, 1, 0, tzinfo=timezone(timedelta(hours=-5)))
    await storage.add_turn(5, "user", "hi")
    await storage.add_unanswered("prague", "en", "late question", None, 0.2)
    (turn,) = await storage.recent_turns(5)
    (row,) = await storage.unanswered_report()
    for value in (turn.created_at, row.last_seen):
        assert value == clock.now and value.utcoffset() == timedelta(0)
    # Comparisons happen between instants, whatever the offsets they were written with.
    assert await storage.unanswered_report(since=datetime(2026, 7, 15, 6, 0, tzinfo=UTC)) == [row]
    assert await storage.unanswered_report(since=datetime(2026, 7, 15, 6, 0, 1, tzinfo=UTC)) == []

    naive = datetime(2026, 1, 1, 12, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        await storage.save_person(5, consent_at=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        await storage.unanswered_report(since=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        await storage.purge(
            now=naive,
            turns_older_than=timedelta(1),
            inactive_people_older_than=timedelta(1),
            unanswered_older_than=timedelta(1),
        )


# Handoff cases


async def open_for(storage: Storage, chat_id: int, **extra: Any) -> CaseData:
    await storage.save_person(chat_id, language="uk", city="prague", consent_at=T0)
    values: dict[str, Any] = {
        "city": "prague",
        "language": "uk",
        "key": "permit.renewal",
        "urgent": False,
        "group_chat_id": -100123,
        "remind_at": T0 + timedelta(minutes=15),
    } | extra
    case, created = await storage.cases.open(chat_id, **values)
    assert created
    return case


async def test_a_person_has_at_most_one_open_case_and_only_after_consent(storage: Storage) -> None:
    with pytest.raises(LookupError):
        await storage.cases.open(
            9, city="prague", language="uk", key=None, urgent=False, group_chat_id=-1, remind_at=None
        )
    case = await open_for(storage, 9)
    assert case.number == "C-0001" and case.is_open and case.owner_id is None and case.thread_id is None
    again, created = await storage.cases.open(
        9, city="prague", language="uk", key=None, urgent=True, group_chat_id=-1, remind_at=None
    )
    assert not created and again == case
    await storage.cases.set_topic(case.id, thread_id=77, card_message_id=78)
    assert await storage.cases.in_topic(-100123, 77) == await storage.cases.open_of(9)
    with_topic = await storage.cases.open_of(9)
    assert with_topic is not None and with_topic.card_message_id == 78
    assert await storage.cases.in_topic(-100123, 76) is None
    # Closed, a case is no longer found by topic or person; a new one can be opened.
    assert (await storage.cases.close(case.id, 501)) is not None
    assert await storage.cases.close(case.id, 501) is None
    assert await storage.cases.in_topic(-100123, 77) is None and await storage.cases.open_of(9) is None
    assert (await storage.cases.open(9, city="prague", language="uk", key=None, urgent=False,
                                    group_chat_id=-1, remind_at=None))[1]  # fmt: skip


async def test_two_simultaneous_claims_from_two_processes_one_wins(url: str, clock: Clock) -> None:
    async with Storage(url, clock=clock) as first, Storage(url, clock=clock) as second:
        case = await open_for(first, 10)
        results = await asyncio.gather(
            *(s.cases.claim(case.id, staff) for s, staff in ((first, 1), (second, 2)))
        )
        winners = [staff for staff, (won, _) in zip((1, 2), results, strict=True) if won]
        assert len(winners) == 1
        for _won, current in results:
            assert current is not None and current.owner_id == winners[0]
        assert await first.cases.claim(case.id, 3) == (False, await first.cases.get(case.id))
        actions = [(row.action, row.actor_id) for row in await first.cases.audit_log(case.id)]
        assert actions == [("open", None), ("claim", winners[0])]


async def test_reminders_are_due_once_and_stop_when_claimed(storage: Storage, clock: Clock) -> None:
    case = await open_for(storage, 11)
    await storage.cases.set_topic(case.id, thread_id=5, card_message_id=6)
    assert await storage.cases.due_reminders(T0 + timedelta(minutes=14)) == []
    [due] = await storage.cases.due_reminders(T0 + timedelta(minutes=15))
    later = T0 + timedelta(minutes=30)
    assert await storage.cases.reminded(due, later)
    assert not await storage.cases.reminded(due, later)  # a second instance with the same view loses
    assert await storage.cases.due_reminders(T0 + timedelta(minutes=29)) == []
    [again] = await storage.cases.due_reminders(later)
    assert again.reminders == 1 and again.remind_at == later
    await storage.cases.claim(case.id, 501)
    assert await storage.cases.due_reminders(later + timedelta(days=1)) == []


async def test_transfer_moves_an_open_case_unassigned(storage: Storage) -> None:
    case = await open_for(storage, 12)
    await storage.cases.claim(case.id, 501)
    moved = await storage.cases.transfer(
        case.id, city="osijek", group_chat_id=-100999, thread_id=3, card_message_id=4,
        remind_at=T0 + timedelta(hours=1), actor_id=501,
    )  # fmt: skip
    assert moved is not None and moved.city == "osijek" and moved.owner_id is None and moved.thread_id == 3
    assert await storage.cases.in_topic(-100999, 3) == moved
    await storage.cases.close(case.id, None)
    assert (
        await storage.cases.transfer(
            case.id,
            city="sofia",
            group_chat_id=-1,
            thread_id=1,
            card_message_id=None,
            remind_at=None,
            actor_id=1,
        )
        is None
    )


async def test_a_rating_counts_once_only_for_the_persons_own_closed_case(storage: Storage) -> None:
    case = await open_for(storage, 13)
    assert not await storage.cases.rate(case.id, 13, 5)  # still open
    await storage.cases.close(case.id, 501)
    assert not await storage.cases.rate(case.id, 14, 5)  # someone else's case
    with pytest.raises(ValueError):
        await storage.cases.rate(case.id, 13, 6)
    assert await storage.cases.rate(case.id, 13, 4)
    assert not await storage.cases.rate(case.id, 13, 1)
    rated = await storage.cases.get(case.id)
    assert rated is not None and rated.rating == 4


async def test_forget_erases_cases_but_keeps_the_audit_log_without_person_data(storage: Storage) -> None:
    case = await open_for(storage, 15)
    await storage.cases.audit(case.id, "reply", 501)
    with pytest.raises(ValueError):
        await storage.cases.audit(case.id, "chat", 501)
    assert await storage.forget(15)
    assert await storage.cases.get(case.id) is None
    assert [row.action for row in await storage.cases.audit_log(case.id)] == ["open", "reply"]
    async with storage.engine.connect() as connection:
        columns = await connection.run_sync(
            lambda sync: {c["name"] for c in inspect(sync).get_columns("audit")}
        )
    assert columns == {"id", "case_id", "action", "actor_id", "detail", "created_at", "partner"}


async def test_purge_removes_old_closed_cases_and_old_audit_entries(storage: Storage, clock: Clock) -> None:
    old = await open_for(storage, 16)
    await storage.cases.close(old.id, 501)
    current = await open_for(storage, 17)
    clock.advance(days=40)
    deleted = await storage.purge(
        now=clock.now,
        turns_older_than=timedelta(days=30),
        inactive_people_older_than=timedelta(days=90),
        unanswered_older_than=timedelta(days=90),
        audit_older_than=timedelta(days=35),
    )
    assert deleted["cases"] == 1 and deleted["audit"] == 3  # two opens and a close, all 40 days old
    assert await storage.cases.get(old.id) is None and await storage.cases.get(current.id) is not None
