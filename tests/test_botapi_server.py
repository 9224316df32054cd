"""The fake Bot API server, exercised through PTB's real HTTP client (no internet)."""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    ChatMemberAdministrator,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MenuButtonCommands,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.botapi import DROP, Call, FakeBotAPI

TOKEN = "123456789:TEST-token"
ALICE = 1001
BOB = 1002
FORUM = -1001234567890


def message_of(update: Update) -> Message:
    """The update's message (these updates all carry one)."""
    assert update.message is not None
    return update.message


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(TOKEN) as server:
        yield server


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=api.base_url, base_file_url=api.base_file_url) as client:
        yield client


# -- a tiny bot run by a real Application (polling) -----------------------------------------------

KEYBOARD = InlineKeyboardMarkup(
    [[InlineKeyboardButton("Yes", callback_data="yes"), InlineKeyboardButton("No", callback_data="no")]]
)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message and update.effective_user
    await update.message.reply_text(f"Hello {update.effective_user.first_name}", reply_markup=KEYBOARD)


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message and update.message.text
    await update.message.reply_text(update.message.text)


async def photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message
    data = await (await update.message.photo[-1].get_file()).download_as_bytearray()
    await update.message.reply_text(f"photo of {len(data)} bytes")


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query
    await query.answer("Noted")
    await query.edit_message_text(f"You chose {query.data}")


@pytest.fixture
async def app(api: FakeBotAPI) -> AsyncIterator[Application]:
    application = (
        Application.builder().token(TOKEN).base_url(api.base_url).base_file_url(api.base_file_url).build()
    )
    application.add_handler(CommandHandler("start", start))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    application.add_handler(MessageHandler(filters.PHOTO, photo))
    application.add_handler(CallbackQueryHandler(button))
    async with application:
        await application.start()
        assert application.updater
        await application.updater.start_polling(timeout=dtm.timedelta(seconds=1))
        yield application
        await application.updater.stop()
        await application.stop()


# -- basics ---------------------------------------------------------------------------------------


async def test_get_me(api: FakeBotAPI, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456789, True, "fake_test_bot")
    assert api.calls[0].method == "getMe" and api.calls[0].ok


