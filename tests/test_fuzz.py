"""Hypothesis: any text and malformed updates fed to the application → no unhandled error.

Updates are built as Telegram could send them (or worse: entities pointing outside the text, odd
chat types, unknown update kinds, forged button data, huge texts, NUL, RTL marks) and handed to
``application.process_update``, with the real engine (Rasa on loopback) and SQLite storage. An
extra error handler records every exception that reached python-telegram-bot's error handlers:
there must be none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from telegram import Update

from bot.runtime import Services
from bot.storage import Storage
from bot.telegram import build_application

from .botapi import FakeBotAPI

pytestmark = pytest.mark.rasa

TOKEN = "123456:fuzz-test-token"
CONSENTED = [7001, 7002, 7003]  # onboarded people (city and consent)
STRANGERS = [7004]  # never agreed to anything
COMMANDS = ["/start", "/help", "/menu", "/human", "/language", "/city", "/forget", "/nonsense", "/start@bot"]
PIECES = [
    "\x00",
    "\u200f",
    "\u200e",
    "\u202e",
    "\u200b",
    "\ufeff",
    "\u0301",
    "🙋🏽‍♀️",
    "\n",
    " ",
    "<b>",
    "&amp;",
]

texts = st.one_of(
    st.text(),
    st.lists(st.one_of(st.sampled_from(PIECES + COMMANDS), st.text(max_size=8)), max_size=30).map("".join),
    st.builds(
        lambda piece, n: piece * n, st.sampled_from(["ж", "a ", "\x00", "مرحبا ", "🙋"]), st.integers(1, 9000)
    ),
)
entities = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["bot_command", "mention", "url", "bold", "text_link", "custom_emoji"]),
            "offset": st.integers(-5, 10_000),
            "length": st.integers(-5, 10_000),
        },
        optional={"url": st.text(max_size=20), "custom_emoji_id": st.text(max_size=5)},
    ),
    max_size=3,
)
_ids = count(1)


@st.composite
def updates(draw: st.DrawFn) -> dict[str, Any]:
    user_id = draw(st.sampled_from(CONSENTED + STRANGERS))
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": draw(st.text(max_size=10))}
    if draw(st.booleans()):
        user["language_code"] = draw(
            st.one_of(st.sampled_from(["en", "uk", "ar", "zz", ""]), st.text(max_size=6))
        )
    chat = draw(
        st.sampled_from(
            [
                {"id": user_id, "type": "private", "first_name": "P"},
                {"id": -100123, "type": "supergroup", "title": "Not staff", "is_forum": True},
                {"id": -100124, "type": "channel", "title": "A channel"},
                {"id": -5, "type": "group", "title": "A group"},
            ]
        )
    )
    message: dict[str, Any] = {"message_id": draw(st.integers(1, 2**31)), "date": 1_700_000_000, "chat": chat}
    if draw(st.integers(0, 9)):
        message["from"] = user
    kind = draw(st.sampled_from(["text", "text", "text", "caption", "sticker", "location", "empty", "reply"]))
    if kind in ("text", "reply"):
        message["text"] = draw(texts)
        if draw(st.booleans()):
            message["entities"] = draw(entities)
    if kind == "reply":
        message["reply_to_message"] = {"message_id": 1, "date": 1_700_000_000, "chat": chat, "text": "x"}
    if chat["type"] == "supergroup" and draw(st.booleans()):
        message["message_thread_id"] = draw(st.integers(1, 50))
        message["is_topic_message"] = True
    if kind == "caption":
        message["photo"] = [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}]
        message["caption"] = draw(texts)
    if kind == "sticker":
        message["sticker"] = {
            "file_id": "s", "file_unique_id": "s", "type": "regular", "width": 1, "height": 1,
            "is_animated": False, "is_video": False,
        }  # fmt: skip
    if kind == "location":
        message["location"] = {"latitude": draw(st.floats(-90, 90)), "longitude": draw(st.floats(-180, 180))}
    update: dict[str, Any] = {"update_id": next(_ids)}
    shape = draw(st.sampled_from(["message", "message", "edited_message", "callback_query", "unknown"]))
    if shape == "message":
        update["message"] = message
    elif shape == "edited_message":
        update["edited_message"] = {**message, "edit_date": 1_700_000_100}
    elif shape == "callback_query":
        query: dict[str, Any] = {"id": str(next(_ids)), "from": user, "chat_instance": "ci"}
        if draw(st.booleans()):
            query["data"] = draw(
                st.one_of(st.text(max_size=64), st.sampled_from(["m", "k:", "t:x", "h", "f:1:x"]))
            )
        if draw(st.booleans()):
            query["message"] = {**message, "from": {"id": 1, "is_bot": True, "first_name": "Bot"}}
        update["callback_query"] = query
    else:
        # A kind of update this python-telegram-bot does not know yet (Telegram adds them).
        update[draw(st.sampled_from(["future_kind", "not_yet_invented"]))] = {"x": draw(st.text(max_size=5))}
    return update


@pytest.fixture(scope="module")
async def application(
    services: Services, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Any, FakeBotAPI, list[BaseException]]]:
    """The application (not polling: updates are handed to it), the fake Bot API, the errors seen."""
    path: Path = tmp_path_factory.mktemp("fuzz") / "bot.db"
    storage = Storage(f"sqlite+aiosqlite:///{path}")
    await storage.open()
    for chat_id in CONSENTED:
        await storage.save_person(chat_id, language="en", city="prague", consent_at=datetime.now(UTC))
    async with FakeBotAPI(TOKEN) as api:
        for chat_id in CONSENTED + STRANGERS:
            api.user(chat_id, f"Person {chat_id}")
        settings_ = services.settings.model_copy(
            update={"telegram_token": SecretStr(TOKEN), "telegram_api_base_url": api.base_url}
        )
        app = build_application(settings_, services=services, storage=storage)
        errors: list[BaseException] = []

        async def record(update: object, context: Any) -> None:
            errors.append(context.error)

        app.add_error_handler(record)
        async with app:
            assert app.post_init is not None
            await app.post_init(app)
            yield app, api, errors
    await storage.aclose()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(data=updates())
async def test_any_update_is_handled_without_an_unhandled_error(
    application: tuple[Any, FakeBotAPI, list[BaseException]], data: dict[str, Any]
) -> None:
    app, api, errors = application
    errors.clear()
    event(next(kind for kind in data if kind != "update_id"))  # --hypothesis-show-statistics
    if "callback_query" in data:  # as if the button was pressed: the fake then accepts its answer
        api.callback_queries[data["callback_query"]["id"]] = data["callback_query"]
    update = Update.de_json(data, app.bot)
    await app.process_update(update)
    assert not errors, [f"{type(e).__name__}: {e}" for e in errors]
