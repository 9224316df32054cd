"""The one layer everything the bot sends goes through: flood limits, retries, and what failed.

Every Bot API request the application makes (``message.reply_text`` as much as ``bot.send_message``)
passes python-telegram-bot's rate limiter, and each attempt it makes passes ``Delivery.guard``:

- ``RateLimiter``: PTB's ``AIORateLimiter`` (aiolimiter) set to Telegram's limits — about 30 messages a
  second overall, 20 a minute into one group and (added here) about one a second into one private
  chat, on average over 20 messages (Telegram allows short bursts). Only requests that post a
  message are throttled. A 429 halts every request for its ``retry_after`` and is retried, at most
  ``max_retries`` times.
- ``Delivery.guard``: a person who blocked the bot is not called at all (they are marked in storage
  on the first 403, and their open case is closed through ``on_blocked``); a ``retry_after`` given for
  a chat is waited out before anything else goes there (the apology after an error included); network
  errors, timeouts and 5xx are retried with backoff, a bounded number of times.
- ``Delivery.send`` / ``reply`` / ``copy`` / ``edit_markup`` / ``typing`` (``context.delivery``): what
  handlers send, fixed before Telegram would refuse it — long plain text split at 4,096 characters, a
  label that would push a caption over 1,024 sent apart — and ``Undelivered`` with the reason
  (``Failure``: the person blocked the bot, Telegram refused the message, or could not be reached)
  when a send finally fails. "Typing…" never holds up or replaces an answer.

A replayed update does not send again what was sent: that is recorded beneath this layer, on PTB's
HTTP path (``replay.py``), once per attempt of every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from aiolimiter import AsyncLimiter
from telegram import Bot, InlineKeyboardMarkup, Message, MessageId, ReplyParameters, Update
from telegram.constants import ChatAction, ChatMemberStatus, ChatType
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import AIORateLimiter, ApplicationHandlerStop

from .ui import split_text

if TYPE_CHECKING:
    from ..storage import Storage
    from .context import BotContext

__all__ = [
    "MAX_CAPTION",
    "Delivery",
    "Failure",
    "RateLimiter",
    "Typing",
    "Undelivered",
    "chat_member_changed",
    "failure_of",
    "report",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_CAPTION = 1024
# The error a send to a person who blocked the bot gets without a call to Telegram.
SKIPPED = "Forbidden: bot was blocked by the user (known, not sent)"
# Requests that post a new message: the ones Telegram's flood limits count.
_COPIES = frozenset({"copyMessage", "copyMessages", "forwardMessage", "forwardMessages"})


def _posts(endpoint: str) -> bool:
    return endpoint in _COPIES or (endpoint.startswith("send") and endpoint != "sendChatAction")


def _utf16(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


class RateLimiter(AIORateLimiter):
    """``AIORateLimiter`` with Telegram's limits, plus about one message a second per private chat."""

    def __init__(
        self,
        *,
        per_second: float = 30,
        group_per_minute: float = 20,
        chat_per_second: float = 1,
        chat_burst: int = 20,
        max_retries: int = 5,
    ) -> None:
        super().__init__(
            overall_max_rate=per_second,
            overall_time_period=1,
            group_max_rate=group_per_minute,
            group_time_period=60,
            max_retries=max_retries,
        )
        self._chat_burst, self._chat_period = chat_burst, chat_burst / chat_per_second
        self._chats: dict[int, AsyncLimiter] = {}
        # Retries network errors and knows who blocked the bot (set when the application is built).
        self.delivery: Delivery | None = None

    def _chat(self, chat_id: int) -> AsyncLimiter:
        if len(self._chats) > 512:  # forget idle chats, as AIORateLimiter does for groups
            for key, limiter in list(self._chats.items()):
                if limiter.has_capacity(limiter.max_rate):
                    del self._chats[key]
        if chat_id not in self._chats:
            self._chats[chat_id] = AsyncLimiter(self._chat_burst, self._chat_period)
        return self._chats[chat_id]

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        given = data.get("chat_id")
        chat_id = given if isinstance(given, int) else None
        if not _posts(endpoint):
            data = {}  # not throttled; still waits out a retry_after, and retries after a 429
        delivery = self.delivery
        if delivery is not None:  # each attempt the limiter makes goes through the delivery layer
            original = callback

            async def guarded(*a: Any, **kw: Any) -> bool | dict[str, Any] | list[dict[str, Any]]:
                return await delivery.guard(chat_id, functools.partial(original, *a, **kw))

            callback = guarded
        limited = super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
        if chat_id is not None and chat_id > 0 and data:
            async with self._chat(chat_id):
                return await limited
        return await limited


class Failure(enum.StrEnum):
    """Why something was not delivered."""

    BLOCKED = "blocked"  # the person blocked the bot (or deleted their account)
    REFUSED = "refused"  # Telegram refused the message as it is (400)
    UNREACHABLE = "unreachable"  # network, server or flood-limit errors, after the retries


