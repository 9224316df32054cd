"""FakeBotAPI: a local Bot-API-compatible HTTP server (tornado) plus helpers to drive and inspect it."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx
import tornado.httpserver
import tornado.httputil
import tornado.netutil
import tornado.web

from .actors import Group, User
from .faults import DROP, Faults
from .methods import ApiError, BotAPIMethods, Params, bad, bot_api
from .world import JSON, SERVICE_FIELDS, Account, Chat

# Parameters that are always strings; every other form value is JSON-decoded when it parses
# (numbers, booleans, and the JSON-serialized objects PTB sends, such as reply_markup).
STRING_PARAMS = frozenset(
    """
    text caption name title description callback_query_id secret_token url parse_mode action
    language_code file_id photo document voice sticker emoji icon_custom_emoji_id inline_message_id
    business_connection_id message_effect_id ip_address short_description custom_title query
    switch_pm_text switch_pm_parameter
    """.split()
)
# Without allowed_updates, Telegram sends every update type except these.
OPT_IN_UPDATES = ("chat_member", "message_reaction", "message_reaction_count")
NOT_FOUND: JSON = {"ok": False, "error_code": 404, "description": "Not Found"}
UNAUTHORIZED: JSON = {"ok": False, "error_code": 401, "description": "Unauthorized"}


@dataclass
class Call:
    """One Bot API request the bot made: canonical method name, decoded params, result or error."""

    method: str
    params: JSON
    result: Any
    time: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True if Telegram would have answered ok."""
        return self.error is None


def _decode(name: str, value: Any) -> Any:
    if not isinstance(value, str) or name in STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def read_params(request: tornado.httputil.HTTPServerRequest) -> Params:
    """Parameters from the query string and a JSON, urlencoded or multipart body."""
    raw: JSON = {k: v[-1].decode() for k, v in request.query_arguments.items()}
    if request.headers.get("Content-Type", "").startswith("application/json") and request.body:
        body = json.loads(request.body)
        if not isinstance(body, dict):
            raise ValueError("JSON body must be an object")
        raw.update(body)
    else:
        raw.update({k: v[-1].decode() for k, v in request.body_arguments.items()})
    files = {name: (f[-1].filename, f[-1].body, f[-1].content_type) for name, f in request.files.items()}
    return Params({k: _decode(k, v) for k, v in raw.items()}, files)


class _JsonHandler(tornado.web.RequestHandler):
    def reply(self, status: int, body: str | JSON) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(body if isinstance(body, str) else json.dumps(body))


class _MethodHandler(_JsonHandler):
    """/bot<token>/<method>: runs the method as a task, cancelled if the client goes away."""

    def initialize(self, api: FakeBotAPI) -> None:
        self.api = api
        self.task: asyncio.Task[tuple[int, str]] | None = None
        self.gone = False

    async def get(self, token: str, method: str) -> None:
        if token != self.api.token:
            return self.reply(401, UNAUTHORIZED)
        try:
            params = read_params(self.request)
        except ValueError:
            return self.reply(
                400, {"ok": False, "error_code": 400, "description": "Bad Request: can't parse JSON"}
            )
        self.task = asyncio.ensure_future(self.api.execute(method, params))
        try:
            status, body = await self.task
        except asyncio.CancelledError:
            if self.gone:
                return None
            raise
        if status == DROP:  # an injected fault: the connection closes without an answer
            self.request.connection.close()  # type: ignore[union-attr]
            return None
        return self.reply(status, body)

    post = get

    def on_connection_close(self) -> None:
        self.gone = True
        if self.task is not None:
            self.task.cancel()


class _FileHandler(tornado.web.RequestHandler):
    """/file/bot<token>/<file_path>: the bytes of a stored file."""

    def initialize(self, api: FakeBotAPI) -> None:
        self.api = api

    def get(self, token: str, path: str) -> None:
        stored = next((f for f in self.api.world.files.values() if f.file_path == path), None)
        if token != self.api.token or stored is None:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", stored.mime_type)
        self.finish(stored.data)


class _NotFoundHandler(_JsonHandler):
    def prepare(self) -> None:
        self.reply(404, NOT_FOUND)


