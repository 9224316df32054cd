"""Texts the handoff shares between its parts: ready replies, and the person's catalogue."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from babel.support import NullTranslations

    from ...storage import CaseData
    from ..context import BotContext

__all__ = ["NOT_DELIVERED", "N_", "QUICK_REPLIES", "STILL_CONNECTING", "person_texts"]


def N_(message: str) -> str:
    """Mark a text for translation; it is translated when shown, in the reader's language."""
    return message


# Ready replies staff can send with /quick: shown to staff in their language, sent in the person's.
QUICK_REPLIES = (
    N_("We will call you."),
    N_(
        "Please bring your documents: your passport or ID card, your residence permit if you have one, "
        "and any letters you have received."
    ),
    N_("We are looking into your question and will write back here soon."),
    N_("Please send a photo of the document or letter you mean."),
    N_("Could you tell us a little more about your situation?"),
    N_("We are looking for an interpreter for your language and will write back soon."),
)
NOT_DELIVERED = N_("Not delivered: the person has blocked the bot or deleted the chat.")
# To the person, while their case waits for its topic (Telegram could not be reached just now).
STILL_CONNECTING = N_(
    "Connecting you to a caseworker is taking longer than usual. I will keep trying, and I will tell you "
    "when they have your conversation. You can keep writing here."
)


def person_texts(context: BotContext, case: CaseData) -> NullTranslations:
    """The catalogue of the person's language (what the bot writes to them about their case)."""
    return context.translations(case.language)
