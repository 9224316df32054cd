"""The fake Telegram world: accounts, chats, topics, messages and files, shaped like Bot API objects."""

from __future__ import annotations

import copy
import itertools
import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

JSON = dict[str, Any]

MEMBER_STATUSES = ("creator", "administrator", "member", "left", "kicked")
TOPIC_COLORS = (7322096, 16766590, 13338331, 9367192, 16749490, 16478047)
# Service-message fields: such messages are not "sent by the bot" in messages_to().
SERVICE_FIELDS = ("forum_topic_created", "forum_topic_edited", "forum_topic_closed", "forum_topic_reopened")
# Message fields that copyMessage/forwardMessage carry over.
CONTENT_FIELDS = (
    "text",
    "entities",
    "link_preview_options",
    "photo",
    "document",
    "voice",
    "sticker",
    "location",
    "caption",
    "caption_entities",
)
ADMIN_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
    "can_pin_messages",
    "can_manage_topics",
)


@dataclass
class Account:
    """A Telegram user (or the bot itself)."""

    id: int
    first_name: str
    language_code: str | None = None
    username: str | None = None
    is_bot: bool = False
    blocked_bot: bool = False

    def to_dict(self) -> JSON:
        """The User object."""
        data: JSON = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        if self.language_code and not self.is_bot:
            data["language_code"] = self.language_code
        return data


@dataclass
class Topic:
    """A forum topic; its id is the message_id of its forum_topic_created service message."""

    thread_id: int
    name: str
    icon_color: int = TOPIC_COLORS[0]
    icon_custom_emoji_id: str | None = None
    closed: bool = False

    def to_dict(self) -> JSON:
        """The ForumTopic object."""
        data: JSON = {"message_thread_id": self.thread_id, "name": self.name, "icon_color": self.icon_color}
        if self.icon_custom_emoji_id:
            data["icon_custom_emoji_id"] = self.icon_custom_emoji_id
        return data


@dataclass
class Chat:
    """A private chat (peer set) or a supergroup (title, members, maybe topics)."""

    id: int
    type: str
    peer: Account | None = None
    title: str | None = None
    username: str | None = None
    is_forum: bool = False
    members: dict[int, str] = field(default_factory=dict)
    # Administrators' rights that differ from Telegram's defaults (all granted), by user id.
    rights: dict[int, dict[str, bool]] = field(default_factory=dict)
    topics: dict[int, Topic] = field(default_factory=dict)
    next_message_id: int = 1
    reply_keyboard: JSON | None = None
    menu_button: JSON | None = None

    def to_dict(self) -> JSON:
        """The Chat object embedded in messages."""
        data: JSON = {"id": self.id, "type": self.type}
        if self.peer is not None:
            data["first_name"] = self.peer.first_name
            if self.peer.username:
                data["username"] = self.peer.username
        else:
            data["title"] = self.title
            if self.username:
                data["username"] = self.username
            if self.is_forum:
                data["is_forum"] = True
        return data

    def full_info(self) -> JSON:
        """The ChatFullInfo object returned by getChat."""
        gifts = (
            "unlimited_gifts",
            "limited_gifts",
            "unique_gifts",
            "premium_subscription",
            "gifts_from_channels",
        )
        data = self.to_dict()
        data.update(
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types=dict.fromkeys(gifts, True),
        )
        return data