def failure_of(error: TelegramError, chat_id: int | None) -> Failure:
    """Why a request about ``chat_id`` finally failed."""
    if isinstance(error, Forbidden) and chat_id is not None and chat_id > 0:
        return Failure.BLOCKED
    if isinstance(error, RetryAfter | NetworkError) and not isinstance(error, BadRequest):
        return Failure.UNREACHABLE
    return Failure.REFUSED


def report(error: BaseException | None, chat_id: int | None) -> bool:
    """Log why a handler stopped (the error type, never a text); False when nothing more should be
    sent: the person has blocked the bot. Telegram unreachable after the retries gets no traceback."""
    if isinstance(error, Undelivered | TelegramError):
        failure = error.failure if isinstance(error, Undelivered) else failure_of(error, chat_id)
        if failure is Failure.BLOCKED:
            logger.info("handler stopped: the person has blocked the bot")
            return False
        if failure is Failure.UNREACHABLE:
            logger.warning("handler stopped: Telegram could not be reached (%s)", type(error).__name__)
            return True
    logger.error("handler failed: %s", type(error).__name__, exc_info=error)
    return True


class Unavailable(NetworkError):
    """Telegram asks to wait longer than the delivery layer waits (``Delivery.longest_wait``)."""


class Undelivered(Exception):
    """A request that finally failed; ``error`` is the Telegram error's type name (never a text)."""

    def __init__(self, failure: Failure, error: str, chat_id: int | None = None) -> None:
        super().__init__(f"{failure}: {error}")
        self.failure, self.error, self.chat_id = failure, error, chat_id


class Delivery:
    """Sends to Telegram for the whole application (``context.delivery``); see the module docstring."""

    def __init__(
        self,
        bot: Bot,
        *,
        attempts: int = 4,
        backoff: float = 0.5,
        longest_wait: float = 60.0,
    ) -> None:
        self.bot = bot
        self.attempts, self.backoff, self.longest_wait = attempts, backoff, longest_wait
        self.storage: Storage | None = None
        # Called once when a person turns out to have blocked the bot (closes their open case).
        self.on_blocked: Callable[[int], Awaitable[None]] | None = None
        self.blocked: set[int] = set()
        # Until when (event-loop time) Telegram asked not to send to a chat (None: to anyone).
        self._quiet: dict[int | None, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def open(self, storage: Storage) -> None:
        """Use ``storage`` for the people who blocked the bot."""
        self.storage = storage
        self.blocked = await storage.blocked_chats()

    async def aclose(self) -> None:
        """Wait for chat actions still on their way."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- beneath every request, and what callers learn -------------------------------------------

    async def guard(self, chat_id: int | None, call: Callable[[], Awaitable[T]]) -> T:
        """One attempt of a Bot API request, as the rate limiter makes it: a person who blocked the bot
        is not called; a ``retry_after`` Telegram gave for this chat (or for no chat in particular) is
        waited out first; network errors and timeouts are retried with backoff; a 403 from a person
        marks them. Raises the Telegram error that finally stands (the limiter retries a 429)."""
        private = chat_id is not None and chat_id > 0
        if private and chat_id is not None and await self._is_blocked(chat_id):
            raise Forbidden(SKIPPED)
        loop = asyncio.get_running_loop()
        for attempt in range(1, self.attempts + 1):
            wait = max(self._quiet.get(chat_id, 0.0), self._quiet.get(None, 0.0)) - loop.time()
            if wait > self.longest_wait:
                raise Unavailable(f"Telegram asks to wait {math.ceil(wait)} s more")
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                return await call()
            except RetryAfter as exc:
                seconds = exc._retry_after.total_seconds()
                if len(self._quiet) > 1024:  # forget the waits that are over
                    self._quiet = {k: v for k, v in self._quiet.items() if v > loop.time()}
                self._quiet[chat_id] = max(self._quiet.get(chat_id, 0.0), loop.time() + seconds)
                logger.info("flood limit: Telegram asks to wait %s s", seconds)
                if seconds > self.longest_wait:
                    raise Unavailable(f"Telegram asks to wait {seconds} s") from exc
                raise
            except Forbidden:
                if private and chat_id is not None:
                    await self._mark_blocked(chat_id)
                raise
            except BadRequest:
                raise
            except NetworkError as exc:  # timeouts, dropped connections, 5xx
                if attempt == self.attempts:
                    raise
                logger.info("network error (%s), try %d of %d", type(exc).__name__, attempt, self.attempts)
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    async def request(self, chat_id: int | None, call: Callable[[], Awaitable[T]]) -> T:
        """Make a request about ``chat_id`` (None: no chat); raises ``Undelivered`` (with the
        reason) when it finally fails."""
        try:
            return await call()
        except TelegramError as exc:
            raise Undelivered(failure_of(exc, chat_id), type(exc).__name__, chat_id) from exc

    # -- who blocked the bot -----------------------------------------------------------------------

    async def _is_blocked(self, chat_id: int) -> bool:
        if chat_id not in self.blocked:
            return False
        if self.storage is not None and not await self.storage.is_blocked(chat_id):
            self.blocked.discard(chat_id)  # unblocked meanwhile (seen by another worker)
            return False
        return True

    async def _mark_blocked(self, chat_id: int) -> None:
        logger.info("a person has blocked the bot; their later messages are skipped")
        await self.set_blocked(chat_id, True)

    async def set_blocked(self, chat_id: int, blocked: bool) -> None:
        """Record that a person blocked (or unblocked) the bot; blocking closes their open case."""
        if blocked:
            self.blocked.add(chat_id)
        else:
            self.blocked.discard(chat_id)
        if self.storage is not None:
            await self.storage.set_blocked(chat_id, blocked)
        if blocked and self.on_blocked is not None:
            try:
                await self.on_blocked(chat_id)
            except Exception:  # closing the case must not hide the reason it was closed
                logger.exception("could not close the case of a person who blocked the bot")

    # -- what handlers send ------------------------------------------------------------------------

    async def send(
        self,
        chat_id: int,
        text: str,
        *,
        html: bool = False,
        markup: InlineKeyboardMarkup | None = None,
        thread_id: int | None = None,
        reply_to: int | None = None,
        preview: bool = True,
    ) -> Message:
        """A text message (HTML if ``html``); plain text over 4,096 characters goes as several, the
        buttons under the last. Returns the last message."""
        chunks = [text] if html else split_text(text) or [text]
        sent: list[Message] = []
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            reply = (
                ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to and i == 0 else None
            )
            call = functools.partial(
                self.bot.send_message,
                chat_id,
                chunk,
                parse_mode="HTML" if html else None,
                reply_markup=markup if last else None,
                message_thread_id=thread_id,
                reply_parameters=reply,
                disable_web_page_preview=None if preview else True,
            )
            sent.append(await self.request(chat_id, call))
        return sent[-1]

    async def reply(
        self, message: Message, text: str, markup: InlineKeyboardMarkup | None = None, *, html: bool = False
    ) -> Message:
        """Answer ``message`` in its chat (and topic); in groups as a reply to it."""
        private = message.chat.type == ChatType.PRIVATE
        return await self.send(
            message.chat_id,
            text,
            html=html,
            markup=markup,
            thread_id=message.message_thread_id if message.is_topic_message else None,
            reply_to=None if private else message.message_id,
        )

    async def copy(
        self,
        chat_id: int,
        message: Message,
        *,
        thread_id: int | None = None,
        label: str | None = None,
        captioned: bool = True,
        joiner: str = "\n",
    ) -> MessageId:
        """A copy of ``message``; ``label`` goes into its caption (``captioned``: the message can have
        one), before the caption it had. A label that would push the caption over 1,024 characters, or
        that the message cannot carry, is sent apart, just before."""
        caption = message.caption or ""
        if label and captioned and _utf16(label + joiner + caption) <= MAX_CAPTION:
            new_caption: str | None = label + (joiner + caption if caption else "")
            label = None
        else:
            new_caption = None
        if label:
            await self.send(chat_id, label, thread_id=thread_id)

        async def copy() -> MessageId:
            return await message.copy(chat_id, message_thread_id=thread_id, caption=new_caption)

        return await self.request(chat_id, copy)

    async def edit_markup(self, chat_id: int, message_id: int, markup: InlineKeyboardMarkup | None) -> None:
        """Change (None: remove) the buttons of a message; "not modified" counts as done."""
        try:
            await self.request(
                chat_id, lambda: self.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=markup)
            )
        except Undelivered as exc:
            if not (exc.failure is Failure.REFUSED and "not modified" in str(exc.__cause__)):
                raise

    def typing(self, chat_id: int, after: float = 0.0) -> Typing:
        """Show "typing…" without holding up the answer: in the background, and its failures (a 429
        included) never reach the person. With ``after``, only once the answer has taken that long:
        ``cancel()`` the returned handle when the answer is ready, and a quick answer costs no call."""
        handle = Typing()

        async def send() -> None:
            if after > 0:
                await asyncio.sleep(after)
            handle.started = True
            with contextlib.suppress(TelegramError, Undelivered):
                if not await self._is_blocked(chat_id):
                    await self.bot.send_chat_action(chat_id, ChatAction.TYPING)

        task = handle.task = asyncio.get_running_loop().create_task(send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return handle


class Typing:
    """A "typing…" on its way (``Delivery.typing``): ``cancel()`` stops it unless it is being sent."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.started = False

    def cancel(self) -> None:
        if self.task is not None and not self.started:
            self.task.cancel()


async def chat_member_changed(update: Update, context: BotContext) -> None:
    """A person blocked the bot (their case closes) or unblocked it (they are sent to again); the
    update goes no further."""
    change = update.my_chat_member
    if change is not None and change.chat.type == ChatType.PRIVATE:
        status = change.new_chat_member.status
        if status in (ChatMemberStatus.BANNED, ChatMemberStatus.MEMBER):
            await context.delivery.set_blocked(change.chat.id, status == ChatMemberStatus.BANNED)
    raise ApplicationHandlerStop
