"""The user side: people and groups talking to the bot. Each action becomes an update."""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from .markup import command_entities
from .world import ADMIN_RIGHTS, JSON, MEMBER_STATUSES, SERVICE_FIELDS, TOPIC_COLORS, Account, Chat, Topic

if TYPE_CHECKING:
    from .server import FakeBotAPI

FAKE_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00fake photo\xff\xd9"
FAKE_OGG = b"OggS\x00fake voice"
FAKE_WEBP = b"RIFF\x00\x00\x00\x00WEBPfake sticker"
FAKE_PDF = b"%PDF-1.4\nfake document\n%%EOF\n"


class User:
    """A Telegram user. Actions return the Update dict (no update_id if the bot could not see it)."""

    def __init__(self, api: FakeBotAPI, account: Account) -> None:
        self.api = api
        self.account = account

    @property
    def id(self) -> int:
        """User id, also the id of the private chat with the bot."""
        return self.account.id

    @property
    def first_name(self) -> str:
        """First name."""
        return self.account.first_name

    def block(self, blocked: bool = True) -> None:
        """Block (or unblock) the bot: its sends to this user then fail with 403."""
        self.account.blocked_bot = blocked

    async def send(
        self, text: str, *, chat: Any = None, thread_id: int | None = None, reply_to: Any = None
    ) -> JSON:
        """A text message (commands get bot_command entities), in the private chat unless chat= is given."""
        content: JSON = {"text": text}
        if entities := command_entities(text):
            content["entities"] = entities
        return await self._post(content, chat, thread_id, reply_to)

    async def send_photo(
        self,
        caption: str | None = None,
        *,
        data: bytes = FAKE_JPEG,
        chat: Any = None,
        thread_id: int | None = None,
        reply_to: Any = None,
    ) -> JSON:
        """A photo (two sizes, downloadable through getFile)."""
        world = self.api.world
        small, large = (world.add_file(data, "photos", "image/jpeg") for _ in range(2))
        content = {"photo": world.media("photo", small, width=90, height=67) + world.media("photo", large)}
        return await self._post(content | _caption(caption), chat, thread_id, reply_to)

    async def send_voice(
        self,
        duration: int = 2,
        *,
        data: bytes = FAKE_OGG,
        caption: str | None = None,
        chat: Any = None,
        thread_id: int | None = None,
        reply_to: Any = None,
    ) -> JSON:
        """A voice note."""
        stored = self.api.world.add_file(data, "voice", "audio/ogg")
        content = {"voice": self.api.world.media("voice", stored, duration=duration)}
        return await self._post(content | _caption(caption), chat, thread_id, reply_to)

    async def send_sticker(
        self,
        emoji: str = "👍",
        *,
        data: bytes = FAKE_WEBP,
        chat: Any = None,
        thread_id: int | None = None,
        reply_to: Any = None,
    ) -> JSON:
        """A sticker."""
        stored = self.api.world.add_file(data, "stickers", "image/webp")
        content = {"sticker": self.api.world.media("sticker", stored, emoji=emoji)}
        return await self._post(content, chat, thread_id, reply_to)

    async def send_document(
        self,
        file_name: str = "document.pdf",
        *,
        data: bytes = FAKE_PDF,
        mime_type: str = "application/pdf",
        caption: str | None = None,
        chat: Any = None,
        thread_id: int | None = None,
        reply_to: Any = None,
    ) -> JSON:
        """A document."""
        stored = self.api.world.add_file(data, "documents", mime_type, file_name)
        content = {"document": self.api.world.media("document", stored)}
        return await self._post(content | _caption(caption), chat, thread_id, reply_to)

    async def send_location(
        self,
        latitude: float,
        longitude: float,
        *,
        chat: Any = None,
        thread_id: int | None = None,
        reply_to: Any = None,
    ) -> JSON:
        """A location."""
        content = {"location": {"latitude": latitude, "longitude": longitude}}
        return await self._post(content, chat, thread_id, reply_to)

    async def edit(self, message: Any, text: str | None = None, *, caption: str | None = None) -> JSON:
        """Edit one of the user's own messages (its text, or its caption): an ``edited_message`` update."""
        stored = self.api.message(message)
        if stored["from"]["id"] != self.id:
            raise ValueError(f"message {stored['message_id']} is not {self.first_name}'s")
        if text is not None:
            if "text" not in stored:
                raise ValueError("only a text message can get a new text")
            stored["text"] = text
            stored.pop("entities", None)
            if entities := command_entities(text):
                stored["entities"] = entities
        if caption is not None:
            if "text" in stored:
                raise ValueError("a text message has no caption")
            stored["caption"] = caption
        stored["edit_date"] = int(time.time())
        return await self.api.dispatch({"edited_message": copy.deepcopy(stored)})

    async def press(self, message: Any, callback_data: str | None = None, *, text: str | None = None) -> JSON:
        """Press an inline button (by callback_data or by text) on the current version of a bot message."""
        stored = self.api.message(message)
        if text is not None:
            button = self.api.button(stored, text)
        else:
            rows = stored.get("reply_markup", {}).get("inline_keyboard", [])
            button = next((b for row in rows for b in row if b.get("callback_data") == callback_data), {})
            if not button:
                raise LookupError(
                    f"no button with callback_data {callback_data!r} on message {stored['message_id']}"
                )
        if "callback_data" not in button:
            raise ValueError(f"button {button['text']!r} has no callback_data")
        return await self.forge_press(stored, button["callback_data"])

    async def forge_press(self, message: Any, callback_data: str) -> JSON:
        """A callback query with any data on a bot message, as a modified client can send it."""
        stored = self.api.message(message)
        query: JSON = {
            "id": str(next(self.api._query_ids)),
            "from": self.account.to_dict(),
            "message": copy.deepcopy(stored),
            "chat_instance": str(abs(stored["chat"]["id"]) * 31 + 7),
            "data": callback_data,
        }
        self.api.callback_queries[query["id"]] = query
        return await self.api.dispatch({"callback_query": query})

    async def _post(self, content: JSON, chat: Any, thread_id: int | None, reply_to: Any) -> JSON:
        world = self.api.world
        target = world.chats.get(self.id if chat is None else getattr(chat, "id", chat))
        if target is None:
            raise LookupError(f"unknown chat {chat!r}")
        if thread_id is not None and thread_id not in target.topics:
            raise ValueError(f"chat {target.id} has no topic {thread_id}")
        if target.peer is None and world.status(target, self.id) in ("left", "kicked"):
            raise ValueError(f"user {self.id} is not a member of chat {target.id}")
        replied = self.api.message(reply_to) if reply_to is not None else None
        message = world.add_message(target, self.account, content, thread_id, replied)
        if not self._bot_sees(target, message):
            return {"message": message}
        return await self.api.dispatch({"message": message})

    def _bot_sees(self, chat: Chat, message: JSON) -> bool:
        """Privacy mode: in groups a non-admin bot only gets commands and replies to its own messages."""
        if chat.peer is not None:
            return True
        status = self.api.world.status(chat, self.api.world.bot.id)
        if status in ("left", "kicked"):
            return False
        if status in ("creator", "administrator") or self.api.can_read_all_group_messages:
            return True
        if any(e["type"] == "bot_command" for e in message.get("entities", [])):
            return True
        reply = message.get("reply_to_message") or {}
        return reply.get("from", {}).get("id") == self.api.world.bot.id and not any(
            f in reply for f in SERVICE_FIELDS
        )


