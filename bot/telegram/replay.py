"""Idempotent handling: what the bot sent for an update is recorded, and a replay does not send it again.

While an update is handled (``handling`` is set for its task), every Bot API call that changes
something and succeeds is recorded in the inbox as one step: the method and the ids Telegram
returned (message id, chat id and type, topic id and name — never text). When the same update is
handled again after a crash, its recorded steps are answered from the record, in order, without
calling Telegram; from the first call that differs from the record on, calls are real again.

This sits at the bottom of python-telegram-bot's HTTP path (a ``BaseRequest``): every send, whatever
layer above made it (rate limiter, retries, the delivery layer), passes here once per attempt, and
only attempts that succeeded are recorded. A send whose answer arrived after the last record was
written is sent again: that is the one duplicate a crash can cause per update being answered then.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from telegram.request import HTTPXRequest, RequestData

__all__ = ["Handling", "ReplayingRequest", "handling", "minimal"]

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
# Reads, and calls that are harmless to repeat: never recorded, always made.
UNRECORDED = frozenset(
    """
    getme getupdates getchat getchatmember getchatadministrators getchatmembercount getfile
    getmycommands setmycommands getwebhookinfo setwebhook deletewebhook sendchataction
    getuserprofilephotos getforumtopiciconstickers logout close
    """.split()
)
# What of a result is kept: enough for the handler to go on (ids), nothing anyone wrote.
KEPT = ("message_id", "message_thread_id", "date", "is_topic_message", "name", "icon_color")


def minimal(result: Any) -> Any:
    """The ids of a Bot API result (a Message, MessageId, ForumTopic, a list of them, or True)."""
    if isinstance(result, list):
        return [minimal(item) for item in result]
    if not isinstance(result, dict):
        return result
    kept = {key: result[key] for key in KEPT if key in result}
    chat = result.get("chat")
    if isinstance(chat, dict):
        kept["chat"] = {"id": chat.get("id"), "type": chat.get("type")}
    return kept


class Handling:
    """One update being handled: the steps an earlier attempt recorded, and the steps of this one."""

    def __init__(
        self,
        update_id: int,
        earlier: Sequence[JSON],
        record: Callable[[int, list[JSON]], Awaitable[None]],
    ) -> None:
        self.update_id = update_id
        self.earlier = list(earlier)
        self.steps: list[JSON] = []
        self.replayed = 0
        self._record = record

    def recorded(self, method: str) -> Any | None:
        """The recorded result of this call if an earlier attempt made it (it then counts as a step)."""
        step = len(self.steps)
        if step < len(self.earlier) and self.earlier[step].get("m") == method:
            self.steps.append(self.earlier[step])
            self.replayed += 1
            return self.earlier[step].get("r")
        self.earlier = []  # the handling went another way: from here on, every call is real
        return None

    async def sent(self, method: str, payload: bytes) -> None:
        """A call succeeded: record it (a failure to record is logged; the send itself stands)."""
        try:
            result = json.loads(payload).get("result")
        except ValueError:
            result = None
        self.steps.append({"m": method, "r": minimal(result)})
        try:
            await self._record(self.update_id, self.steps)
        except Exception as exc:  # the message went out; only a later replay could repeat it
            logger.warning("could not record a send of update %s (%s)", self.update_id, type(exc).__name__)


handling: contextvars.ContextVar[Handling | None] = contextvars.ContextVar("handling", default=None)


class ReplayingRequest(HTTPXRequest):
    """python-telegram-bot's HTTP request, recording and replaying the steps of the update in hand."""

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        write_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        connect_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        pool_timeout: Any = HTTPXRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        current = handling.get()
        api_method = url.rsplit("/", 1)[-1].lower()
        recording = current is not None and api_method not in UNRECORDED
        if recording and current is not None:
            result = current.recorded(api_method)
            if result is not None:
                return 200, json.dumps({"ok": True, "result": result}).encode()
        status, payload = await super().do_request(
            url, method, request_data, read_timeout, write_timeout, connect_timeout, pool_timeout
        )
        if recording and current is not None and status == 200:
            await current.sent(api_method, payload)
        return status, payload