@dataclass
class StoredFile:
    """Bytes reachable through getFile and the file URL."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    mime_type: str
    file_name: str | None = None


def chat_member(user: Account, status: str, rights: dict[str, bool] | None = None) -> JSON:
    """The ChatMember object for a status (an administrator's ``rights`` differing from all granted)."""
    data: JSON = {"status": status, "user": user.to_dict()}
    if status == "creator":
        data["is_anonymous"] = False
    elif status == "administrator":
        data.update(can_be_edited=False, is_anonymous=False, can_promote_members=False)
        data.update(dict.fromkeys(ADMIN_RIGHTS, True))
        data.update(rights or {})
    elif status == "kicked":
        data["until_date"] = 0
    return data


class World:
    """State shared by the fake server: who exists, what was said where."""

    def __init__(self, bot: Account) -> None:
        self.bot = bot
        self.accounts: dict[int, Account] = {bot.id: bot}
        self.chats: dict[int, Chat] = {}
        self.messages: dict[tuple[int, int], JSON] = {}
        self.files: dict[str, StoredFile] = {}
        self._file_seq = itertools.count(1)

    def account(self, user_id: int) -> Account:
        """The account with this id, created with a placeholder name if unknown."""
        if user_id not in self.accounts:
            self.accounts[user_id] = Account(user_id, f"User {user_id}")
        return self.accounts[user_id]

    def has_right(self, chat: Chat, user_id: int, right: str) -> bool:
        """Whether a user (or the bot) is the chat's creator, or an administrator with ``right``."""
        status = self.status(chat, user_id)
        if status == "creator":
            return True
        return status == "administrator" and chat.rights.get(user_id, {}).get(right, True)

    def status(self, chat: Chat, user_id: int) -> str:
        """Membership status of a user (or the bot) in a chat."""
        if chat.peer is not None:
            return "member" if user_id in (chat.peer.id, self.bot.id) else "left"
        default = "administrator" if user_id == self.bot.id else "left"
        return chat.members.get(user_id, default)

    def add_message(
        self,
        chat: Chat,
        sender: Account,
        content: JSON,
        thread_id: int | None = None,
        reply_to: JSON | None = None,
    ) -> JSON:
        """Store a new message (next message_id of the chat) and return it."""
        message_id = chat.next_message_id
        chat.next_message_id += 1
        message: JSON = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat.to_dict(),
            "from": sender.to_dict(),
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
            if reply_to is None and thread_id != message_id:  # as in Telegram, they reply to the topic
                reply_to = self.messages.get((chat.id, thread_id))
        if reply_to is not None:
            message["reply_to_message"] = {k: v for k, v in reply_to.items() if k != "reply_to_message"}
        message.update(content)
        self.messages[(chat.id, message_id)] = message
        return copy.deepcopy(message)

    def create_topic(
        self,
        chat: Chat,
        name: str,
        creator: Account,
        icon_color: int = TOPIC_COLORS[0],
        icon_custom_emoji_id: str | None = None,
    ) -> Topic:
        """Open a forum topic: a forum_topic_created service message whose id becomes the thread id."""
        thread_id = chat.next_message_id
        created: JSON = {"name": name, "icon_color": icon_color}
        if icon_custom_emoji_id:
            created["icon_custom_emoji_id"] = icon_custom_emoji_id
        self.add_message(chat, creator, {"forum_topic_created": created}, thread_id=thread_id)
        topic = Topic(thread_id, name, icon_color, icon_custom_emoji_id)
        chat.topics[thread_id] = topic
        return topic

    def add_file(self, data: bytes, folder: str, mime_type: str, file_name: str | None = None) -> StoredFile:
        """Store bytes under a new file_id and file_path (extension from file_name or mime_type)."""
        n = next(self._file_seq)
        extension = PurePosixPath(file_name or "").suffix.lstrip(".") or mime_type.rpartition("/")[2]
        stored = StoredFile(
            file_id=f"{folder}-{n:04d}-fake",
            file_unique_id=f"U{n:04d}",
            file_path=f"{folder}/file_{n}.{extension}",
            data=data,
            mime_type=mime_type,
            file_name=file_name,
        )
        self.files[stored.file_id] = stored
        return stored

    def media(self, kind: str, stored: StoredFile, **extra: Any) -> Any:
        """The message field for a stored file: photo (list of PhotoSize), document, voice or sticker."""
        base: JSON = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
        }
        if kind == "photo":
            return [{**base, "width": extra.get("width", 1280), "height": extra.get("height", 960)}]
        if kind == "document":
            return {
                **base,
                "file_name": stored.file_name or stored.file_path.rpartition("/")[2],
                "mime_type": stored.mime_type,
            }
        if kind == "voice":
            return {**base, "duration": extra.get("duration", 1), "mime_type": stored.mime_type}
        if kind == "sticker":
            return {
                **base,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": extra.get("emoji", "👍"),
            }
        raise ValueError(f"unknown media kind {kind!r}")
