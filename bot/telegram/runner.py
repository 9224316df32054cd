"""Running the bot: the application, the inbox and the intake together, in production and in tests.

``serving(application)`` is what ``python -m bot run`` does around ``build_application``: open the
services (``post_init``), start the inbox workers, take updates (long polling or webhook, see
``bot/telegram/intake.py``), and on the way out finish the updates in hand and close everything.
Tests use it in-process in place of python-telegram-bot's Updater.

Across workers on one PostgreSQL database, one process leads: it polls Telegram (or registers the
webhook) and runs the periodic jobs (reminders, retention); the others only handle updates, and one
of them takes over within seconds when the leader goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .inbox import Inbox
from .intake import Leadership, Poller, WebhookServer

if TYPE_CHECKING:
    from telegram.ext import Application

    from ..settings import Settings

__all__ = ["READY", "run_bot", "serving"]

logger = logging.getLogger(__name__)

# Printed on stderr once the bot takes updates (tests/botapi/process.py waits for it).
READY = "The bot is running"
# Finished updates are kept (ids only) this long, so that a redelivered one is recognised.
DONE_RETENTION = timedelta(days=1)
# How often a worker that does not lead tries to; how often the leader purges finished updates.
LEAD_INTERVAL = 5.0
# How soon a worker tries again when the database did not answer the leadership check.
LEAD_RETRY = 1.0
PURGE_INTERVAL = 3600.0


class _Leader:
    """Becomes the leader when it can, and starts or stops what only the leader does."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        inbox: Inbox,
        leadership: Leadership,
        poller: Poller | None,
        webhook: WebhookServer | None,
    ) -> None:
        self.application = application
        self.inbox = inbox
        self.leadership = leadership
        self.poller = poller
        self.webhook = webhook
        self.leading = False
        self.registered = False
        self._purged = 0.0
        self.checked = True  # whether the last check got an answer from the database

    def _jobs(self, run: bool) -> None:
        queue = self.application.job_queue
        if queue is None or not queue.scheduler.running:
            return
        if run:
            queue.scheduler.resume()
        else:
            queue.scheduler.pause()

    async def step(self) -> None:
        try:
            leading = await self.leadership.acquire()
            self.checked = True
        except Exception as exc:
            logger.warning("leadership check failed (%s)", type(exc).__name__)
            leading, self.checked = False, False
        if leading and not self.leading:
            logger.info("this worker leads: it takes Telegram's updates and runs the periodic jobs")
            if self.poller is not None:
                self.poller.start()
            self._jobs(run=True)
        elif self.leading and not leading:
            logger.warning("this worker no longer leads")
            if self.poller is not None:
                await self.poller.stop()
            self._jobs(run=False)
            self.registered = False
        self.leading = leading
        if not leading:
            return
        if self.webhook is not None and not self.registered:
            try:
                await self.webhook.register(self.application.bot)
                self.registered = True
            except Exception as exc:
                logger.warning("setting the webhook failed (%s); trying again", type(exc).__name__)
        if time.monotonic() - self._purged > PURGE_INTERVAL:
            with contextlib.suppress(Exception):
                now = self.inbox.storage.clock()
                await self.inbox.storage.inbox.purge(now=now, done_older_than=DONE_RETENTION)
                self._purged = time.monotonic()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(LEAD_INTERVAL if self.checked else LEAD_RETRY)
            await self.step()

    async def stop(self) -> None:
        if self.poller is not None:
            await self.poller.stop()
        await self.leadership.release()
        self.leading = False


@contextlib.asynccontextmanager
async def serving(
    application: Application[Any, Any, Any, Any, Any, Any],
    *,
    concurrency: int | None = None,
    worker: str | None = None,
) -> AsyncIterator[Inbox]:
    """Run ``application`` (built by ``build_application``) with the durable inbox until the block ends.

    Polling or webhook as ``settings.telegram.mode`` says; ``concurrency``: chats handled at once
    (``settings.telegram.concurrency`` by default).
    """
    settings: Settings = application.bot_data.settings
    async with application:
        if application.post_init is not None:
            await application.post_init(application)
        storage = application.bot_data.storage
        leadership = Leadership(storage)
        inbox = Inbox(
            application,
            storage,
            worker=worker,
            concurrency=concurrency or settings.telegram.concurrency,
            idle=0.25 if leadership.shared else 1.0,
        )
        webhook = WebhookServer(settings, inbox) if settings.telegram.mode == "webhook" else None
        poller = Poller(application.bot, inbox) if webhook is None else None
        await application.start()
        leader = _Leader(application, inbox, leadership, poller, webhook)
        leader._jobs(run=False)  # until this process leads
        await inbox.start(single_process=not leadership.shared)
        lead: asyncio.Task[None] | None = None
        try:
            if webhook is not None:
                webhook.start()
            await leader.step()
            lead = asyncio.create_task(leader.run(), name="inbox-leader")
            yield inbox
        finally:
            if lead is not None:
                lead.cancel()
                await asyncio.gather(lead, return_exceptions=True)
            await leader.stop()
            if webhook is not None:
                await webhook.stop()
            await inbox.stop()
            await application.stop()
    if application.post_shutdown is not None:
        await application.post_shutdown(application)


async def _serve_forever(settings: Settings) -> int:
    from .app import build_application

    application = build_application(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serving(application) as inbox:
        print(f"{READY} ({settings.telegram.mode}, worker {inbox.worker}).", file=sys.stderr, flush=True)
        await stop.wait()
    return 0


def run_bot(settings: Settings) -> int:
    """Run the bot (long polling, or a webhook server) until SIGINT or SIGTERM."""
    return asyncio.run(_serve_forever(settings))
