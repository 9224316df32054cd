"""Bot API methods about chats, messages, forum topics, files and commands, validated like Telegram."""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .markup import HtmlError, parse_html
from .world import (
    CONTENT_FIELDS,
    JSON,
    SERVICE_FIELDS,
    TOPIC_COLORS,
    Account,
    Chat,
    StoredFile,
    World,
    chat_member,
)

F = TypeVar("F", bound=Callable[..., Any])

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
FILE_DOWNLOAD_LIMIT = 20 * 1024 * 1024
CHAT_ACTIONS = frozenset(
    """
    typing upload_photo record_video upload_video record_voice upload_voice upload_document
    choose_sticker find_location record_video_note upload_video_note
    """.split()
)
BUTTON_ACTIONS = tuple(
    """
    callback_data url web_app login_url switch_inline_query switch_inline_query_current_chat
    switch_inline_query_chosen_chat copy_text callback_game pay
    """.split()
)
# Messages whose caption editMessageCaption can change.
CAPTIONED_MEDIA = ("photo", "document", "voice", "video", "audio", "animation")
_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)


def bot_api(fn: F) -> F:
    """Mark a method as a Bot API method (reachable as /bot<token>/<name>)."""
    fn.bot_api = True  # type: ignore[attr-defined]
    return fn


