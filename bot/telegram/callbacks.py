"""The data every inline button carries: built and parsed here, and nowhere else.

Telegram sends back whatever a button carried, and a modified client can send anything at all, so a
button's data is never trusted: ``parse`` accepts only the exact shape ``data`` builds and gives None
for anything else. Whether a value is still valid (a language or city this deployment has, a case
that is still open) is for the handler to check against its settings and storage. Each kind has its
own ``PATTERN`` for its ``CallbackQueryHandler``; data that matches none is answered and ignored.

The data is the kind's ``PREFIX`` and its fields, joined with ":" (``fb:1:permit.renewal``); a bool
is ``0`` or ``1``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import ClassVar, Literal, Self

from telegram import InlineKeyboardButton, Update

from .context import BotContext

__all__ = [
    "Button",
    "CaseAction",
    "ChooseCity",
    "ChooseLanguage",
    "Consent",
    "Feedback",
    "Forget",
    "Human",
    "Languages",
    "Menu",
    "QuickReply",
    "Rating",
    "ShareConversation",
    "ShowKey",
    "ShowTopic",
    "ignore",
    "needs_consent",
]

# The shape of each field's text in the data.
_NAME = r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*"  # a language, city, topic or content key
_ID = r"[1-9][0-9]{0,17}"  # a database id
_SHAPES = {"str": _NAME, "int": _ID, "bool": "[01]"}


class Button:
    """Base of the button kinds: a frozen dataclass whose fields are the button's values."""

    PREFIX: ClassVar[str]
    # Overrides of a field's shape (by field name), e.g. the actions a case button can have.
    SHAPES: ClassVar[dict[str, str]] = {}
    PATTERN: ClassVar[re.Pattern[str]]

    def __init_subclass__(cls, prefix: str, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.PREFIX = prefix

    @classmethod
    def _fields(cls) -> tuple[dataclasses.Field[object], ...]:
        return dataclasses.fields(cls)  # type: ignore[arg-type]

    @classmethod
    def pattern(cls) -> re.Pattern[str]:
        """The regular expression of this kind's data (for its CallbackQueryHandler)."""
        if "PATTERN" not in cls.__dict__:
            shapes = [cls.SHAPES.get(f.name) or _SHAPES[str(f.type)] for f in cls._fields()]
            parts = [re.escape(cls.PREFIX), *(f"({shape})" for shape in shapes)]
            cls.PATTERN = re.compile(":".join(parts) + r"\Z")
        return cls.PATTERN

    @property
    def data(self) -> str:
        """The button's callback data (at most 64 bytes, which Telegram allows)."""
        values = [getattr(self, f.name) for f in self._fields()]
        text = ":".join([self.PREFIX, *(str(int(v)) if isinstance(v, bool) else str(v) for v in values)])
        if len(text.encode()) > 64:
            raise ValueError(f"callback data longer than 64 bytes: {text!r}")
        return text

    def button(self, text: str) -> InlineKeyboardButton:
        """An inline button showing ``text`` that carries this data."""
        return InlineKeyboardButton(text, callback_data=self.data)

    @classmethod
    def parse(cls, data: str | None) -> Self | None:
        """The button whose data this is; None when it is not exactly what ``data`` builds."""
        match = cls.pattern().fullmatch(data or "")
        if match is None:
            return None
        values: list[object] = []
        for field, text in zip(cls._fields(), match.groups(), strict=True):
            values.append(int(text) if field.type == "int" else text == "1" if field.type == "bool" else text)
        return cls(*values)


@dataclasses.dataclass(frozen=True)
class Languages(Button, prefix="languages"):
    """Show the language picker."""


@dataclasses.dataclass(frozen=True)
class Consent(Button, prefix="consent"):
    """The person agrees to the privacy notice."""


@dataclasses.dataclass(frozen=True)
class Menu(Button, prefix="menu"):
    """Browse the topics."""


@dataclasses.dataclass(frozen=True)
class Human(Button, prefix="human"):
    """Talk to a person."""


@dataclasses.dataclass(frozen=True)
class Forget(Button, prefix="forget"):
    """Yes, delete my data."""


@dataclasses.dataclass(frozen=True)
class ChooseLanguage(Button, prefix="lang"):
    """Continue in this language."""

    code: str


@dataclasses.dataclass(frozen=True)
class ChooseCity(Button, prefix="city"):
    """The person lives in this city."""

    city: str


@dataclasses.dataclass(frozen=True)
class ShowTopic(Button, prefix="topic"):
    """The questions of one topic of the menu."""

    topic: str


@dataclasses.dataclass(frozen=True)
class ShowKey(Button, prefix="key"):
    """The answer for one content key (from the menu, or "did you mean…")."""

    key: str


@dataclasses.dataclass(frozen=True)
class Feedback(Button, prefix="fb"):
    """👍 or 👎 under an answer."""

    helpful: bool
    key: str


@dataclasses.dataclass(frozen=True)
class CaseAction(Button, prefix="case"):
    """Claim, Close or Return to bot on a case card (staff)."""

    SHAPES: ClassVar[dict[str, str]] = {"action": "claim|close|return"}
    action: Literal["claim", "close", "return"]
    case_id: int


@dataclasses.dataclass(frozen=True)
class QuickReply(Button, prefix="quick"):
    """One of the /quick ready replies, for a case (staff)."""

    SHAPES: ClassVar[dict[str, str]] = {"index": "[0-9]{1,2}"}
    case_id: int
    index: int


@dataclasses.dataclass(frozen=True)
class Rating(Button, prefix="rate"):
    """The person's 1–5 stars for a closed case."""

    SHAPES: ClassVar[dict[str, str]] = {"stars": "[1-5]"}
    case_id: int
    stars: int


@dataclasses.dataclass(frozen=True)
class ShareConversation(Button, prefix="share"):
    """The person's answer: may their conversation go with a case referred to another organisation."""

    referral_id: int
    share: bool


# Buttons a person may press before agreeing to the privacy notice and choosing a city.
_BEFORE_CONSENT = (ChooseLanguage, Languages, Consent, ChooseCity, Forget)
_AFTER_CONSENT = (
    Menu,
    Human,
    ShowTopic,
    ShowKey,
    Feedback,
    CaseAction,
    QuickReply,
    Rating,
    ShareConversation,
)


def needs_consent(data: str | None) -> bool:
    """A real button that only works after consent. Onboarding buttons and /forget work before it;
    forged data is left to ``ignore``."""
    return any(kind.pattern().fullmatch(data or "") for kind in _AFTER_CONSENT)


async def ignore(update: Update, context: BotContext) -> None:
    """Answer a button whose data is forged or stale, and do nothing else."""
    if update.callback_query is not None:
        await update.callback_query.answer()
