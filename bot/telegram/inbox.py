"""The update pipeline: Telegram → durable inbox → workers → python-telegram-bot's handlers.

python-telegram-bot runs without its own Updater (``Application.builder().updater(None)``); updates
reach ``application.process_update`` only through the inbox (``storage.inbox``):

1. Intake (``bot/telegram/intake.py``): long polling stores each batch before the next
   ``getUpdates`` confirms it; the webhook stores an update before answering 200.
2. ``Inbox`` claims stored updates and handles them: up to ``concurrency`` chats at a time, one chat
   (or one staff topic) strictly in order, also across worker processes sharing PostgreSQL. An
   update is marked done once handled; a crash leaves it pending, and its lease runs out (at once on
   SQLite, where the next start is the only process), so it is handled first after a restart.
3. What was sent for an update is recorded beneath every layer that sends, on python-telegram-bot's
   HTTP path (``bot/telegram/replay.py``), so a replay does not send it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from telegram import Update

from ..storage import InboxItem, Storage
from . import replay

if TYPE_CHECKING:
    from telegram.ext import Application

__all__ = ["Inbox", "chat_key", "stop_requested", "worker_name"]

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
MESSAGE_FIELDS = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_message",
    "edited_business_message",
)
CHAT_FIELDS = (
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "message_reaction",
    "message_reaction_count",
    "chat_boost",
    "removed_chat_boost",
)
USER_FIELDS = ("inline_query", "chosen_inline_result", "shipping_query", "pre_checkout_query", "poll_answer")
# An update that could not be handled this many times is given up (logged; the chat goes on).
MAX_ATTEMPTS = 5


def worker_name() -> str:
    """This process, as it appears in ``claimed_by``: host and process id."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


def _message_key(message: JSON) -> str:
    chat = message.get("chat") or {}
    thread = message.get("message_thread_id")
    if thread is not None and (message.get("is_topic_message") or chat.get("is_forum")):
        return f"{chat.get('id')}:{thread}"
    return str(chat.get("id"))


def _topic(key: str) -> tuple[int, int] | None:
    """(group chat id, thread id) of a topic's chat key, else None."""
    group, _, thread = key.partition(":")
    if not thread or not group.lstrip("-").isdigit() or not thread.isdigit():
        return None
    return int(group), int(thread)


def chat_key(update: JSON) -> str:
    """What must be handled in order: a chat (a private chat's id is its person's user id), or one
    topic of a forum group (``chat:thread``; ``Inbox.store`` puts a case's topic with its person).
    Button presses go with the message they belong to."""
    for field in MESSAGE_FIELDS:
        if isinstance(message := update.get(field), dict):
            return _message_key(message)
    if isinstance(query := update.get("callback_query"), dict):
        if isinstance(message := query.get("message"), dict):
            return _message_key(message)
        return str((query.get("from") or {}).get("id"))
    for field in CHAT_FIELDS:
        if isinstance(event := update.get(field), dict) and isinstance(event.get("chat"), dict):
            return str(event["chat"].get("id"))
    for field in USER_FIELDS:
        if isinstance(event := update.get(field), dict):
            user = event.get("from") or event.get("user") or {}
            return str(user.get("id"))
    return f"update:{update.get('update_id')}"


