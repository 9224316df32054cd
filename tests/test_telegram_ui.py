"""Answer cards: HTML escaping, right-to-left marks, and splitting under Telegram's 4,096 limit."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.engine import Engine, Outcome, Reply
from bot.i18n import Catalogues
from bot.knowledge import Answer, KnowledgeBase, Taxonomy
from bot.language import LanguageDetector
from bot.settings import Settings
from bot.telegram.ui import MAX_MESSAGE, RLM, answer_card, rtl, split_text

LANGS = ("en", "ar", "uk")


@pytest.fixture(scope="module")
def engine() -> Engine:
    settings = Settings(languages=LANGS, cities=("prague",))
    kb = KnowledgeBase(
        root=settings.root, taxonomy=Taxonomy(topics={"permits": ("permit.renewal",)}, conversation=())
    )
    return Engine(settings, kb, None, LanguageDetector(["en"]), Catalogues(LANGS))


def reply(text: str, language: str = "en", sources: tuple[str, ...] = ("https://frs.gov.cz/",)) -> Reply:
    answer = Answer(
        "permit.renewal", "prague", language, language, text, sources, dt.date(2026, 11, 23), None, None, "x"
    )
    return Reply(Outcome.ANSWER, "prague", language, text, key="permit.renewal", answer=answer)


def test_content_is_escaped_and_links_are_real_anchors(engine: Engine) -> None:
    [card] = answer_card(
        engine, reply("Bring <b>documents</b> & photos", sources=("https://a.gov/x?a=1&b=2",))
    )
    assert "Bring &lt;b&gt;documents&lt;/b&gt; &amp; photos" in card
    assert '<a href="https://a.gov/x?a=1&amp;b=2">a.gov/x?a=1&amp;b=2</a>' in card
    assert "November 23, 2026" in card and "<i>" in card


def test_arabic_cards_mark_every_line_right_to_left(engine: Engine) -> None:
    [card] = answer_card(engine, reply("جدد الإقامة\n112 للطوارئ", language="ar"))
    assert all(line.startswith(RLM) for line in card.split("\n") if line)
    assert rtl("en", "a\nb") == "a\nb"


def test_long_answers_are_split_without_breaking_tags(engine: Engine) -> None:
    text = "\n\n".join(f"Paragraph {i}: " + "word " * 120 for i in range(20))
    pages = answer_card(engine, reply(text))
    assert len(pages) > 1 and all(len(p) <= MAX_MESSAGE for p in pages)
    assert all(p.count("<a ") == p.count("</a>") and p.count("<i>") == p.count("</i>") for p in pages)
    assert "frs.gov.cz" in pages[-1] and "frs.gov.cz" not in pages[0]
    joined = " ".join(pages)
    assert all(f"Paragraph {i}:" in joined for i in range(20))


def test_split_text_prefers_paragraphs_then_lines_then_words() -> None:
    assert split_text("a" * 10 + "\n\n" + "b" * 10, limit=15) == ["a" * 10, "b" * 10]
    assert split_text("one two three four", limit=9) == ["one two", "three", "four"]
    assert split_text("x" * 25, limit=10) == ["x" * 10, "x" * 10, "x" * 5]
    assert split_text("short") == ["short"]
