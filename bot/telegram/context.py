"""The typed context handlers receive: ``context.services``, ``context.storage``, ``context.gettext``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telegram.ext import CallbackContext, ExtBot

if TYPE_CHECKING:
    from babel.support import NullTranslations

    from ..runtime import Services
    from ..storage import Storage

__all__ = ["BotContext", "BotData", "ChatState"]


@dataclass
class ChatState:
    """In-memory state of one private chat before it is stored (nothing is stored before consent)."""

    language: str | None = None
    pending_city: str | None = None
    unhelpful_in_a_row: int = 0


class BotData:
    """Application-wide objects, built once in ``post_init`` and closed in ``post_shutdown``."""

    def __init__(self) -> None:
        self.services: Services | None = None
        self.storage: Storage | None = None


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]):
    """Handler context with typed access to the application's services."""

    @property
    def services(self) -> Services:
        services = self.bot_data.services
        if services is None:
            raise RuntimeError("services are not open")
        return services

    @property
    def storage(self) -> Storage:
        storage = self.bot_data.storage
        if storage is None:
            raise RuntimeError("storage is not open")
        return storage

    @property
    def state(self) -> ChatState:
        data = self.user_data
        if data is None:  # updates without a user (channel posts) never reach the handlers
            return ChatState()
        state = data.get("state")
        if not isinstance(state, ChatState):
            state = data["state"] = ChatState()
        return state

    def translations(self, language: str) -> NullTranslations:
        return self.services.catalogues[language]

    def gettext(self, language: str, message: str) -> str:
        return self.translations(language).gettext(message)