class Group:
    """A supergroup (forum or not) in the world model."""

    def __init__(self, api: FakeBotAPI, chat: Chat) -> None:
        self.api = api
        self.chat = chat

    @property
    def id(self) -> int:
        """Chat id (negative, e.g. -100...)."""
        return self.chat.id

    @property
    def title(self) -> str:
        """Group title."""
        return self.chat.title or ""

    @property
    def topics(self) -> dict[int, Topic]:
        """Forum topics by thread id."""
        return self.chat.topics

    def set_rights(self, user_id: int, **rights: bool) -> None:
        """Change an administrator's rights (all are granted unless changed), e.g.
        ``set_rights(bot_id, can_delete_messages=False)``."""
        unknown = set(rights) - set(ADMIN_RIGHTS)
        if unknown:
            raise ValueError(f"unknown administrator rights: {sorted(unknown)}")
        self.chat.rights.setdefault(user_id, {}).update(rights)

    def set_member(self, user_id: int, status: str) -> None:
        """Set a user's (or the bot's) status: creator, administrator, member, left or kicked."""
        if status not in MEMBER_STATUSES:
            raise ValueError(f"status must be one of {MEMBER_STATUSES}")
        self.api.world.account(user_id)
        self.chat.members[user_id] = status

    def add_topic(self, name: str, icon_color: int = TOPIC_COLORS[0]) -> int:
        """Create a topic as the group's owner (setup, no update); returns its message_thread_id."""
        world = self.api.world
        owner = next((uid for uid, s in self.chat.members.items() if s == "creator"), world.bot.id)
        if not self.chat.is_forum:
            raise ValueError(f"chat {self.id} is not a forum")
        return world.create_topic(self.chat, name, world.account(owner), icon_color).thread_id


def _caption(caption: str | None) -> JSON:
    return {"caption": caption} if caption else {}