async def test_raw_http_forms_methods_and_tokens(api: FakeBotAPI) -> None:
    api.user(ALICE, "Alice")
    url = f"{api.base_url}{TOKEN}"
    async with httpx.AsyncClient(trust_env=False) as http:
        assert (await http.get(f"{url}/GETME")).json()["result"]["username"] == "fake_test_bot"
        sent = await http.post(f"{url}/sendmessage", json={"chat_id": ALICE, "text": "json body"})
        assert sent.json()["result"]["text"] == "json body"
        sent = await http.get(f"{url}/sendMessage", params={"chat_id": str(ALICE), "text": "123"})
        assert sent.json()["result"]["text"] == "123"
        markup = json.dumps({"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]})
        sent = await http.post(
            f"{url}/sendMessage", data={"chat_id": ALICE, "text": "form", "reply_markup": markup}
        )
        assert sent.json()["result"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "a"
        missing = await http.post(f"{url}/noSuchMethod")
        assert missing.status_code == 404 and missing.json() == {
            "ok": False,
            "error_code": 404,
            "description": "Not Found",
        }
        wrong = await http.post(f"{api.base_url}1:wrong/getMe")
        assert wrong.status_code == 401 and wrong.json()["description"] == "Unauthorized"
    assert [c.method for c in api.calls] == [
        "getMe",
        "sendMessage",
        "sendMessage",
        "sendMessage",
        "noSuchMethod",
    ]


async def test_wrong_token_raises_invalid_token(api: FakeBotAPI) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("1:wrong", base_url=api.base_url):
            pass


async def test_long_polling_waits_and_confirms(api: FakeBotAPI, bot: Bot) -> None:
    alice = api.user(ALICE, "Alice")
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await api.wait_for_poll()  # the request has arrived and waits: nothing to return yet
    assert not poll.done()
    sent = await alice.send("hi")
    updates = await asyncio.wait_for(poll, 2)
    assert [u.update_id for u in updates] == [sent["update_id"]]
    assert message_of((await bot.get_updates(timeout=0))[0]).text == "hi"  # not confirmed yet
    assert await bot.get_updates(offset=sent["update_id"] + 1, timeout=0) == ()
    assert api.pending == []


async def test_a_network_delay_holds_each_call_without_blocking_the_others(api: FakeBotAPI, bot: Bot) -> None:
    api.user(ALICE, "Alice")
    api.delay = 1.0  # half before the method runs, half before the answer leaves
    first = asyncio.ensure_future(bot.send_message(ALICE, "one"))
    second = asyncio.ensure_future(bot.send_message(ALICE, "two"))
    for text in ("one", "two"):

        def sent(call: Call, text: str = text) -> bool:
            return bool(call.params["text"] == text)

        await api.wait_for("sendMessage", sent, since=0)
    assert not first.done() and not second.done()  # both ran; both answers are still on their way
    assert [m.text for m in await asyncio.gather(first, second)] == ["one", "two"]


async def test_injected_faults_answer_like_telegram_for_their_methods_chats_and_time(
    api: FakeBotAPI, bot: Bot
) -> None:
    api.user(ALICE, "Alice")
    api.user(BOB, "Bob")
    mark = len(api.calls)
    # A storm of 429s on every method but getUpdates, for a while: retry_after comes with it.
    storm = api.faults.add(429, retry_after=3, seconds=30)
    with pytest.raises(RetryAfter) as flood:
        await bot.send_chat_action(ALICE, "typing")
    assert "Retry in 3 seconds" in str(flood.value)
    with pytest.raises(RetryAfter):
        await bot.send_message(BOB, "hello")
    assert await bot.get_updates(timeout=0) == ()
    assert [(c.method, c.error) for c in api.calls[mark:]] == [
        ("sendChatAction", "Too Many Requests: retry after 3"),
        ("sendMessage", "Too Many Requests: retry after 3"),
        ("getUpdates", None),
    ]
    assert api.calls[mark + 1].params["chat_id"] == BOB and api.messages_to(BOB) == []
    storm.deadline = 0.0  # over
    assert (await bot.send_message(BOB, "hello")).text == "hello"
    # One person has blocked the bot: only their chat answers 403.
    api.faults.add(403, chat=ALICE)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(ALICE, "hello")
    assert (await bot.send_message(BOB, "still here")).text == "still here"
    api.faults.clear()
    # Server errors and a dropped connection, for a number of calls of one method.
    api.faults.add(500, methods={"sendMessage"}, times=2)
    for _ in range(2):
        with pytest.raises(NetworkError, match="Internal Server Error"):
            await bot.send_message(ALICE, "a")
    assert (await bot.send_message(ALICE, "b")).text == "b"
    api.faults.add(DROP, times=1)
    with pytest.raises(NetworkError) as dropped:
        await bot.get_me()
    assert not isinstance(dropped.value, BadRequest)
    assert (await bot.get_me()).username == "fake_test_bot"
    assert [c.error for c in api.calls_of("getMe")][-2:] == ["connection dropped", None]
    with pytest.raises(ValueError, match="no fault with status 418"):
        api.faults.add(418)


# -- a real Application ---------------------------------------------------------------------------


async def test_command_and_echo_round_trip(api: FakeBotAPI, app: Application) -> None:
    alice = api.user(ALICE, "Alice", language_code="cs")
    await alice.send("/start")
    call = await api.wait_for("sendMessage")
    assert call.params["chat_id"] == ALICE and call.result["text"] == "Hello Alice"
    assert api.button(call, "Yes")["callback_data"] == "yes"
    await alice.send("ahoj")
    assert (await api.wait_for("sendMessage")).result["text"] == "ahoj"
    assert [m["text"] for m in api.messages_to(alice)] == ["Hello Alice", "ahoj"]
    assert api.errors == []


async def test_callback_query_round_trip(api: FakeBotAPI, app: Application) -> None:
    alice = api.user(ALICE, "Alice")
    await alice.send("/start")
    greeting = (await api.wait_for("sendMessage")).result
    pressed = await alice.press(greeting, text="No")
    answer = await api.wait_for("answerCallbackQuery")
    assert answer.params == {"callback_query_id": pressed["callback_query"]["id"], "text": "Noted"}
    edit = await api.wait_for("editMessageText", since=0)
    assert edit.result["text"] == "You chose no" and "reply_markup" not in edit.result
    assert api.messages_to(ALICE)[0]["text"] == "You chose no"
    with pytest.raises(LookupError):
        await alice.press(greeting, "yes")  # the edit removed the keyboard


async def test_app_replies_in_the_forum_thread(api: FakeBotAPI, app: Application) -> None:
    staff = api.user(2001, "Sam")
    forum = api.forum(FORUM, "Support", members={2001: "administrator"})
    thread = forum.add_topic("Alice (1001)")
    asked = await staff.send("ping", chat=forum, thread_id=thread)
    reply = (await api.wait_for("sendMessage")).result
    assert reply["text"] == "ping" and reply["message_thread_id"] == thread and reply["is_topic_message"]
    assert reply["reply_to_message"]["message_id"] == asked["message"]["message_id"]
    assert api.messages_to(forum, thread) == [reply]
    assert api.messages_to(forum, thread + 100) == []


async def test_photo_from_user_is_downloadable(api: FakeBotAPI, app: Application) -> None:
    alice = api.user(ALICE, "Alice")
    await alice.send_photo(caption="look", data=b"x" * 1234)
    reply = await api.wait_for("sendMessage")
    assert reply.result["text"] == "photo of 1234 bytes"
    assert api.calls_of("getFile")[0].result["file_path"].startswith("photos/")


# -- forums, members, files ------------------------------------------------------------------------


async def test_forum_topic_and_thread_messages(api: FakeBotAPI, bot: Bot) -> None:
    alice = api.user(ALICE, "Alice")
    staff = api.user(2001, "Sam")
    forum = api.forum(FORUM, "Support", members={2001: "administrator"})
    topic = await bot.create_forum_topic(FORUM, "Alice (1001)")
    assert topic.name == "Alice (1001)" and topic.icon_color == 7322096
    thread = topic.message_thread_id
    note = await bot.send_message(FORUM, "New question", message_thread_id=thread)
    assert note.is_topic_message and note.message_thread_id == thread
    copied = await bot.copy_message(
        FORUM,
        from_chat_id=ALICE,
        message_id=(await alice.send("help?"))["message"]["message_id"],
        message_thread_id=thread,
    )
    assert [m["text"] for m in api.messages_to(forum, thread)] == ["New question", "help?"]
    assert api.messages_to(forum)[-1]["message_id"] == copied.message_id

    await staff.send("Here is the answer", chat=forum, thread_id=thread)
    await staff.send_photo(chat=forum, thread_id=thread)
    updates = await bot.get_updates(timeout=0)
    in_topic = [u.message for u in updates if u.message and u.message.chat.id == FORUM]
    assert [m.message_thread_id for m in in_topic] == [thread, thread]
    assert in_topic[0].text == "Here is the answer" and in_topic[1].photo

    assert await bot.close_forum_topic(FORUM, thread)
    with pytest.raises(BadRequest, match=r"(?i)topic_not_modified"):
        await bot.close_forum_topic(FORUM, thread)
    with pytest.raises(BadRequest, match=r"(?i)thread not found"):
        await bot.send_message(ALICE, "no topics here", message_thread_id=thread)
    with pytest.raises(BadRequest, match=r"(?i)thread not found"):
        await bot.send_message(FORUM, "unknown topic", message_thread_id=9999)


async def test_deleting_a_topic_needs_the_right_to_delete_messages(api: FakeBotAPI, bot: Bot) -> None:
    staff = api.user(2001, "Staff")
    forum = api.forum(FORUM, "Support", members={2001: "administrator"})
    thread = (await bot.create_forum_topic(FORUM, "C-0001")).message_thread_id
    await bot.send_message(FORUM, "card", message_thread_id=thread)
    await staff.send("a reply", chat=forum, thread_id=thread)
    forum.set_rights(api.world.bot.id, can_delete_messages=False)
    member = await bot.get_chat_member(FORUM, api.world.bot.id)
    assert isinstance(member, ChatMemberAdministrator) and member.can_delete_messages is False
    with pytest.raises(BadRequest, match=r"(?i)not enough rights"):
        await bot.delete_forum_topic(FORUM, thread)
    assert thread in forum.topics and api.messages_to(forum, thread)

    forum.set_rights(api.world.bot.id, can_delete_messages=True)
    assert await bot.delete_forum_topic(FORUM, thread)
    assert thread not in forum.topics
    left = [m for (chat, _), m in api.world.messages.items() if chat == FORUM]
    assert not [m for m in left if m.get("message_thread_id") == thread]  # its messages went with it
    with pytest.raises(BadRequest, match=r"(?i)thread not found"):
        await bot.send_message(FORUM, "too late", message_thread_id=thread)


async def test_chat_member_statuses(api: FakeBotAPI, bot: Bot) -> None:
    for user_id in (1, 2, 3, 4, 5):
        api.user(user_id, f"U{user_id}")
    api.forum(FORUM, "Staff", members={1: "creator", 2: "administrator", 3: "member", 5: "kicked"})
    statuses = [(await bot.get_chat_member(FORUM, uid)).status for uid in (1, 2, 3, 4, 5, 123456789)]
    assert statuses == ["creator", "administrator", "member", "left", "kicked", "administrator"]
    assert (await bot.get_chat(FORUM)).is_forum
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.get_chat(-42)


async def test_privacy_mode_for_a_non_admin_bot(api: FakeBotAPI, bot: Bot) -> None:
    user = api.user(3, "Member")
    group = api.forum(FORUM, "Chat", members={3: "member", 123456789: "member"})
    assert "update_id" not in await user.send("just chatting", chat=group)
    assert "update_id" in await user.send("/help", chat=group)
    assert [message_of(u).text for u in await bot.get_updates(timeout=0)] == ["/help"]
    with pytest.raises(BadRequest, match=r"(?i)not enough rights"):
        await bot.create_forum_topic(FORUM, "x")


async def test_bot_uploads_and_blocked_user(api: FakeBotAPI, bot: Bot) -> None:
    alice = api.user(ALICE, "Alice")
    document = await bot.send_document(
        ALICE, document=b"%PDF-1.4 data", filename="guide.pdf", caption="Guide"
    )
    uploaded = document.document
    assert uploaded is not None
    assert uploaded.file_name == "guide.pdf" and document.caption == "Guide"
    assert api.calls[-1].params["document"]["upload"] == "guide.pdf"
    again = await bot.send_document(ALICE, document=uploaded.file_id)
    assert again.document is not None and again.document.file_id == uploaded.file_id
    assert await (await bot.get_file(uploaded.file_id)).download_as_bytearray() == b"%PDF-1.4 data"
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await bot.send_photo(ALICE, photo="no-such-file-id")
    alice.block()
    with pytest.raises(Forbidden, match=r"(?i)blocked"):
        await bot.send_message(ALICE, "hello?")


# -- validation -----------------------------------------------------------------------------------


async def test_text_length_limit(api: FakeBotAPI, bot: Bot) -> None:
    api.user(ALICE, "Alice")
    assert len((await bot.send_message(ALICE, "x" * 4096)).text or "") == 4096
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(ALICE, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(ALICE, "<b>" + "x" * 4097 + "</b>", parse_mode="HTML")
    bold = await bot.send_message(ALICE, "<b>" + "x" * 4000 + "</b>", parse_mode="HTML")
    assert len(bold.text or "") == 4000
    assert api.errors[0].error == "Bad Request: message is too long"


@pytest.mark.parametrize(
    ("html", "error"),
    [
        ("<b>bold", 'end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'expected "</i>", found "</b>"'),
        ("line<br>break", 'Unsupported start tag "br"'),
        ("1 < 2", "Unsupported start tag"),
        ("x</b>", "Unexpected end tag"),
        ('<span class="x">s</span>', "tg-spoiler"),
    ],
)
async def test_html_errors(api: FakeBotAPI, bot: Bot, html: str, error: str) -> None:
    api.user(ALICE, "Alice")
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities") as raised:
        await bot.send_message(ALICE, html, parse_mode="HTML")
    assert error.lower() in str(raised.value).lower()


async def test_html_entities(api: FakeBotAPI, bot: Bot) -> None:
    api.user(ALICE, "Alice")
    html = (
        '😀 <b>bold <i>both</i></b> &lt;tag&gt; <a href="https://example.org">link</a> '
        '<pre><code class="language-py">x</code></pre>'
    )
    message = await bot.send_message(ALICE, html, parse_mode="HTML")
    assert message.text == "😀 bold both <tag> link x"
    found = [(e.type, e.offset, e.length) for e in message.entities]
    assert found == [("bold", 3, 9), ("italic", 8, 4), ("text_link", 19, 4), ("pre", 24, 1)]
    assert message.entities[3].language == "py"


async def test_keyboards(api: FakeBotAPI, bot: Bot) -> None:
    api.user(ALICE, "Alice")
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(
            ALICE,
            "x",
            reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a" * 65)]]),
        )
    await bot.send_message(ALICE, "menu", reply_markup=ReplyKeyboardMarkup([["Help", "Language"]]))
    keyboard = api.reply_keyboard(ALICE)
    assert keyboard is not None and keyboard["keyboard"][0][0]["text"] == "Help"
    message = await bot.send_message(ALICE, "inline", reply_markup=KEYBOARD)
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_reply_markup(ALICE, message.message_id, reply_markup=KEYBOARD)
    assert await bot.delete_message(ALICE, message.message_id)
    with pytest.raises(BadRequest, match=r"(?i)not found"):
        await bot.delete_message(ALICE, message.message_id)


async def test_commands_and_menu_button(api: FakeBotAPI, bot: Bot) -> None:
    api.user(ALICE, "Alice")
    await bot.set_my_commands([BotCommand("start", "Start"), BotCommand("help", "Help")])
    await bot.set_my_commands([BotCommand("start", "Spustit")], language_code="cs")
    await bot.set_my_commands([BotCommand("admin", "Admin")], scope=BotCommandScopeChat(ALICE))
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    assert [c.description for c in await bot.get_my_commands(language_code="cs")] == ["Spustit"]
    assert api.my_commands({"type": "chat", "chat_id": ALICE}) == [
        {"command": "admin", "description": "Admin"}
    ]
    assert await bot.delete_my_commands(language_code="cs")
    assert await bot.get_my_commands(language_code="cs") == ()
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])
    assert await bot.set_chat_menu_button(ALICE, MenuButtonCommands())
    assert (await bot.get_chat_menu_button(ALICE)).type == "commands"


# -- webhook --------------------------------------------------------------------------------------


class _Receiver(tornado.web.RequestHandler):
    def initialize(self, received: list[tuple[str | None, dict]]) -> None:
        self.received = received

    def post(self) -> None:
        self.received.append(
            (self.request.headers.get("X-Telegram-Bot-Api-Secret-Token"), json.loads(self.request.body))
        )


async def test_webhook_delivery_with_secret(api: FakeBotAPI, bot: Bot) -> None:
    received: list[tuple[str | None, dict]] = []
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(
        tornado.web.Application([(r"/hook", _Receiver, {"received": received})])
    )
    server.add_sockets(sockets)
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/hook"
    try:
        alice = api.user(ALICE, "Alice")
        queued = await alice.send("sent before the webhook")
        assert await bot.set_webhook(url, secret_token="s3cret")
        sent = await alice.send("/start")
        assert [(secret, body["update_id"]) for secret, body in received] == [
            ("s3cret", queued["update_id"]),
            ("s3cret", sent["update_id"]),
        ]
        assert received[1][1]["message"]["entities"][0]["type"] == "bot_command"
        info = await bot.get_webhook_info()
        assert info.url == url and info.pending_update_count == 0
        with pytest.raises(Conflict):
            await bot.get_updates()
        assert await bot.delete_webhook()
        await alice.send("polling again")
        assert [message_of(u).text for u in await bot.get_updates(timeout=0)] == ["polling again"]
    finally:
        server.stop()
        await server.close_all_connections()