class ApiError(Exception):
    """An error response: HTTP status = error_code, with Telegram's description."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def bad(description: str) -> ApiError:
    """A 400 Bad Request error."""
    return ApiError(400, f"Bad Request: {description}")


class Params(dict[str, Any]):
    """Decoded request parameters; uploaded files are in .files as name -> (filename, bytes, content type)."""

    def __init__(self, values: JSON, files: dict[str, tuple[str, bytes, str]] | None = None) -> None:
        super().__init__(values)
        self.files = files or {}

    def need(self, name: str) -> Any:
        """A required parameter."""
        if self.get(name) in (None, ""):
            raise bad(f"{name} is empty")
        return self[name]


class BotAPIMethods:
    """Chats, messages, topics, files, commands. The server (FakeBotAPI) adds updates and webhooks."""

    def __init__(self, token: str, bot: Account, *, can_read_all_group_messages: bool = False) -> None:
        self.token = token
        self.world = World(bot)
        self.can_read_all_group_messages = can_read_all_group_messages
        self.commands: dict[tuple[str, str], list[JSON]] = {}
        self.default_menu_button: JSON | None = None
        self.deleted: list[JSON] = []
        self.callback_queries: dict[str, JSON] = {}
        self.answered: dict[str, JSON] = {}

    # -- helpers ---------------------------------------------------------------------------------

    def _chat(self, chat_id: Any) -> Chat:
        if chat_id in (None, ""):
            raise bad("chat_id is empty")
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            name = chat_id[1:].lower()
            for chat in self.world.chats.values():
                username = chat.peer.username if chat.peer else chat.username
                if username and username.lower() == name:
                    return chat
        elif isinstance(chat_id, int) and chat_id in self.world.chats:
            return self.world.chats[chat_id]
        raise bad("chat not found")

    def _is_admin(self, chat: Chat) -> bool:
        return self.world.status(chat, self.world.bot.id) in ("creator", "administrator")

    def _thread(self, chat: Chat, p: Params) -> int | None:
        thread_id = p.get("message_thread_id")
        if thread_id is None:
            return None
        if not chat.is_forum or thread_id not in chat.topics:
            raise bad("message thread not found")
        return int(thread_id)

    def _check_can_write(self, chat: Chat, thread_id: int | None) -> None:
        if chat.peer is not None:
            if chat.peer.blocked_bot:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            return
        status = self.world.status(chat, self.world.bot.id)
        if status == "kicked":
            raise ApiError(403, "Forbidden: bot was kicked from the supergroup chat")
        if status == "left":
            raise ApiError(403, "Forbidden: bot is not a member of the supergroup chat")
        if thread_id is not None and chat.topics[thread_id].closed and not self._is_admin(chat):
            raise bad("TOPIC_CLOSED")

    def _reply_to(self, chat: Chat, p: Params) -> JSON | None:
        params = p.get("reply_parameters")
        if params is None and p.get("reply_to_message_id"):
            params = {"message_id": p["reply_to_message_id"]}
        if not params:
            return None
        target = self._chat(params["chat_id"]) if "chat_id" in params else chat
        message = self.world.messages.get((target.id, params.get("message_id")))
        if message is None:
            if params.get("allow_sending_without_reply") or p.get("allow_sending_without_reply"):
                return None
            raise bad("message to be replied not found")
        return message

    @staticmethod
    def _text(text: Any, parse_mode: Any, entities: Any, *, caption: bool = False) -> tuple[str, list[JSON]]:
        """Apply parse_mode (HTML parsed; Markdown modes kept verbatim) and check the length."""
        text = "" if text is None else str(text)
        mode = str(parse_mode or "").lower()
        if mode == "html":
            try:
                text, found = parse_html(text)
            except HtmlError as exc:
                raise bad(f"can't parse entities: {exc}") from None
        elif mode in ("markdown", "markdownv2", ""):
            found = list(entities or [])
            text = text if found else text.strip()
        else:
            raise bad("unsupported parse_mode")
        if not caption and not text.strip():
            raise bad("message text is empty")
        if len(text) > (CAPTION_LIMIT if caption else TEXT_LIMIT):
            raise bad("message caption is too long" if caption else "message is too long")
        return text, found

    def _caption(self, p: Params) -> JSON:
        if not p.get("caption"):
            return {}
        caption, entities = self._text(
            p["caption"], p.get("parse_mode"), p.get("caption_entities"), caption=True
        )
        return {"caption": caption, "caption_entities": entities} if entities else {"caption": caption}

    @staticmethod
    def _markup(p: Params) -> JSON | None:
        markup = p.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad("can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise bad("BUTTON_DATA_INVALID")
                if not any(key in button for key in BUTTON_ACTIONS):
                    raise bad(
                        "can't parse inline keyboard button: "
                        "Text buttons are unallowed in the inline keyboard"
                    )
                url = button.get("url")
                if url is not None and not re.match(r"(https?|tg)://\S+$", str(url)):
                    raise bad(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
        return markup

    def _send(self, p: Params, content: JSON, *, markup: bool = True) -> JSON:
        """Store a message from the bot after Telegram's checks; return the Message object."""
        chat = self._chat(p.get("chat_id"))
        thread_id = self._thread(chat, p)
        self._check_can_write(chat, thread_id)
        reply_to = self._reply_to(chat, p)
        reply_markup = self._markup(p) if markup else None
        if reply_markup and "inline_keyboard" in reply_markup:
            content["reply_markup"] = reply_markup  # Telegram echoes only inline keyboards
        message = self.world.add_message(chat, self.world.bot, content, thread_id, reply_to)
        if reply_markup and "keyboard" in reply_markup:
            chat.reply_keyboard = reply_markup
        elif reply_markup and reply_markup.get("remove_keyboard"):
            chat.reply_keyboard = None
        return message

    def _stored(self, p: Params, not_found: str) -> tuple[Chat, JSON]:
        chat = self._chat(p.get("chat_id"))
        message = self.world.messages.get((chat.id, int(p.get("message_id") or 0)))
        if message is None:
            raise bad(not_found)
        return chat, message

    def _input_file(self, p: Params, field: str, folder: str, mime_type: str) -> StoredFile:
        """The file given as an upload, an attach:// reference, a known file_id or a URL (not fetched)."""
        value = p.get(field)
        upload = p.files.get(field)
        if upload is None and isinstance(value, str) and value.startswith("attach://"):
            upload = p.files.get(value.removeprefix("attach://"))
        if upload is not None:
            filename, data, content_type = upload
            return self.world.add_file(data, folder, content_type or mime_type, filename)
        if isinstance(value, str) and value in self.world.files:
            return self.world.files[value]
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return self.world.add_file(b"", folder, mime_type, value.rpartition("/")[2] or None)
        if not value:
            raise bad(f"there is no {field} in the request")
        raise bad("wrong file identifier/HTTP URL specified")

    def _send_media(self, p: Params, kind: str, folder: str, mime_type: str, **extra: Any) -> JSON:
        stored = self._input_file(p, kind, folder, mime_type)
        content = {kind: self.world.media(kind, stored, **extra), **self._caption(p)}
        return self._send(p, content)

    def _topic(self, p: Params) -> tuple[Chat, int]:
        chat = self._chat(p.get("chat_id"))
        if not chat.is_forum:
            raise bad("the chat is not a forum")
        if not self._is_admin(chat):
            raise bad("not enough rights to manage topics")
        thread_id = p.need("message_thread_id")
        if thread_id not in chat.topics:
            raise bad("message thread not found")
        return chat, thread_id

    def _service(self, chat: Chat, thread_id: int, field: str, value: JSON) -> None:
        self.world.add_message(chat, self.world.bot, {field: value}, thread_id)

    @staticmethod
    def _scope_key(p: Params) -> tuple[str, str]:
        scope = p.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(p.get("language_code") or "")

    # -- bot, commands, menu -----------------------------------------------------------------------

    @bot_api
    def getMe(self, p: Params) -> JSON:
        """The bot's User object."""
        return self.world.bot.to_dict() | {
            "can_join_groups": True,
            "can_read_all_group_messages": self.can_read_all_group_messages,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    @bot_api
    def setMyCommands(self, p: Params) -> bool:
        """Store the command list for (scope, language_code)."""
        commands = p.need("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad(
                "BOT_COMMANDS_TOO_MUCH" if isinstance(commands, list) else "can't parse commands JSON object"
            )
        for command in commands:
            if not _COMMAND_NAME.fullmatch(str(command.get("command", ""))):
                raise bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad(
                    "command description is empty"
                    if not command.get("description")
                    else "BOT_COMMAND_INVALID"
                )
        self.commands[self._scope_key(p)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    @bot_api
    def getMyCommands(self, p: Params) -> list[JSON]:
        """The command list for exactly this (scope, language_code)."""
        return copy.deepcopy(self.commands.get(self._scope_key(p), []))

    @bot_api
    def deleteMyCommands(self, p: Params) -> bool:
        """Forget the command list for (scope, language_code)."""
        self.commands.pop(self._scope_key(p), None)
        return True

    @bot_api
    def setChatMenuButton(self, p: Params) -> bool:
        """Set the menu button of a private chat, or the default one."""
        button = p.get("menu_button") or {"type": "default"}
        if p.get("chat_id") is None:
            self.default_menu_button = button
        else:
            self._chat(p["chat_id"]).menu_button = button
        return True

    @bot_api
    def getChatMenuButton(self, p: Params) -> JSON:
        """The menu button of a chat, or the default one."""
        if p.get("chat_id") is None:
            return self.default_menu_button or {"type": "commands"}
        return self._chat(p["chat_id"]).menu_button or {"type": "default"}

    # -- messages ----------------------------------------------------------------------------------

    @bot_api
    def sendMessage(self, p: Params) -> JSON:
        """A text message (parse_mode, entities, reply_markup, thread, reply and link preview options)."""
        text, entities = self._text(p.get("text"), p.get("parse_mode"), p.get("entities"))
        content: JSON = {"text": text}
        if entities:
            content["entities"] = entities
        preview = p.get("link_preview_options")
        if preview is None and p.get("disable_web_page_preview"):
            preview = {"is_disabled": True}
        if preview:
            content["link_preview_options"] = preview
        return self._send(p, content)

    @bot_api
    def editMessageText(self, p: Params) -> JSON:
        """Replace the text (and inline keyboard: omitted reply_markup removes it) of a bot message."""
        if p.get("inline_message_id"):
            raise bad("inline messages are not supported by the fake server")
        _, message = self._stored(p, "message to edit not found")
        if message["from"]["id"] != self.world.bot.id:
            raise bad("message can't be edited")
        if "text" not in message:
            raise bad("there is no text in the message to edit")
        text, entities = self._text(p.get("text"), p.get("parse_mode"), p.get("entities"))
        markup = self._markup(p)
        new = {"text": text, "entities": entities or None, "reply_markup": markup}
        return self._edit(message, new)

    @bot_api
    def editMessageCaption(self, p: Params) -> JSON:
        """Replace the caption (and inline keyboard: omitted reply_markup removes it) of a bot message
        with media."""
        if p.get("inline_message_id"):
            raise bad("inline messages are not supported by the fake server")
        _, message = self._stored(p, "message to edit not found")
        if message["from"]["id"] != self.world.bot.id:
            raise bad("message can't be edited")
        if "text" in message or not any(kind in message for kind in CAPTIONED_MEDIA):
            raise bad("there is no caption in the message to edit")
        caption, entities = self._text(
            p.get("caption"), p.get("parse_mode"), p.get("caption_entities"), caption=True
        )
        new = {"caption": caption, "caption_entities": entities or None, "reply_markup": self._markup(p)}
        return self._edit(message, new)

    @bot_api
    def editMessageReplyMarkup(self, p: Params) -> JSON:
        """Replace (or, without reply_markup, remove) the inline keyboard of a bot message."""
        _, message = self._stored(p, "message to edit not found")
        if message["from"]["id"] != self.world.bot.id:
            raise bad("message can't be edited")
        return self._edit(message, {"reply_markup": self._markup(p)})

    def _edit(self, message: JSON, new: JSON) -> JSON:
        if all(message.get(key) == (value or None) for key, value in new.items()):
            raise bad(_NOT_MODIFIED)
        for key, value in new.items():
            if value:
                message[key] = value
            else:
                message.pop(key, None)
        message["edit_date"] = int(time.time())
        return copy.deepcopy(message)

    @bot_api
    def deleteMessage(self, p: Params) -> bool:
        """Delete a message (others' messages in groups only as admin)."""
        chat, message = self._stored(p, "message to delete not found")
        if chat.peer is None and message["from"]["id"] != self.world.bot.id and not self._is_admin(chat):
            raise bad("message can't be deleted")
        self.deleted.append(self.world.messages.pop((chat.id, message["message_id"])))
        return True

    @bot_api
    def copyMessage(self, p: Params) -> JSON:
        """Copy a message's content (no link to the original); returns a MessageId."""
        _, source = self._stored(
            Params({"chat_id": p.get("from_chat_id"), "message_id": p.get("message_id")}),
            "message to copy not found",
        )
        if any(field in source for field in SERVICE_FIELDS):
            raise bad("message can't be copied")
        content = {key: copy.deepcopy(source[key]) for key in CONTENT_FIELDS if key in source}
        if "caption" in p and "text" not in content:
            content.pop("caption", None)
            content.pop("caption_entities", None)
            content.update(self._caption(p))
        return {"message_id": self._send(p, content)["message_id"]}

    @bot_api
    def forwardMessage(self, p: Params) -> JSON:
        """Forward a message: same content plus forward_origin."""
        _, source = self._stored(
            Params({"chat_id": p.get("from_chat_id"), "message_id": p.get("message_id")}),
            "message to forward not found",
        )
        content = {key: copy.deepcopy(source[key]) for key in CONTENT_FIELDS if key in source}
        content["forward_origin"] = {"type": "user", "date": source["date"], "sender_user": source["from"]}
        return self._send(p, content, markup=False)

    @bot_api
    def sendPhoto(self, p: Params) -> JSON:
        """A photo (upload, file_id or URL) with optional caption."""
        return self._send_media(p, "photo", "photos", "image/jpeg")

    @bot_api
    def sendDocument(self, p: Params) -> JSON:
        """A document (upload, file_id or URL) with optional caption."""
        return self._send_media(p, "document", "documents", "application/octet-stream")

    @bot_api
    def sendVoice(self, p: Params) -> JSON:
        """A voice note (upload, file_id or URL) with optional caption."""
        return self._send_media(p, "voice", "voice", "audio/ogg", duration=p.get("duration") or 1)

    @bot_api
    def sendSticker(self, p: Params) -> JSON:
        """A sticker (upload, file_id or URL)."""
        p.pop("caption", None)
        return self._send_media(p, "sticker", "stickers", "image/webp", emoji=p.get("emoji") or "👍")

    @bot_api
    def sendChatAction(self, p: Params) -> bool:
        """A chat action (typing...): only validated."""
        chat = self._chat(p.get("chat_id"))
        self._check_can_write(chat, self._thread(chat, p))
        if p.get("action") not in CHAT_ACTIONS:
            raise bad("wrong parameter action in request")
        return True

    @bot_api
    def answerCallbackQuery(self, p: Params) -> bool:
        """Answer a callback query once."""
        query_id = str(p.get("callback_query_id") or "")
        if query_id not in self.callback_queries or query_id in self.answered:
            raise bad("query is too old and response timeout expired or query ID is invalid")
        self.answered[query_id] = dict(p)
        return True

    # -- chats and members -------------------------------------------------------------------------

    @bot_api
    def getChat(self, p: Params) -> JSON:
        """ChatFullInfo of a known chat."""
        return self._chat(p.get("chat_id")).full_info()

    @bot_api
    def getChatMember(self, p: Params) -> JSON:
        """ChatMember of a user, status from the world model."""
        chat = self._chat(p.get("chat_id"))
        user_id = p.need("user_id")
        if user_id not in self.world.accounts:
            raise bad("user not found")
        status = self.world.status(chat, user_id)
        return chat_member(self.world.accounts[user_id], status, chat.rights.get(user_id))

    # -- forum topics ------------------------------------------------------------------------------

    @bot_api
    def createForumTopic(self, p: Params) -> JSON:
        """Open a topic in a forum where the bot is admin; returns ForumTopic."""
        chat = self._chat(p.get("chat_id"))
        if not chat.is_forum:
            raise bad("the chat is not a forum")
        if not self._is_admin(chat):
            raise bad("not enough rights to create a topic")
        name = str(p.need("name"))
        if len(name) > 128:
            raise bad("TOPIC_TITLE_TOO_LONG")
        color = p.get("icon_color") or TOPIC_COLORS[0]
        if color not in TOPIC_COLORS:
            raise bad("TOPIC_COLOR_INVALID")
        topic = self.world.create_topic(chat, name, self.world.bot, color, p.get("icon_custom_emoji_id"))
        return topic.to_dict()

    @bot_api
    def editForumTopic(self, p: Params) -> bool:
        """Rename a topic or change its custom emoji icon."""
        chat, thread_id = self._topic(p)
        topic = chat.topics[thread_id]
        edited = {key: p[key] for key in ("name", "icon_custom_emoji_id") if key in p}
        if all(getattr(topic, key) == value for key, value in edited.items()):
            raise bad("TOPIC_NOT_MODIFIED")
        for key, value in edited.items():
            setattr(topic, key, value)
        self._service(chat, thread_id, "forum_topic_edited", edited)
        return True

    @bot_api
    def closeForumTopic(self, p: Params) -> bool:
        """Close an open topic."""
        return self._set_closed(p, closed=True)

    @bot_api
    def reopenForumTopic(self, p: Params) -> bool:
        """Reopen a closed topic."""
        return self._set_closed(p, closed=False)

    @bot_api
    def deleteForumTopic(self, p: Params) -> bool:
        """Delete a topic with all its messages (the bot needs the right to delete messages)."""
        chat, thread_id = self._topic(p)
        if not self.world.has_right(chat, self.world.bot.id, "can_delete_messages"):
            raise bad("not enough rights to delete the topic")
        del chat.topics[thread_id]
        for key in [
            k
            for k, m in self.world.messages.items()
            if k[0] == chat.id and m.get("message_thread_id") == thread_id
        ]:
            del self.world.messages[key]
        return True

    def _set_closed(self, p: Params, *, closed: bool) -> bool:
        chat, thread_id = self._topic(p)
        topic = chat.topics[thread_id]
        if topic.closed == closed:
            raise bad("TOPIC_NOT_MODIFIED")
        topic.closed = closed
        self._service(chat, thread_id, "forum_topic_closed" if closed else "forum_topic_reopened", {})
        return True

    # -- files -------------------------------------------------------------------------------------

    @bot_api
    def getFile(self, p: Params) -> JSON:
        """File with file_path (download from base_file_url)."""
        stored = self.world.files.get(str(p.need("file_id")))
        if stored is None:
            raise bad("invalid file_id")
        if len(stored.data) > FILE_DOWNLOAD_LIMIT:
            raise bad("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }
