"""The engine's decisions, with the NLU server replaced at the transport level."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bot.engine import MAX_CLASSIFIED_CHARS, Engine, InvalidQuestion, Outcome, UnknownCity
from bot.i18n import Catalogues
from bot.knowledge import load_knowledge_base
from bot.language import LanguageDetector
from bot.settings import Settings
from nlu import NLUClient

from .conftest import entry, write

LANGS = ("en", "uk", "ru", "ar", "fa", "bg", "cs", "sk", "hr", "it")
# The make_engine fixture: an engine whose NLU server answers with the given handler.
EngineFactory = Callable[[Callable[[httpx.Request], httpx.Response]], Engine]

Ranking = list[tuple[str, float]]


def rasa(ranking: Ranking, seen: list[str] | None = None) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(json.loads(request.content)["text"])
        items = [{"name": k, "confidence": c} for k, c in ranking]
        return httpx.Response(200, json={"intent": items[0], "intent_ranking": items})

    return handler


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(LANGS)


@pytest.fixture
def make_engine(content_dir: Path, detector: LanguageDetector) -> EngineFactory:
    write(
        content_dir / "countries/cz/safety.yml", entry("safety.emergency", en="Call 112.", cs="Volejte 112.")
    )
    settings = Settings(languages=LANGS, cities=("prague", "brno", "kosice"), content_dir=content_dir)
    kb = load_knowledge_base(content_dir, settings.cities, LANGS)

    def build(handler: Callable[[httpx.Request], httpx.Response]) -> Engine:
        client = NLUClient("http://nlu.test", "s" * 32, transport=httpx.MockTransport(handler))
        return Engine(settings, kb, client, detector, Catalogues(LANGS))

    return build


async def test_confident_content_key_gives_a_sourced_answer(make_engine: EngineFactory) -> None:
    engine = make_engine(rasa([("permit.renewal", 0.93), ("permit.permanent", 0.04)]))
    reply = await engine.ask("jak prodloužit povolení k pobytu", "prague", "en")
    assert reply.outcome is Outcome.ANSWER and reply.key == "permit.renewal"
    assert reply.language == "cs" and reply.text == "Prodloužení na OAMP."
    assert reply.answer is not None and reply.answer.sources == ("https://www.example.gov/permit.renewal",)
    assert reply.notice is None and not reply.handoff
    record = reply.to_json()
    assert record["answer"] == "Prodloužení na OAMP." and record["updated"] == "2026-11-01"
    assert record["checked_by"] is None and record["checked_on"] is None
    assert record["sources"] == ["https://www.example.gov/permit.renewal"]


async def test_missing_translation_falls_back_and_says_so(make_engine: EngineFactory) -> None:
    engine = make_engine(rasa([("permit.renewal", 0.9)]))
    reply = await engine.ask("كيف أجدد تصريح الإقامة الخاص بي", "prague", "ar")
    assert reply.language == "ar" and reply.answer is not None and reply.answer.language == "en"
    assert reply.notice is not None and "English" in reply.notice and "العربية" in reply.notice


async def test_low_confidence_offers_pickable_alternatives(make_engine: EngineFactory) -> None:
    ranking = [
        ("permit.renewal", 0.40),
        ("out_of_scope", 0.25),
        ("permit.permanent", 0.2),
        ("greet", 0.1),
        ("human_handoff", 0.03),
        ("housing.rent", 0.02),
    ]
    reply = await make_engine(rasa(ranking)).ask("permit thing", "prague", "en")
    assert reply.outcome is Outcome.CLARIFY and reply.to_json()["answer"] is None
    assert [a.key for a in reply.alternatives] == ["permit.renewal", "permit.permanent"]


async def test_low_confidence_with_nothing_to_offer_is_out_of_scope(make_engine: EngineFactory) -> None:
    reply = await make_engine(rasa([("greet", 0.4), ("thanks", 0.3)])).ask("hmm well", "prague", "en")
    assert reply.outcome is Outcome.OUT_OF_SCOPE


@pytest.mark.parametrize(
    ("key", "outcome", "handoff"),
    [
        ("out_of_scope", Outcome.OUT_OF_SCOPE, False),
        ("human_handoff", Outcome.HANDOFF, True),
        ("greet", Outcome.CONVERSATION, False),
        ("bot_capabilities", Outcome.CONVERSATION, False),
    ],
)
async def test_conversation_keys_are_flagged(
    make_engine: EngineFactory, key: str, outcome: Outcome, handoff: bool
) -> None:
    engine = make_engine(rasa([(key, 0.95)]))
    reply = await engine.ask("some question here", "prague", "en")
    assert reply.outcome is outcome and reply.handoff is handoff and reply.key == key
    assert reply.text == engine.conversation_text(key, "prague", "en") and reply.text


async def test_emergency_is_answered_at_lower_confidence_and_flags_handoff(
    make_engine: EngineFactory,
) -> None:
    reply = await make_engine(rasa([("safety.emergency", 0.35), ("housing.shelter", 0.3)])).ask(
        "he hits me help", "prague", "en"
    )
    assert reply.outcome is Outcome.ANSWER and reply.urgent and reply.handoff
    assert "112" in reply.text


@pytest.mark.parametrize("text", ["", "   \n\t ", "\x00\x07\x1b"])
async def test_empty_input_is_a_clear_error(make_engine: EngineFactory, text: str) -> None:
    with pytest.raises(InvalidQuestion) as caught:
        await make_engine(rasa([("greet", 1.0)])).ask(text, "prague", "uk")
    assert caught.value.reason == "empty" and caught.value.message


async def test_emoji_only_is_a_clear_error(make_engine: EngineFactory) -> None:
    with pytest.raises(InvalidQuestion) as caught:
        await make_engine(rasa([("greet", 1.0)])).ask("😀🙏🏽 👍", "prague", "en")
    assert caught.value.reason == "no_letters"


async def test_very_long_and_mixed_input_is_still_classified(make_engine: EngineFactory) -> None:
    seen: list[str] = []
    engine = make_engine(rasa([("permit.renewal", 0.9)], seen))
    reply = await engine.ask("продовжити permit " * 600, "prague", "uk")
    assert reply.outcome is Outcome.ANSWER and len(seen[0]) == MAX_CLASSIFIED_CHARS == 4000
    reply = await engine.ask("ahoj\x00 привет\u202e مرحبا", "prague", "cs")
    assert reply.outcome is Outcome.ANSWER and "\x00" not in seen[1]


async def test_unknown_city_and_city_without_content(make_engine: EngineFactory) -> None:
    engine = make_engine(rasa([("permit.renewal", 0.9)]))
    with pytest.raises(UnknownCity, match="atlantis"):
        await engine.ask("renew permit", "atlantis", "en")
    reply = await engine.ask("how do I renew my permit", "kosice", "en")
    assert reply.outcome is Outcome.NO_CONTENT and "no information" in reply.text


async def test_key_without_content_in_a_city(make_engine: EngineFactory) -> None:
    reply = await make_engine(rasa([("housing.shelter", 0.9)])).ask("where to sleep", "prague", "en")
    assert reply.outcome is Outcome.NO_CONTENT and reply.key == "housing.shelter"


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")],
)
async def test_nlu_down_or_slow_gives_a_graceful_reply(
    make_engine: EngineFactory, failure: Exception
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    reply = await make_engine(handler).ask("how do I renew my permit", "prague", "en")
    assert reply.outcome is Outcome.UNAVAILABLE and "try again" in reply.text
