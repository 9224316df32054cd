"""Plain-text rendering of replies, for the terminal chat, ``ask`` and ``content preview``.

``answer_footer`` is the one place that words what follows an answer (its sources and who checked it
when); the Telegram answer card (``bot/telegram/ui.py``) lays the same footer out as HTML.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from babel.dates import format_date

from .engine import Engine, Outcome, Reply
from .knowledge import Answer

__all__ = ["AnswerFooter", "answer_footer", "render_plain", "review_note"]


@dataclass(frozen=True)
class AnswerFooter:
    """What follows an answer, in the person's language: the sources and who checked it when."""

    sources_label: str
    sources: tuple[str, ...]
    review: str


@functools.lru_cache(maxsize=4096)
def long_date(day: date, language: str) -> str:
    """``day`` written out in ``language`` ("23 November 2026"); answers share a few dates, and Babel
    reads its locale data anew on every call (a tenth of a millisecond per answer)."""
    return format_date(day, format="long", locale=language)


def review_note(gettext: Callable[[str], str], answer: Answer, language: str) -> str:
    """Who checked the answer when, or (when no partner organisation has) when it last changed."""
    if answer.checked_by is not None and answer.checked_on is not None:
        checked_on = long_date(answer.checked_on, language)
        # TRANSLATORS: shown under an answer. {organisation} is a partner
        # organisation's name as the editors wrote it, e.g. "Integration Centre
        # Prague"; {date} is a date in the person's language, e.g. "23 November
        # 2026" (in some languages it ends with a full stop, e.g. "2026 р.").
        return gettext("Checked by {organisation} on {date}.").format(
            organisation=answer.checked_by, date=checked_on
        )
    updated = long_date(answer.updated, language)
    # TRANSLATORS: shown under an answer no partner organisation has checked
    # yet. {date} is the day its text or sources last changed, in the person's
    # language (in some languages it ends with a full stop, e.g. "2026 р.").
    return gettext("Not yet checked by a partner organisation. Last updated {date}.").format(date=updated)


def answer_footer(engine: Engine, reply: Reply) -> AnswerFooter | None:
    """The sources and the review note of ``reply``'s answer, or None for a reply without one."""
    if reply.answer is None:
        return None
    _ = engine.catalogues[reply.language].gettext
    return AnswerFooter(
        sources_label=_("Sources:"),
        sources=reply.answer.sources,
        review=review_note(_, reply.answer, reply.language),
    )


def render_plain(engine: Engine, reply: Reply) -> str:
    """Everything a person would read for ``reply``, as plain text."""
    _ = engine.catalogues[reply.language].gettext
    lines: list[str] = []
    if reply.notice:
        lines += [f"({reply.notice})", ""]
    lines.append(reply.text)
    if reply.outcome is Outcome.CLARIFY:
        lines += [
            f"  {i}. {engine.kb.title(a.key, reply.language)}" for i, a in enumerate(reply.alternatives, 1)
        ]
    footer = answer_footer(engine, reply)
    if footer is not None:
        lines += ["", footer.sources_label, *(f"  {url}" for url in footer.sources), footer.review]
    if reply.caution:
        lines += ["", caution_text(engine, reply.language)]
    if reply.handoff or reply.caution:
        lines += ["", _("You can talk to a person: in Telegram, send /human.")]
    return "\n".join(lines)


def caution_text(engine: Engine, language: str) -> str:
    """What ends a reply that came near an alarm without raising it (``Reply.caution``)."""
    return engine.catalogues[language].gettext("If you are in danger, call 112 now.")
