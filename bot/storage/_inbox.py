"""The durable inbox of Telegram updates: ``storage.inbox``.

An update is stored (``add``) before Telegram is told it arrived, then claimed by a worker for a
lease, handled, and marked done. Only the oldest pending update of a chat can be claimed, and only
while nobody else holds it: one chat (or one staff topic) is handled strictly in order, by one
worker at a time, while different chats go in parallel — also across processes on PostgreSQL,
where the claim locks with ``FOR UPDATE SKIP LOCKED``.

What is kept: the update as Telegram sent it until it is done (then only its id, chat key and
times, for a day, so that a redelivered update is recognised), and for each call the bot made while
handling it, the ids Telegram returned (never text), so that a replay does not send it again.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    bindparam,
    delete,
    exists,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, aliased, mapped_column

from ._database import Database, aware, changed, changed_now
from ._models import Base, Case, Person

__all__ = ["InboxEntry", "InboxItem", "InboxStore"]

JSON = dict[str, Any]


class InboxEntry(Base):
    """A Telegram update, stored before Telegram is told it arrived; handled once, in order per chat."""

    __tablename__ = "inbox"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'done', 'failed')", name="state"),
        Index(
            "ix_inbox_pending",
            "chat_key",
            "update_id",
            sqlite_where=text("state = 'pending'"),
            postgresql_where=text("state = 'pending'"),
        ),
    )

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chat_key: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(8))
    # What people wrote is in it, as ASCII-only JSON: NUL and lone surrogates are escapes (\u0000),
    # which every backend stores, and the handler gets back exactly what Telegram sent.
    data: Mapped[str | None] = mapped_column(Text)
    sent: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(SmallInteger)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    received_at: Mapped[datetime]
    done_at: Mapped[datetime | None] = mapped_column(index=True)


@dataclass(frozen=True, slots=True)
class InboxItem:
    """A claimed update: its JSON, the sends an earlier attempt made (a replay), how often it was tried."""

    update_id: int
    chat_key: str
    data: JSON
    sent: list[JSON]
    attempts: int


# Built once (see bot/storage/_store.py): what was sent while handling an update, and "done".
_UPDATE = bindparam("p_update", type_=InboxEntry.update_id.type)
_RECORD_SENT = (
    update(InboxEntry)
    .where(InboxEntry.update_id == _UPDATE, InboxEntry.state == "pending")
    .values(sent=bindparam("p_sent", type_=InboxEntry.sent.type))
)
_DONE = (
    update(InboxEntry)
    .where(InboxEntry.update_id == _UPDATE)
    .values(
        state=bindparam("p_state", type_=InboxEntry.state.type),
        data=None,
        sent=None,
        claimed_until=None,
        done_at=bindparam("p_now", type_=InboxEntry.done_at.type),
    )
)


# The insert of one new update, skipped when the update is already stored. Written out because
# SQLAlchemy cannot cache its dialects' ``on_conflict_do_nothing`` construct: built that way, the
# insert was compiled afresh for every batch (~0.5 ms of CPU). The same text runs on SQLite and
# PostgreSQL; values go through the columns' own types.
_ADD = text(
    "INSERT INTO inbox (update_id, chat_key, state, data, attempts, received_at) "
    "VALUES (:update_id, :chat_key, 'pending', :data, 0, :received_at) "
    "ON CONFLICT (update_id) DO NOTHING RETURNING update_id"
).bindparams(
    *(
        bindparam(name, type_=InboxEntry.__table__.c[name].type)
        for name in ("update_id", "chat_key", "data", "received_at")
    )
)


class InboxStore:
    """Add, claim, renew, finish and purge stored updates."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @functools.cached_property
    def _claim_statement(self) -> Any:
        """The claim, built once per store (with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL)."""
        earlier = aliased(InboxEntry)
        head = ~exists().where(
            earlier.state == "pending",
            earlier.chat_key == InboxEntry.chat_key,
            earlier.update_id < InboxEntry.update_id,
        )
        now = bindparam("p_now", type_=InboxEntry.claimed_until.type)
        free = InboxEntry.claimed_until.is_(None) | (InboxEntry.claimed_until < now)
        busy = bindparam("p_busy", expanding=True, type_=InboxEntry.update_id.type)
        candidates = (
            select(InboxEntry.update_id)
            .where(InboxEntry.state == "pending", free, head, InboxEntry.update_id.not_in(busy))
            .order_by(InboxEntry.update_id)
            .limit(bindparam("p_limit", type_=Integer))
        )
        if self._db.engine.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        return (
            update(InboxEntry)
            .where(InboxEntry.update_id.in_(candidates.scalar_subquery()))
            .values(
                claimed_by=bindparam("p_worker", type_=InboxEntry.claimed_by.type),
                claimed_until=bindparam("p_until", type_=InboxEntry.claimed_until.type),
                attempts=InboxEntry.attempts + 1,
            )
            .returning(
                InboxEntry.update_id,
                InboxEntry.chat_key,
                InboxEntry.data,
                InboxEntry.sent,
                InboxEntry.attempts,
            )
        )

    async def add(self, updates: Iterable[tuple[int, str, JSON]]) -> int:
        """Store updates (update id, chat key, JSON) in one transaction; ones already known are skipped.
        Returns how many were new."""
        now = self._db.clock()
        rows = [
            {
                "update_id": update_id,
                "chat_key": chat_key,
                "data": json.dumps(data, ensure_ascii=True, separators=(",", ":")),
                "received_at": now,
            }
            for update_id, chat_key, data in updates
        ]
        if not rows:
            return 0

        def unit(connection: Connection) -> int:
            return sum(connection.execute(_ADD, row).first() is not None for row in rows)

        return await self._db.run(unit)

    async def case_chats(self, topics: Iterable[tuple[int, int]]) -> dict[tuple[int, int], int]:
        """The person's chat id of the (newest) case in each forum topic (group chat id, thread id)."""
        wanted = set(topics)
        if not wanted:
            return {}
        groups = {group for group, _thread in wanted}
        threads = {thread for _group, thread in wanted}
        stmt = (
            select(Case.group_chat_id, Case.thread_id, Person.chat_id)
            .join(Person, Person.id == Case.person_id)
            .where(Case.group_chat_id.in_(groups), Case.thread_id.in_(threads))
            .order_by(Case.id)
        )
        async with self._db.session() as session, session.begin():
            rows = (await session.execute(stmt)).all()
        found = {(row.group_chat_id, row.thread_id): row.chat_id for row in rows}  # the newest wins
        return {topic: chat for topic, chat in found.items() if topic in wanted}

    async def claim(
        self, worker: str, *, limit: int, lease: timedelta, busy: Collection[int] = ()
    ) -> list[InboxItem]:
        """Claim up to ``limit`` updates for ``lease``: each the oldest pending one of its chat, not held
        by anyone (or held by a lease that ran out). Oldest first.

        ``busy`` are the updates this worker is handling right now: never claimed again by it, even when
        their lease ran out (a stalled heartbeat, a clock jump), so one update never runs twice at once.
        """
        if limit < 1:
            return []
        now = self._db.clock()
        params = {
            "p_now": now,
            "p_until": now + lease,
            "p_worker": worker,
            "p_limit": limit,
            "p_busy": list(busy),
        }
        stmt = self._claim_statement
        rows = await self._db.run(lambda connection: connection.execute(stmt, params).all())
        return sorted(
            (
                InboxItem(
                    row.update_id,
                    row.chat_key,
                    json.loads(row.data or "{}"),
                    json.loads(row.sent or "[]"),
                    row.attempts,
                )
                for row in rows
            ),
            key=lambda item: item.update_id,
        )

    async def renew(self, worker: str, update_ids: Sequence[int], lease: timedelta) -> int:
        """Extend this worker's leases on updates it is still handling; how many it still held."""
        if not update_ids:
            return 0
        stmt = (
            update(InboxEntry)
            .where(
                InboxEntry.update_id.in_(update_ids),
                InboxEntry.claimed_by == worker,
                InboxEntry.state == "pending",
            )
            .values(claimed_until=self._db.clock() + lease)
        )
        return await self._db.run(lambda connection: changed_now(connection, stmt))

    async def record_sent(self, update_id: int, sent: Sequence[JSON]) -> None:
        """What has been sent so far while handling this update (methods and ids), for a replay."""
        params = {"p_update": update_id, "p_sent": json.dumps(list(sent), separators=(",", ":"))}
        await self._db.run(lambda connection: changed_now(connection, _RECORD_SENT, params))

    async def done(self, update_id: int, *, failed: bool = False) -> None:
        """The update is handled (or given up): its content goes; its id, and which worker handled
        it (``claimed_by``), stay until purged."""
        params = {"p_update": update_id, "p_state": "failed" if failed else "done", "p_now": self._db.clock()}
        await self._db.run(lambda connection: changed_now(connection, _DONE, params))

    async def retry_later(self, update_id: int, worker: str, delay: timedelta) -> None:
        """Handling failed before it could start (e.g. the database was away): try again after ``delay``
        (the chat waits, so its order holds)."""
        stmt = (
            update(InboxEntry)
            .where(InboxEntry.update_id == update_id, InboxEntry.claimed_by == worker)
            .values(claimed_by=None, claimed_until=self._db.clock() + delay)
        )
        await self._db.run(lambda connection: changed_now(connection, stmt))

    async def release(self, worker: str | None = None) -> int:
        """Give up the leases of ``worker`` (a clean stop), or of everyone (``None``: at the start of
        the only process on SQLite, whose predecessor is gone); they are claimed again first."""
        stmt = update(InboxEntry).where(InboxEntry.state == "pending", InboxEntry.claimed_by.is_not(None))
        if worker is not None:
            stmt = stmt.where(InboxEntry.claimed_by == worker)
        async with self._db.session() as session, session.begin():
            return await changed(session, stmt.values(claimed_by=None, claimed_until=None))

    async def purge(self, *, now: datetime, done_older_than: timedelta) -> int:
        """Delete the ids of updates finished before ``now - done_older_than``."""
        aware(now, "now")
        stmt = delete(InboxEntry).where(
            InboxEntry.state != "pending", InboxEntry.done_at < now - done_older_than
        )
        async with self._db.session() as session, session.begin():
            return await changed(session, stmt)

    async def counts(self) -> dict[str, int]:
        """How many updates are pending, done and failed."""
        stmt = select(InboxEntry.state, func.count()).group_by(InboxEntry.state)
        async with self._db.session() as session, session.begin():
            found = {state: int(count) for state, count in (await session.execute(stmt)).all()}
        return {state: found.get(state, 0) for state in ("pending", "done", "failed")}
