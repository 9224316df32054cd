"""Updates in: long polling or a webhook, each storing into the inbox before Telegram is told; and
the one process (across workers) that polls Telegram and runs the periodic jobs.

- Polling: our own ``getUpdates`` loop. A batch is stored, and only then does the next ``getUpdates``
  carry the offset that tells Telegram the batch arrived; a crash in between means Telegram sends it
  again, and the inbox recognises what it already has.
- Webhook: a small tornado server (python-telegram-bot's ``webhooks`` extra) checks Telegram's secret
  token, stores the update and only then answers 200; if storing fails it answers 500 and Telegram
  retries.
- Leadership: on PostgreSQL a session-level advisory lock (freed by the server the moment the holding
  process dies); on SQLite, the only process leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from typing import TYPE_CHECKING, Any

import tornado.httpserver
import tornado.netutil
import tornado.web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError

from .inbox import stop_requested

if TYPE_CHECKING:
    from telegram import Bot

    from ..settings import Settings
    from ..storage import Storage
    from .inbox import Inbox

__all__ = ["Leadership", "Poller", "WebhookServer"]

logger = logging.getLogger(__name__)

# pg_advisory_lock key of "the leader": polls getUpdates (or sets the webhook) and runs the jobs.
LEADER_LOCK = 0x1B7E_6A11
# Seconds a long poll may take beyond its own timeout before the connection counts as lost.
READ_MARGIN = 5.0


def _is_update(item: Any) -> bool:
    """Whether ``item`` (JSON from Telegram) is an update: an object with an integer ``update_id``."""
    return isinstance(item, dict) and isinstance(item.get("update_id"), int)


class Leadership:
    """Whether this process is the one that polls Telegram and runs the periodic jobs."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._connection: AsyncConnection | None = None

    @property
    def shared(self) -> bool:
        """True on PostgreSQL, where other workers may share the database."""
        return self.storage.engine.dialect.name == "postgresql"

    async def acquire(self) -> bool:
        """Try to become (or check that this process still is) the leader."""
        if not self.shared:
            return True
        if self._connection is not None:
            try:  # the lock lives as long as this connection
                await self._connection.execute(text("SELECT 1"))
                await self._connection.commit()
                return True
            except Exception:  # the connection broke (e.g. the server restarted): the lock went with it
                await self.release()
            # Take it again at once if nobody else has; else this worker stops polling.
        connection = await self.storage.engine.connect()
        try:
            lock = text("SELECT pg_try_advisory_lock(:key)")
            held = bool(await connection.scalar(lock, {"key": LEADER_LOCK}))
            await connection.commit()  # a session lock outlives the transaction; no idle transaction
        except BaseException:
            await connection.close()
            raise
        if not held:
            await connection.close()
            return False
        self._connection = connection
        return True

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LEADER_LOCK})
                await connection.commit()
            with contextlib.suppress(Exception):
                await connection.close()


class Poller:
    """Long polling into the inbox: a batch is stored before the next getUpdates confirms it."""

    def __init__(self, bot: Bot, inbox: Inbox, *, timeout: int = 10) -> None:
        self.bot = bot
        self.inbox = inbox
        self.timeout = timeout
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="inbox-poller")

    async def stop(self) -> None:
        """Stop at once; an unconfirmed batch is sent again by Telegram to whoever polls next."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        # Without an offset Telegram returns what is not confirmed yet: after a crash, the batch
        # that was being stored comes again (and what the inbox already has is skipped).
        offset: int | None = None
        failures = 0
        while True:
            try:
                # The updates as Telegram sent them (JSON): they are stored, and only the inbox turns
                # one into an Update when it is handled, not every update of every batch here too.
                result = await self.bot.do_api_request(
                    "getUpdates",
                    api_kwargs={
                        "offset": offset,
                        "timeout": self.timeout,
                        "allowed_updates": list(Update.ALL_TYPES),
                    },
                    read_timeout=self.timeout + READ_MARGIN,
                )
            except InvalidToken:
                logger.critical("Telegram refused the bot token; polling stops")
                return
            except (NetworkError, Conflict, TelegramError) as exc:
                if stop_requested():
                    raise asyncio.CancelledError from exc
                failures += 1
                # python-telegram-bot's own wording (e.g. "Pool timeout"), never a person's text.
                logger.warning("getUpdates failed (%s: %s); retrying", type(exc).__name__, exc.message)
                await asyncio.sleep(min(failures, 10))
                continue
            failures = 0
            updates = result if isinstance(result, list) else []
            batch = [u for u in updates if _is_update(u)]
            if len(batch) < len(updates):
                logger.error(
                    "getUpdates returned %d items that are not updates; skipped", len(updates) - len(batch)
                )
            if not batch:
                continue
            await self._store(batch)
            offset = max(u["update_id"] for u in batch) + 1

    async def _store(self, batch: list[dict[str, Any]]) -> None:
        failures = 0
        while True:  # the offset does not move until the batch is stored
            try:
                await self.inbox.store(batch)
                return
            except Exception as exc:
                if stop_requested():
                    raise asyncio.CancelledError from exc
                failures += 1
                logger.warning("storing %d updates failed (%s); retrying", len(batch), type(exc).__name__)
                await asyncio.sleep(min(0.5 * failures, 5.0))


class _WebhookHandler(tornado.web.RequestHandler):
    def initialize(self, inbox: Inbox, secret: str) -> None:
        self.inbox = inbox
        self.secret = secret

    async def post(self) -> None:
        token = self.request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(token.encode(), self.secret.encode()):
            raise tornado.web.HTTPError(403)
        try:
            update = json.loads(self.request.body)
            if not _is_update(update):
                raise ValueError("not an update")
        except ValueError:
            raise tornado.web.HTTPError(400) from None
        try:
            await self.inbox.store([update])
        except Exception as exc:  # Telegram retries what was not answered with 200
            logger.warning("storing a webhook update failed (%s)", type(exc).__name__)
            raise tornado.web.HTTPError(500) from None
        self.set_status(200)
        self.finish()


class WebhookServer:
    """Receives Telegram's POSTs on ``telegram.listen:port`` at the path of ``webhook_url``."""

    def __init__(self, settings: Settings, inbox: Inbox) -> None:
        from .app import webhook_options  # the one reading of the webhook settings

        self.options = webhook_options(settings)  # raises without a URL and a secret token
        self.path = "/" + str(self.options["url_path"])
        self.secret = str(self.options["secret_token"])
        self.inbox = inbox
        self._server: tornado.httpserver.HTTPServer | None = None

    def start(self) -> None:
        app = tornado.web.Application(
            [(self.path, _WebhookHandler, {"inbox": self.inbox, "secret": self.secret})]
        )
        sockets = tornado.netutil.bind_sockets(self.options["port"], self.options["listen"])
        self._server = tornado.httpserver.HTTPServer(app, xheaders=True)
        self._server.add_sockets(sockets)

    async def register(self, bot: Bot) -> None:
        """Tell Telegram where to send updates (the leader does, once it leads)."""
        await bot.set_webhook(
            self.options["webhook_url"],
            secret_token=self.secret,
            allowed_updates=self.options["allowed_updates"],
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None