def stop_requested() -> bool:
    """Whether the running task has been cancelled. A retry loop checks it when it catches an error:
    a database driver interrupted mid-call may raise its own error instead of the cancellation, and
    retrying then would keep a stopped task alive (and whoever waits for it waiting for ever)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Inbox:
    """Claims stored updates and hands them to ``application.process_update``, chats in parallel,
    each chat in order. ``start()``, ``stop()``; ``store()`` for the intake."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        storage: Storage,
        *,
        worker: str | None = None,
        concurrency: int = 32,
        lease: timedelta = timedelta(seconds=60),
        idle: float = 0.25,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.application = application
        self.storage = storage
        self.worker = worker or worker_name()
        self.concurrency = concurrency
        self.lease = lease
        self.idle = idle
        self.handled = 0  # updates handled by this process (for tests and logs)
        self._running: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    async def store(self, updates: list[JSON]) -> int:
        """Store updates from Telegram (before Telegram is told they arrived); how many were new.

        What happens in a case's topic joins the queue of the case's person: a caseworker's reply,
        the person's answer to it and a press of the case card's buttons are handled in the order
        they came, as if the two chats were one."""
        keys = [chat_key(u) for u in updates]
        topics = {_topic(key) for key in keys} - {None}
        cases = await self.storage.inbox.case_chats(t for t in topics if t is not None) if topics else {}
        keyed = []
        for update, key in zip(updates, keys, strict=True):
            topic = _topic(key)
            person = cases.get(topic) if topic is not None else None
            keyed.append((int(update["update_id"]), key if person is None else str(person), update))
        new = await self.storage.inbox.add(keyed)
        self.wake()
        return new

    def wake(self) -> None:
        """Look for claimable updates now (something was stored, or a chat's update was finished)."""
        self._wake.set()

    async def start(self, *, single_process: bool) -> None:
        """Start claiming. ``single_process`` (SQLite): every lease left is a dead predecessor's."""
        if single_process:
            released = await self.storage.inbox.release()
            if released:
                logger.info("inbox: %d updates left unfinished by the last run are handled first", released)
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._dispatch(), name="inbox-dispatch"),
            asyncio.create_task(self._heartbeat(), name="inbox-heartbeat"),
        ]

    async def stop(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - a bounded shutdown
        """Stop claiming, let the updates in hand finish (at most ``timeout`` s), give back the rest."""
        self._stopping = True
        dispatch, heartbeat = self._tasks or (None, None)
        if dispatch is not None:  # first: nothing is claimed any more
            dispatch.cancel()
            await asyncio.gather(dispatch, return_exceptions=True)
        running = list(self._running.values())
        if running:
            _done, pending = await asyncio.wait(running, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if heartbeat is not None:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
        self._tasks = []
        with contextlib.suppress(Exception):
            await self.storage.inbox.release(self.worker)

    async def _dispatch(self) -> None:
        failures = 0
        while not self._stopping:
            self._wake.clear()
            free = self.concurrency - len(self._running)
            if free > 0:
                try:
                    items = await self.storage.inbox.claim(
                        self.worker, limit=free, lease=self.lease, busy=tuple(self._running)
                    )
                    failures = 0
                except Exception as exc:  # the database is away: try again, a little later each time
                    if stop_requested():
                        raise asyncio.CancelledError from exc
                    failures += 1
                    logger.warning("inbox: claiming failed (%s), retrying", type(exc).__name__)
                    await asyncio.sleep(min(0.5 * failures, 5.0))
                    continue
                for item in items:
                    task = asyncio.create_task(self._handle(item), name=f"update-{item.update_id}")
                    self._running[item.update_id] = task
                    task.add_done_callback(functools.partial(self._finished, item.update_id))
                if items and len(items) == free:
                    continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.idle):
                    await self._wake.wait()

    def _finished(self, update_id: int, _task: asyncio.Task[None]) -> None:
        self._running.pop(update_id, None)
        self.wake()  # the chat's next update may be claimed now

    async def _handle(self, item: InboxItem) -> None:
        if item.attempts > MAX_ATTEMPTS:  # it was claimed that often and never finished: the process
            # died each time it was handled; the chat goes on without it
            logger.error(
                "inbox: update %s never finished in %d attempts; given up", item.update_id, MAX_ATTEMPTS
            )
            await self._finish(item.update_id, failed=True)
            return
        current = replay.Handling(item.update_id, item.sent, self.storage.inbox.record_sent)
        replay.handling.set(current)  # in this task's own context
        try:
            update = Update.de_json(item.data, self.application.bot)
        except Exception as exc:
            logger.error("inbox: update %s is malformed (%s); skipped", item.update_id, type(exc).__name__)
            await self._finish(item.update_id, failed=True)
            return
        try:
            await self.application.process_update(update)
        except Exception as exc:  # process_update hands handler errors to the error handler itself
            failed = item.attempts >= MAX_ATTEMPTS
            logger.error(
                "inbox: update %s failed (%s), attempt %d%s",
                item.update_id,
                type(exc).__name__,
                item.attempts,
                ", given up" if failed else "",
            )
            if failed:
                await self._finish(item.update_id, failed=True)
            else:
                with contextlib.suppress(Exception):
                    delay = timedelta(seconds=min(2**item.attempts, 60))
                    await self.storage.inbox.retry_later(item.update_id, self.worker, delay)
            return
        if current.replayed:
            logger.info("inbox: update %s replayed; %d sends not repeated", item.update_id, current.replayed)
        self.handled += 1
        await self._finish(item.update_id)

    async def _finish(self, update_id: int, *, failed: bool = False) -> None:
        for attempt in range(5):  # the database may be briefly away; the lease covers the wait
            try:
                await self.storage.inbox.done(update_id, failed=failed)
                return
            except Exception as exc:
                logger.warning("inbox: marking update %s done failed (%s)", update_id, type(exc).__name__)
                await asyncio.sleep(0.5 * (attempt + 1))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            with contextlib.suppress(Exception):
                await self.storage.inbox.renew(self.worker, list(self._running), self.lease)
