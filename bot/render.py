"""Plain-text rendering of replies, for the terminal chat, ``ask`` and ``content preview``."""

from __future__ import annotations

from babel.dates import format_date

from .engine import Engine, Outcome, Reply

__all__ = ["answer_footer", "render_plain"]


def answer_footer(engine: Engine, reply: Reply) -> list[str]:
    """Sources, last-checked date and review status, in the person's language."""
    if reply.answer is None:
        return []
    _ = engine.catalogues[reply.language].gettext
    lines = [_("Sources:")]
    lines += [f"  {url}" for url in reply.answer.sources]
    checked = format_date(reply.answer.last_reviewed, format="long", locale=reply.language)
    # TRANSLATORS: {date} is a date formatted for the person's language, e.g. "23 November 2026".
    lines.append(_("Last checked: {date}").format(date=checked))
    if reply.answer.status != "reviewed":
        lines.append(_("Draft: this answer has not yet been reviewed by a person."))
    return lines


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
    if footer:
        lines += ["", *footer]
    if reply.handoff:
        lines += ["", _("You can talk to a person: in Telegram, send /human.")]
    return "\n".join(lines)
