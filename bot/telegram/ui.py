"""What the bot shows: answer cards as HTML, keyboards, and splitting long texts."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable, Iterable, Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from ..engine import Engine, Outcome, Reply
from ..language import native_name, text_direction
from ..render import answer_footer
from . import callbacks

__all__ = [
    "MAX_MESSAGE",
    "TOPIC_EMOJI",
    "answer_card",
    "city_keyboard",
    "language_keyboard",
    "menu_button",
    "person_button",
    "rtl",
    "split_text",
    "with_intro",
]

MAX_MESSAGE = 4096
# Right-to-left mark: keeps Arabic/Persian lines right-aligned when they start with a URL or a digit.
RLM = "\u200f"
TOPIC_EMOJI = {
    "permits": "🪪",
    "housing": "🏠",
    "schools": "🎓",
    "health": "🩺",
    "work": "💼",
    "services": "🤝",
    "safety": "🚨",
}


def rtl(language: str, text: str) -> str:
    """Prefix every line with a right-to-left mark for Arabic-script languages."""
    if text_direction(language) != "rtl":
        return text
    return "\n".join(RLM + line if line else line for line in text.split("\n"))


def split_text(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split text into chunks of at most ``limit`` characters, at paragraph, line or word breaks."""
    chunks: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = -1
        for separator in ("\n\n", "\n", " "):
            cut = rest.rfind(separator, 0, limit)
            if cut > limit // 3:
                break
        if cut <= 0:
            cut = limit
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        chunks.append(rest)
    return chunks


def with_intro(reply: Reply, intro: str) -> Reply:
    """``reply`` with ``intro`` as its first paragraph, e.g. "These people can help you in person:"."""
    return dataclasses.replace(reply, text=intro + "\n\n" + reply.text)


def answer_card(engine: Engine, reply: Reply) -> list[str]:
    """The answer as one or more HTML messages: text, sources, and who checked it when."""
    lang = reply.language
    parts: list[str] = []
    if reply.notice:
        parts.append(f"<i>{html.escape(reply.notice)}</i>")
    parts.append(html.escape(reply.text))
    footer = answer_footer(engine, reply)
    if footer is not None:
        links = "\n".join(
            f'• <a href="{html.escape(url, quote=True)}">{html.escape(_short_url(url))}</a>'
            for url in footer.sources
        )
        parts.append("<b>" + html.escape(footer.sources_label) + "</b>\n" + links)
        parts.append(f"<i>{html.escape(footer.review)}</i>")
    body = rtl(lang, "\n\n".join(parts))
    if len(body) <= MAX_MESSAGE:
        return [body]
    # Split the plain answer text, then escape each piece: tags never straddle two messages.
    pieces = [html.escape(p) for p in split_text(reply.text, MAX_MESSAGE - 400)]
    return [rtl(lang, p) for p in pieces[:-1]] + [rtl(lang, "\n\n".join([pieces[-1], *parts[-2:]]))]


def _short_url(url: str) -> str:
    return url.split("://", 1)[-1].rstrip("/")


def rows(buttons: Sequence[InlineKeyboardButton], per_row: int) -> list[list[InlineKeyboardButton]]:
    return [list(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row)]


def person_button(_: Callable[[str], str]) -> InlineKeyboardButton:
    """ "🙋 Talk to a person", in the language of ``_`` (a gettext)."""
    return callbacks.Human().button("🙋 " + _("Talk to a person"))


def menu_button(_: Callable[[str], str]) -> InlineKeyboardButton:
    """ "📋 Browse topics", in the language of ``_`` (a gettext)."""
    return callbacks.Menu().button("📋 " + _("Browse topics"))


def language_keyboard(languages: Iterable[str]) -> InlineKeyboardMarkup:
    buttons = [callbacks.ChooseLanguage(code).button(native_name(code)) for code in languages]
    return InlineKeyboardMarkup(rows(buttons, 2))


def city_keyboard(engine: Engine, cities: Iterable[str], language: str) -> InlineKeyboardMarkup:
    buttons = [callbacks.ChooseCity(c).button(engine.city_name(c, language)) for c in cities]
    return InlineKeyboardMarkup(rows(buttons, 2))


def answer_keyboard(engine: Engine, reply: Reply) -> InlineKeyboardMarkup | None:
    """👍 / 👎 / talk to a person under answers; the alternatives under 'did you mean…'; the topic
    menu and a person when the model could not be asked."""
    _ = engine.catalogues[reply.language].gettext
    person = person_button(_)
    # Without the model (degraded mode) the topic menu is offered too: the words alone may miss.
    menu = [[menu_button(_)]] if reply.degraded else []
    if reply.outcome is Outcome.CLARIFY:
        buttons = [
            [callbacks.ShowKey(a.key).button(engine.kb.title(a.key, reply.language))]
            for a in reply.alternatives
            if a.key in engine.kb.taxonomy.content_keys
        ]
        return InlineKeyboardMarkup([*buttons, *menu, [person]])
    if reply.outcome is Outcome.UNAVAILABLE:
        return InlineKeyboardMarkup([*menu, [person]])
    if reply.outcome is Outcome.ANSWER and reply.key:
        return InlineKeyboardMarkup(
            [
                [
                    callbacks.Feedback(True, reply.key).button("👍"),
                    callbacks.Feedback(False, reply.key).button("👎"),
                ],
                [person],
            ]
        )
    return None