class FakeBotAPI(BotAPIMethods):
    """A fake Telegram Bot API on 127.0.0.1: ``async with FakeBotAPI(token) as api`` starts and stops it."""

    def __init__(
        self,
        token: str = "123456789:TEST-token",
        *,
        username: str = "fake_test_bot",
        first_name: str = "Test Bot",
        can_read_all_group_messages: bool = False,
        delay: float = 0.0,
    ) -> None:
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 123456789
        bot = Account(bot_id, first_name, username=username, is_bot=True)
        super().__init__(token, bot, can_read_all_group_messages=can_read_all_group_messages)
        # Seconds each Bot API call takes on the network (e.g. 0.08, Telegram from Europe): half on the
        # way in, half on the way back, without blocking other calls (they overlap as with Telegram).
        self.delay = delay
        self.calls: list[Call] = []
        self.faults = Faults()  # injected failures: 429, 403, 5xx, dropped connections (faults.py)
        self.updates: list[JSON] = []  # every update created, delivered or not yet
        self.pending: list[JSON] = []  # not yet confirmed (getUpdates) or delivered (webhook)
        self.polls_waiting = 0  # getUpdates requests waiting for updates now (long polling)
        self.webhook: JSON = {"url": ""}
        self.allowed_updates: list[str] = []
        self.port = 0
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(4_000_000_000_000_000)
        self._poll_generation = 0
        self._closing = False
        self._updates_changed = asyncio.Condition()
        self._calls_changed = asyncio.Condition()
        self._webhook_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: tornado.httpserver.HTTPServer | None = None
        self._http: httpx.AsyncClient | None = None
        self._methods = {
            name.lower(): name
            for name in dir(type(self))
            if getattr(getattr(type(self), name), "bot_api", False)
        }

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        app = tornado.web.Application(
            [
                (r"/bot([^/]+)/([A-Za-z0-9_]+)", _MethodHandler, {"api": self}),
                (r"/file/bot([^/]+)/(.+)", _FileHandler, {"api": self}),
            ],
            default_handler_class=_NotFoundHandler,
        )
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self._server = tornado.httpserver.HTTPServer(app)
        self._server.add_sockets(sockets)
        self._http = httpx.AsyncClient(trust_env=False, timeout=10)

    async def stop(self) -> None:
        """End long polls, stop webhook deliveries, close the server."""
        self._closing = True
        async with self._updates_changed:
            self._updates_changed.notify_all()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
        if self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)`` / ``Bot(base_url=...)``."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url(...)`` / ``Bot(base_file_url=...)``."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- request execution -------------------------------------------------------------------------

    async def execute(self, method: str, params: Params) -> tuple[int, str]:
        """Run a Bot API method, record the Call, return (HTTP status, JSON body)."""
        if self.delay:
            await asyncio.sleep(self.delay / 2)  # the request on its way
        name = self._methods.get(method.lower())
        result: Any = None
        error = None
        fault = self.faults.take(name or method, params.get("chat_id"))
        try:
            if fault is not None:  # an injected fault answers instead of the method (status DROP: none)
                status, payload = fault.answer()
                error = fault.description
            else:
                if name is None:
                    raise ApiError(404, "Not Found")
                result = getattr(self, name)(params)
                if inspect.isawaitable(result):
                    result = await result
                status, payload = 200, {"ok": True, "result": result}
        except ApiError as exc:
            result, error = None, exc.description
            status, payload = exc.code, {"ok": False, "error_code": exc.code, "description": exc.description}
        body = json.dumps(payload)
        recorded = dict(params)
        for field, (filename, data, content_type) in params.files.items():
            recorded[field] = {"upload": filename, "size": len(data), "mime_type": content_type}
        call = Call(name or method, recorded, copy.deepcopy(result), time.time(), error)
        async with self._calls_changed:
            self.calls.append(call)
            self._calls_changed.notify_all()
        if self.delay:
            await asyncio.sleep(self.delay / 2)  # the response on its way back
        return status, body

    # -- updates: polling and webhooks -------------------------------------------------------------

    @bot_api
    async def getUpdates(self, p: Params) -> list[JSON]:
        """Long polling: confirm updates below offset, wait up to timeout seconds for new ones."""
        if self.webhook["url"]:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
                "the webhook first",
            )
        if p.get("allowed_updates") is not None:
            self.allowed_updates = list(p["allowed_updates"])
        offset = int(p.get("offset") or 0)
        if offset > 0:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        elif offset < 0:
            self.pending = self.pending[offset:]
        limit = min(max(int(p.get("limit") or 100), 1), 100)
        timeout = max(float(p.get("timeout") or 0), 0.0)
        self._poll_generation += 1
        generation = self._poll_generation
        async with self._updates_changed:
            self.polls_waiting += 1
            self._updates_changed.notify_all()  # an older poll gets 409, as with two bot instances
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._updates_changed.wait_for(
                            lambda: bool(self.pending) or self._closing or generation != self._poll_generation
                        )
            finally:
                self.polls_waiting -= 1
        if generation != self._poll_generation:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            )
        return copy.deepcopy(self.pending[:limit])

    @bot_api
    def setWebhook(self, p: Params) -> bool:
        """Store url + secret_token; pending updates are then POSTed there."""
        url = str(p.get("url") or "")
        if not url:
            return self.deleteWebhook(p)
        if not re.match(r"https?://[^/\s]+", url):
            raise bad("bad webhook: Failed to resolve host: Name or service not known")
        secret = p.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad("secret token contains unallowed characters")
        if p.get("drop_pending_updates"):
            self.pending.clear()
        if p.get("allowed_updates") is not None:
            self.allowed_updates = list(p["allowed_updates"])
        self.webhook = {"url": url, "secret_token": secret, "max_connections": p.get("max_connections") or 40}
        self._spawn(self._flush_webhook())
        return True

    @bot_api
    def deleteWebhook(self, p: Params) -> bool:
        """Back to getUpdates; optionally drop pending updates."""
        self.webhook = {"url": ""}
        if p.get("drop_pending_updates"):
            self.pending.clear()
        return True

    @bot_api
    def getWebhookInfo(self, p: Params) -> JSON:
        """WebhookInfo (the secret token is never returned, as in Telegram)."""
        info = {k: v for k, v in self.webhook.items() if k != "secret_token" and v is not None}
        info.update(has_custom_certificate=False, pending_update_count=len(self.pending))
        if self.allowed_updates:
            info["allowed_updates"] = list(self.allowed_updates)
        return info

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush_webhook(self) -> None:
        """POST pending updates to the webhook in order; stop at the first failure (kept for later)."""
        async with self._webhook_lock:
            while self.pending and self.webhook["url"] and self._http is not None:
                update, secret = self.pending[0], self.webhook.get("secret_token")
                headers = {"Content-Type": "application/json"}
                if secret:
                    headers["X-Telegram-Bot-Api-Secret-Token"] = secret
                try:
                    response = await self._http.post(
                        self.webhook["url"], content=json.dumps(update), headers=headers
                    )
                    error = (
                        None
                        if response.is_success
                        else f"Wrong response from the webhook: {response.status_code}"
                    )
                except httpx.HTTPError as exc:
                    error = f"Connection failed: {exc!r}"
                if error:
                    self.webhook.update(last_error_date=int(time.time()), last_error_message=error)
                    return
                self.pending.remove(update)

    async def dispatch(self, body: JSON) -> JSON:
        """Queue an update (e.g. {"message": {...}}) for getUpdates, or POST it to the webhook."""
        update = {"update_id": next(self._update_ids), **copy.deepcopy(body)}
        self.updates.append(update)
        kind = next(iter(body))
        wanted = kind in self.allowed_updates if self.allowed_updates else kind not in OPT_IN_UPDATES
        if not wanted:  # Telegram drops updates of types the bot did not ask for
            return copy.deepcopy(update)
        self.pending.append(update)
        if self.webhook["url"]:
            await self._flush_webhook()
        else:
            async with self._updates_changed:
                self._updates_changed.notify_all()
        return copy.deepcopy(update)

    # -- world setup -------------------------------------------------------------------------------

    def user(
        self, user_id: int, first_name: str, language_code: str | None = "en", username: str | None = None
    ) -> User:
        """A user who has started the bot (private chat exists); updates the account if known."""
        account = self.world.account(user_id)
        account.first_name, account.language_code, account.username = first_name, language_code, username
        if user_id not in self.world.chats:
            self.world.chats[user_id] = Chat(user_id, "private", peer=account)
        return User(self, account)

    def forum(
        self, chat_id: int, title: str, members: dict[int, str] | None = None, username: str | None = None
    ) -> Group:
        """A supergroup with topics; members maps user_id -> creator/administrator/member/left/kicked
        (the bot is administrator unless listed)."""
        return self._supergroup(chat_id, title, members, username, is_forum=True)

    def group(
        self, chat_id: int, title: str, members: dict[int, str] | None = None, username: str | None = None
    ) -> Group:
        """A supergroup without topics."""
        return self._supergroup(chat_id, title, members, username, is_forum=False)

    def _supergroup(
        self,
        chat_id: int,
        title: str,
        members: dict[int, str] | None,
        username: str | None,
        *,
        is_forum: bool,
    ) -> Group:
        chat = Chat(chat_id, "supergroup", title=title, username=username, is_forum=is_forum)
        self.world.chats[chat_id] = chat
        group = Group(self, chat)
        for user_id, status in (members or {}).items():
            group.set_member(user_id, status)
        return group

    # -- inspection --------------------------------------------------------------------------------

    def message(self, ref: Any) -> JSON:
        """Current state of a stored message, given a Message dict, a Call or a PTB Message."""
        if isinstance(ref, Call):
            ref = ref.result
        if hasattr(ref, "to_dict"):
            ref = ref.to_dict()
        stored = self.world.messages.get((ref["chat"]["id"], ref["message_id"]))
        if stored is None:
            raise LookupError(
                f"message {ref['message_id']} in chat {ref['chat']['id']} does not exist (deleted?)"
            )
        return stored

    def button(self, message: Any, text: str) -> JSON:
        """The inline button with this text on a message (current version)."""
        rows = self.message(message).get("reply_markup", {}).get("inline_keyboard", [])
        buttons = [b for row in rows for b in row]
        for button in buttons:
            if button["text"] == text:
                return copy.deepcopy(button)
        raise LookupError(f"no button {text!r}; buttons: {[b['text'] for b in buttons]}")

    def messages_to(self, chat: Any, thread_id: int | None = None) -> list[JSON]:
        """Bot messages currently in a chat (sent, copied, forwarded; not deleted, not service messages)."""
        chat_id = getattr(chat, "id", chat)
        return [
            copy.deepcopy(m)
            for (cid, _), m in self.world.messages.items()
            if cid == chat_id
            and m["from"]["id"] == self.world.bot.id
            and not any(f in m for f in SERVICE_FIELDS)
            and (thread_id is None or m.get("message_thread_id") == thread_id)
        ]

    def calls_of(self, method: str) -> list[Call]:
        """All calls of one method (case-insensitive)."""
        return [c for c in self.calls if c.method.lower() == method.lower()]

    @property
    def errors(self) -> list[Call]:
        """Calls Telegram would have rejected."""
        return [c for c in self.calls if not c.ok]

    def my_commands(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        """Commands the bot set for a scope (default scope if None) and language."""
        return self.getMyCommands(Params({"scope": scope, "language_code": language_code}))

    def reply_keyboard(self, chat: Any) -> JSON | None:
        """The reply keyboard currently shown in a chat (ReplyKeyboardMarkup), if any."""
        return self.world.chats[getattr(chat, "id", chat)].reply_keyboard

    async def wait_for_poll(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - as wait_for
        """Wait until a getUpdates request is waiting for updates (long polling)."""
        async with self._updates_changed, asyncio.timeout(timeout):
            await self._updates_changed.wait_for(lambda: self.polls_waiting > 0)

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - the documented helper signature
        since: int | None = None,
    ) -> Call:
        """The first matching call made after this wait began (or from index ``since`` of api.calls)."""
        start = len(self.calls) if since is None else since

        def found() -> Call | None:
            for call in self.calls[start:]:
                if call.method.lower() == method.lower() and (predicate is None or predicate(call)):
                    return call
            return None

        try:
            async with self._calls_changed, asyncio.timeout(timeout):
                call = await self._calls_changed.wait_for(found)
        except TimeoutError:
            made = [f"{c.method}{'' if c.ok else ' (' + str(c.error) + ')'}" for c in self.calls[start:]]
            raise AssertionError(f"no {method} call within {timeout}s; calls since: {made}") from None
        assert call is not None
        return call
