"""The typed context handlers receive: ``context.services``, ``context.storage``, ``context.delivery``,
``context.gettext``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telegram.ext import CallbackContext, ExtBot

if TYPE_CHECKING:
    from babel.support import NullTranslations

    from ..clock import Clock
    from ..runtime import Services
    from ..settings import Settings
    from ..storage import Storage
    from ..storage._records import PersonData
    from .delivery import Delivery

__all__ = ["BotContext", "BotData", "ChatState"]


@dataclass
class ChatState:
    """In-memory state of one private chat before it is stored (nothing is stored before consent)."""

    language: str | None = None
    pending_city: str | None = None
    # Bad turns in a row: "did you mean…" replies and answers marked 👎. An answer starts a new run
    # tentatively; ``unhelpful_before_answer`` remembers the run it interrupted, should it get a 👎.
    unhelpful_in_a_row: int = 0
    unhelpful_before_answer: int = 0

    def answered(self) -> None:
        """The bot gave an answer (which may still get a 👎)."""
        self.unhelpful_before_answer, self.unhelpful_in_a_row = self.unhelpful_in_a_row, 0

    def missed(self, *, unhelpful_answer: bool = False) -> int:
        """A "did you mean…" reply, or a 👎 on the last answer; returns the bad turns in a row."""
        if unhelpful_answer:
            self.unhelpful_in_a_row, self.unhelpful_before_answer = self.unhelpful_before_answer + 1, 0
        else:
            self.unhelpful_in_a_row += 1
        return self.unhelpful_in_a_row

    def reset(self) -> None:
        """A 👍, or a person has taken over: the run is over."""
        self.unhelpful_in_a_row = self.unhelpful_before_answer = 0


class BotData:
    """Application-wide objects, built once in ``post_init`` and closed in ``post_shutdown``."""

    def __init__(self) -> None:
        # The deployment settings the application was built with: the handlers' one source.
        self.settings: Settings | None = None
        self.services: Services | None = None
        self.storage: Storage | None = None
        # The one layer everything the bot sends goes through (built with the application).
        self.delivery: Delivery | None = None


_UNREAD = object()


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]):
    """Handler context with typed access to the application's services."""

    @property
    def services(self) -> Services:
        services = self.bot_data.services
        if services is None:
            raise RuntimeError("services are not open")
        return services

    @property
    def settings(self) -> Settings:
        """The deployment settings the application was built with (languages, cities, staff groups)."""
        settings = self.bot_data.settings
        if settings is None:
            raise RuntimeError("the application has no settings")
        return settings

    @property
    def storage(self) -> Storage:
        storage = self.bot_data.storage
        if storage is None:
            raise RuntimeError("storage is not open")
        return storage

    @property
    def delivery(self) -> Delivery:
        """The one layer everything the bot sends goes through (``delivery.py``)."""
        delivery = self.bot_data.delivery
        if delivery is None:
            raise RuntimeError("the application has no delivery layer")
        return delivery

    @property
    def clock(self) -> Clock:
        """The application's clock (the one the storage stamps rows with)."""
        return self.storage.clock

    @property
    def state(self) -> ChatState:
        data = self.user_data
        if data is None:  # updates without a user (channel posts) never reach the handlers
            return ChatState()
        state = data.get("state")
        if not isinstance(state, ChatState):
            state = data["state"] = ChatState()
        return state

    async def person(self) -> PersonData | None:
        """The stored person of this update's chat, read once per update: the consent check reads it
        and the handler after it reuses it (python-telegram-bot builds one context per update).
        A handler that changes the person reads ``storage.get_person`` again itself."""
        cached = self.__dict__.get("_person", _UNREAD)
        if cached is _UNREAD:
            chat_id = self._chat_id
            cached = None if chat_id is None else await self.storage.get_person(chat_id)
            self.__dict__["_person"] = cached
        return cached

    def translations(self, language: str) -> NullTranslations:
        return self.services.catalogues[language]

    def gettext(self, language: str, message: str) -> str:
        return self.translations(language).gettext(message)
