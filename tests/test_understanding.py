"""The engine's safety net and message logic over the model's extra outputs (no Rasa: a mock server).

The model reports, beside the intent ranking, an emergency score for the whole message and each
sentence, each sentence's own best key, the distance to the nearest training example and a language
guess; these tests pin down what the engine makes of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bot.engine import Engine, Outcome
from bot.i18n import Catalogues
from bot.knowledge import KnowledgeBase, load_knowledge_base
from bot.language import LanguageDetector
from bot.render import render_plain
from bot.runtime import training_examples, training_keys
from bot.safety import DangerSignals, load_safety
from bot.settings import NLUSettings, Settings
from nlu import IntentScore, NLUClient

from .conftest import ROOT, entry, write

LANGS = ("en", "uk", "ru", "ar", "fa", "bg", "cs", "sk", "hr", "it")
JSON = dict[str, Any]


def parse_result(
    ranking: list[tuple[str, float]],
    *,
    emergency: float = 0.0,
    part: int | None = None,
    parts: list[tuple[str, float, float]] | None = None,
    nearest: float | None = 0.9,
    language: list[tuple[str, float]] | None = None,
) -> JSON:
    items = [{"name": k, "confidence": c} for k, c in ranking]
    return {
        "intent": items[0],
        "intent_ranking": items,
        "nearest": nearest,
        "emergency": {"score": emergency, "part": part},
        "parts": [{"name": k, "confidence": c, "nearest": n} for k, c, n in parts or []],
        "language": [{"name": k, "confidence": c} for k, c in language or []],
    }


def server(body: JSON, seen: list[str] | None = None) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(json.loads(request.content)["text"])
        return httpx.Response(200, json=body)

    return handler


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(LANGS)


@pytest.fixture
def make_engine(content_dir: Path, detector: LanguageDetector):  # type: ignore[no-untyped-def]
    write(
        content_dir / "countries/cz/safety.yml", entry("safety.emergency", en="Call 112.", cs="Volejte 112.")
    )
    write(
        content_dir / "countries/cz/housing.yml",
        entry("housing.tenant_rights", en="Tenant rights and the rental contract.", ru="Права жильцов."),
    )
    write(
        content_dir / "safety/en.yml",
        'situations:\n  - "he is hitting her"\nsignals:\n  - "not breathing"\n'
        'danger_over:\n  - "years ago"\n  - "now i am safe"\n  - "just a drill"\n',
    )
    write(content_dir / "safety/ru.yml", 'situations: []\nsignals:\n  - "ne dysh*"\n  - "не дышит"\n')
    nlu = NLUSettings(nearest_min=0.5, emergency_detector_threshold=0.5, emergency_caution_threshold=0.25)
    settings = Settings(languages=LANGS, cities=("prague", "brno"), content_dir=content_dir, nlu=nlu)
    kb = load_knowledge_base(content_dir, settings.cities, LANGS)

    def build(handler: Callable[[httpx.Request], httpx.Response]) -> Engine:
        client = NLUClient("http://nlu.test", "s" * 32, transport=httpx.MockTransport(handler))
        return Engine(settings, kb, client, detector, Catalogues(LANGS))

    return build


async def test_the_detector_raises_an_emergency_when_another_key_wins(make_engine) -> None:  # type: ignore[no-untyped-def]
    body = parse_result([("housing.tenant_rights", 0.81), ("safety.emergency", 0.1)], emergency=0.74)
    engine = make_engine(server(body))
    reply = await engine.ask("my neighbour screams, her husband is beating her, what do i do", "prague", "en")
    assert reply.urgent and reply.urgent_reason == "detector"
    assert reply.key == "safety.emergency" and reply.text == "Call 112."
    # The other question is still answered, after the emergency numbers.
    assert reply.followup is not None and reply.followup.key == "housing.tenant_rights"
    assert reply.followup.text == "Tenant rights and the rental contract."


async def test_a_danger_signal_wins_even_when_the_model_is_calm(make_engine) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(server(parse_result([("out_of_scope", 0.9)], emergency=0.01)))
    reply = await engine.ask("my friend is NOT breathing!!", "prague", "en")
    assert reply.urgent and reply.urgent_reason == "signal" and reply.followup is None
    # Stems and transliteration: "ne dyshit" matches the signal "ne dysh*" in any prior language.
    reply = await engine.ask("muzh upal i ne dyshit", "prague", "cs")
    assert reply.urgent and reply.urgent_reason == "signal"


async def test_danger_signals_are_found_without_the_model(make_engine) -> None:  # type: ignore[no-untyped-def]
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    engine = make_engine(down)
    reply = await engine.ask("он не дышит", "prague", "ru")
    assert reply.urgent and reply.outcome is Outcome.ANSWER and reply.key == "safety.emergency"
    calm = await engine.ask("how do i renew my permit", "prague", "en")
    assert calm.outcome is Outcome.UNAVAILABLE and not calm.urgent


async def test_below_the_detector_threshold_there_is_no_alarm(make_engine) -> None:  # type: ignore[no-untyped-def]
    body = parse_result([("housing.tenant_rights", 0.81)], emergency=0.39)
    reply = await make_engine(server(body)).ask("landlord keeps my deposit", "prague", "en")
    assert not reply.urgent and reply.outcome is Outcome.ANSWER and reply.key == "housing.tenant_rights"
    # A high detector score on one sentence alone is not enough (sad but safe stories)...
    story = parse_result(
        [("housing.tenant_rights", 0.8)],
        emergency=0.95,
        part=1,
        parts=[("housing.tenant_rights", 0.7, 0.8), ("housing.tenant_rights", 0.5, 0.6)],
    )
    story["emergency"]["whole"] = 0.2
    reply = await make_engine(server(story)).ask(
        "The landlord threw us out. I cried all night.", "prague", "en"
    )
    assert not reply.urgent and reply.key == "housing.tenant_rights"
    # ...but a sentence the model itself reads as an emergency is.
    story["parts"][1] = {"name": "safety.emergency", "confidence": 0.62, "nearest": 0.7}
    reply = await make_engine(server(story)).ask(
        "The landlord threw us out. He is hitting me now.", "prague", "en"
    )
    assert reply.urgent and reply.urgent_reason == "sentence"
    assert reply.followup is not None and reply.followup.key == "housing.tenant_rights"


async def test_the_emergency_as_best_key_counts_even_when_the_model_is_unsure(make_engine) -> None:  # type: ignore[no-untyped-def]
    body = parse_result([("safety.emergency", 0.21), ("housing.shelter", 0.2)], emergency=0.1)
    reply = await make_engine(server(body)).ask("please they are outside my door", "prague", "en")
    assert reply.urgent and reply.urgent_reason == "key" and reply.text == "Call 112."
    # Below the best key, the emergency counts from emergency_threshold (0.3).
    second = parse_result([("human_handoff", 0.5), ("safety.emergency", 0.29)], emergency=0.1)
    reply = await make_engine(server(second)).ask("i want to talk to someone", "prague", "en")
    assert not reply.urgent
    second["intent_ranking"][1]["confidence"] = 0.31
    reply = await make_engine(server(second)).ask("i want to talk to someone", "prague", "en")
    assert reply.urgent and reply.urgent_reason == "key"


async def test_a_long_story_is_answered_from_its_most_confident_sentence(make_engine) -> None:  # type: ignore[no-untyped-def]
    body = parse_result(
        [("greet", 0.40), ("housing.tenant_rights", 0.30)],
        parts=[("greet", 0.9, 0.9), ("housing.tenant_rights", 0.77, 0.8), ("permit.renewal", 0.6, 0.3)],
    )
    engine = make_engine(server(body))
    reply = await engine.ask("Hello. I live in Prague two years. The landlord wants me out.", "prague", "en")
    assert reply.outcome is Outcome.ANSWER and reply.key == "housing.tenant_rights"
    # A sentence far from every real example of its key is not trusted (nearest 0.3 < 0.5).
    body = parse_result([("greet", 0.40)], parts=[("permit.renewal", 0.9, 0.3)])
    reply = await make_engine(server(body)).ask("Hi. Renew my netflix please.", "prague", "en")
    assert reply.outcome is not Outcome.ANSWER


async def test_a_sentence_raises_the_alarm_only_through_the_tuned_threshold(make_engine) -> None:  # type: ignore[no-untyped-def]
    # "This office is literally killing me. Can my landlord keep the deposit?": the first sentence read
    # as the emergency (0.59), the most confident sentence but below emergency_sentence_confidence
    # (0.6 here), the second as a tenancy question.
    body = parse_result(
        [("greet", 0.40), ("housing.tenant_rights", 0.30)],
        parts=[("safety.emergency", 0.59, 0.9), ("housing.tenant_rights", 0.56, 0.8)],
    )
    reply = await make_engine(server(body)).ask("This office is killing me. Deposit?", "prague", "en")
    assert not reply.urgent and reply.outcome is Outcome.ANSWER and reply.key == "housing.tenant_rights"
    # At the threshold the sentence raises it, with its reason, and the tenancy answer follows.
    body["parts"][0]["confidence"] = 0.6
    reply = await make_engine(server(body)).ask("He is hitting me. Deposit?", "prague", "en")
    assert reply.urgent and reply.urgent_reason == "sentence"
    assert reply.followup is not None and reply.followup.key == "housing.tenant_rights"


async def test_danger_told_as_over_is_answered_with_the_emergency_number_not_the_alarm(make_engine) -> None:  # type: ignore[no-untyped-def]
    # "Years ago my ex beat me badly, now I am safe. Can I get a free lawyer?": one sentence reads as
    # the emergency (0.8 >= 0.6), the whole message as the legal question.
    story = parse_result(
        [("housing.tenant_rights", 0.8), ("safety.emergency", 0.1)],
        emergency=0.1,
        parts=[("safety.emergency", 0.8, 0.9), ("housing.tenant_rights", 0.7, 0.8)],
    )
    engine = make_engine(server(story))
    reply = await engine.ask("Years ago my ex beat me badly, now I am safe. My deposit?", "prague", "en")
    assert not reply.urgent and reply.outcome is Outcome.ANSWER and reply.key == "housing.tenant_rights"
    assert reply.caution  # the answer, then "if you are in danger, call 112" and a person
    assert "112" in render_plain(engine, reply)
    # Without the phrase the same sentence raises the alarm.
    reply = await engine.ask("My ex beat me badly. My deposit?", "prague", "en")
    assert reply.urgent and reply.urgent_reason == "sentence"
    # A danger word is held back the same way ("just a drill"), but not while the model is away:
    # then the words are all there is.
    calm = parse_result([("housing.tenant_rights", 0.8)], emergency=0.1)
    reply = await make_engine(server(calm)).ask(
        "the alarm said he is not breathing, it was just a drill. who checks the alarms?", "prague", "en"
    )
    assert not reply.urgent and reply.caution

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    reply = await make_engine(down).ask("not breathing, it was just a drill", "prague", "en")
    assert reply.urgent and reply.urgent_reason == "signal"
    # The model's reading of the whole message is never held back.
    whole = parse_result([("housing.tenant_rights", 0.8)], emergency=0.9)
    reply = await make_engine(server(whole)).ask(
        "years ago he hit me, now he is back with a knife", "prague", "en"
    )
    assert reply.urgent and reply.urgent_reason == "detector"
    key = parse_result([("safety.emergency", 0.5), ("housing.tenant_rights", 0.4)], emergency=0.1)
    reply = await make_engine(server(key)).ask("now i am safe? no, he is at the door", "prague", "en")
    assert reply.urgent and reply.urgent_reason == "key"


def load_safety_file(content_dir: Path, text: str) -> tuple[KnowledgeBase, str]:
    """A knowledge base with ``text`` as content/safety/en.yml, and what the checker says of that file."""
    write(content_dir / "countries/cz/safety.yml", entry("safety.emergency", en="Call 112."))
    write(content_dir / "safety/en.yml", text)
    kb = load_knowledge_base(content_dir, ("prague",), LANGS)
    return kb, " ".join(p.message for p in kb.errors if p.file.endswith("safety/en.yml"))


def test_a_danger_over_phrase_inside_a_situation_is_reported_to_editors(content_dir: Path) -> None:
    kb, messages = load_safety_file(
        content_dir,
        'situations:\n  - "he hit me years ago and now he is at the door with a knife"\n'
        'signals:\n  - "heart attack"\n'
        'not_emergencies:\n  - "i had a heart attack years ago, do i need a paper for my permit?"\n'
        '  - "my boss gave me a heart attack with this contract"\n'
        'danger_over:\n  - "years ago"\n  - "it was a drill"\n',
    )
    assert "danger_over" in messages and "years ago" in messages and "it was a drill" not in messages
    # A not-emergency with a danger signal could never stop an alarm, unless a "danger over" phrase
    # holds the signal back.
    assert "still raise the alarm" in messages and "my boss gave me a heart attack" in messages
    assert "do i need a paper" not in messages
    assert kb.safety.signals.over("It Was A Drill, thank god") == ("en", "it was a drill")
    assert kb.safety.signals.over("a drilling machine") is None


async def test_a_message_near_an_alarm_ends_with_the_emergency_number_and_a_person(make_engine) -> None:  # type: ignore[no-untyped-def]
    # "Thank you for everything, I won't need the appointment any more": thanks, but the detector's
    # 0.35 and the emergency's 0.2 in the ranking are below their alarms (0.5, 0.3) and above the
    # caution threshold (0.25 here).
    body = parse_result([("thanks", 0.7), ("safety.emergency", 0.2)], emergency=0.35)
    engine = make_engine(server(body))
    reply = await engine.ask("thank you for everything, I won't need it any more", "prague", "en")
    assert reply.outcome is Outcome.CONVERSATION and not reply.urgent and reply.caution
    shown = render_plain(engine, reply)
    assert (
        shown.startswith(reply.text) and "If you are in danger, call 112 now." in shown and "/human" in shown
    )
    # A sentence the model reads as the emergency below its alarm counts as well.
    body = parse_result([("thanks", 0.9)], parts=[("thanks", 0.9, 0.9), ("safety.emergency", 0.3, 0.5)])
    assert (await make_engine(server(body)).ask("thanks. bye forever.", "prague", "en")).caution
    # A confident answer is what the person asked for: no line under it.
    answered = parse_result([("housing.tenant_rights", 0.9), ("safety.emergency", 0.2)], emergency=0.35)
    reply = await make_engine(server(answered)).ask("can my landlord keep the deposit", "prague", "en")
    assert reply.outcome is Outcome.ANSWER and not reply.urgent and not reply.caution
    # Nowhere near: no line.
    calm = parse_result([("thanks", 0.9), ("safety.emergency", 0.05)], emergency=0.1)
    engine = make_engine(server(calm))
    reply = await engine.ask("thanks, got my card today", "prague", "en")
    assert not reply.caution and "112" not in render_plain(engine, reply)
    # In the person's language.
    body = parse_result([("thanks", 0.7), ("safety.emergency", 0.2)], emergency=0.35, language=[("ru", 0.9)])
    engine = make_engine(server(body))
    reply = await engine.ask("спасибо за всё, больше не понадобится", "prague", "ru")
    assert (
        reply.caution and "112" in render_plain(engine, reply) and "danger" not in render_plain(engine, reply)
    )


async def test_a_question_far_from_every_example_gets_no_confident_answer(make_engine) -> None:  # type: ignore[no-untyped-def]
    near_miss = parse_result([("permit.renewal", 0.83), ("permit.permanent", 0.08)], nearest=0.31)
    reply = await make_engine(server(near_miss)).ask("how do i renew my netflix subscription", "prague", "en")
    assert reply.outcome is Outcome.CLARIFY and reply.answer is None
    close = parse_result([("permit.renewal", 0.83), ("permit.permanent", 0.08)], nearest=0.62)
    reply = await make_engine(server(close)).ask("how do i renew my residence permit", "prague", "en")
    assert reply.outcome is Outcome.ANSWER and reply.key == "permit.renewal"


async def test_transliterated_russian_is_answered_in_russian_without_a_prior(make_engine) -> None:  # type: ignore[no-untyped-def]
    body = parse_result([("housing.tenant_rights", 0.9)], language=[("ru", 0.93), ("sk", 0.04)])
    reply = await make_engine(server(body)).ask("hozyain kvartiry ne otdaet zalog", "prague", None)
    assert reply.language == "ru" and reply.text == "Права жильцов."
    # A person who already writes Ukrainian keeps it: transliteration never switches between them.
    reply = await make_engine(server(body)).ask("hozyain kvartiry ne otdaet zalog", "prague", "uk")
    assert reply.language == "uk"


def test_the_models_language_guess_decides_transliteration_and_counts_otherwise(
    detector: LanguageDetector,
) -> None:
    hint = (IntentScore("ru", 0.95),)
    assert detector.detect("privet kak prodlit vnzh v prage", None, hint).language == "ru"
    # Elsewhere the guess is averaged with lingua's: a weak wrong guess does not win.
    assert detector.detect("привет как продлить внж", None, (IntentScore("uk", 0.3),)).language == "ru"
    assert detector.transliterated("kak prodlit vnzh", (IntentScore("ru", 0.3),)) is None
    assert detector.transliterated("kak prodlit vnzh", (IntentScore("ru", 0.5),)) == "ru"
    # A few letters say too little: "kak dela" is left to lingua's reading.
    assert detector.transliterated("kak dela", (IntentScore("ru", 0.9),)) is None
    assert detector.detect("how do i renew my permit", None, (IntentScore("en", 0.9),)).language == "en"


def test_danger_signals_match_whole_words_and_stems_after_folding() -> None:
    signals = DangerSignals({"cs": ("nedýchá", "ubodal*"), "en": ("has a knife",)})
    assert signals.find("Můj muž NEDÝCHÁ") == ("cs", "nedýchá")
    assert signals.find("soused ho ubodala") == ("cs", "ubodal*")
    assert signals.find("he HAS A   knife") == ("en", "has a knife")
    assert signals.find("knife sharpening service prague") is None
    assert signals.find("nedychavy") is None  # a whole word, not a prefix, unless the signal says *


def test_arabic_signals_match_with_a_joined_conjunction_and_spelling_variants() -> None:
    signals = DangerSignals({"ar": ("ما يتنفس",), "fa": ("نفس نمی\u200cکشه",)})
    assert signals.find("ابوي طاح وما يتنفس") == ("ar", "ما يتنفس")
    assert signals.find("بابام افتاده نفس نمی کشه") == ("fa", "نفس نمی\u200cکشه")  # half-space or space


def test_a_signal_inside_a_safe_phrase_does_not_count_and_editors_are_told_of_useless_ones(
    content_dir: Path,
) -> None:
    signals = DangerSignals(
        {"cs": ("infarkt*",), "en": ("heart attack", "suicid*")},
        {"cs": ("málem jsem dostal* infarkt",), "en": ("not suicidal", "almost had a heart attack")},
    )
    assert signals.find("Z nemocnice faktura, MALEM JSEM DOSTALA INFARKT. Jsem pojištěná?") is None
    assert signals.find("i'm not suicidal, just sad. any counselling?") is None
    # The same danger word outside the safe phrase still counts, in the same message too.
    assert signals.find("táta má infarkt") == ("cs", "infarkt*")
    assert signals.find("not suicidal before, but now I am suicidal") == ("en", "suicid*")
    assert signals.find("almost had a heart attack at the bill, now my dad is having a heart attack") == (
        "en",
        "heart attack",
    )
    kb, messages = load_safety_file(
        content_dir,
        'situations:\n  - "my dad is having a heart attack"\n'
        '  - "he says he is not suicidal but he is on the roof"\n'
        'signals:\n  - "heart attack"\n  - "on the roof"\n'
        'safe_phrases:\n  - "almost had a heart attack"\n  - "not suicidal but he is on the roof"\n'
        '  - "dying of boredom"\n',
    )
    assert "no danger signal" in messages and "dying of boredom" in messages
    assert "hides the danger signal" in messages and "on the roof" in messages
    assert kb.safety.signals.find("I almost had a heart attack") is None


def test_not_emergencies_train_only_the_detector_and_may_not_hold_a_danger_signal(content_dir: Path) -> None:
    kb, _ = load_safety_file(
        content_dir,
        'situations:\n  - "he is hitting her"\nsignals:\n  - "not breathing"\n'
        'not_emergencies:\n  - "this bureaucracy is killing me"\n'
        '  - "my grandad was not breathing well last winter, how do I find a GP"\n',
    )
    # Loaded, but a line with a danger signal could never stop an alarm: the editor is told which.
    assert kb.safety.not_emergencies["en"][0] == "this bureaucracy is killing me"
    [problem] = [p for p in kb.errors if p.file.endswith("safety/en.yml")]
    assert "my grandad was not breathing" in problem.message and "(not breathing)" in problem.message
    # They train the model under their own label, and are no topic's example questions (the
    # lexical fallback and the coverage report read those).
    assert ("safety.not_emergency", "this bureaucracy is killing me", "en") in training_examples(kb)
    assert "safety.not_emergency" in training_keys(kb)
    assert all(key != "safety.not_emergency" for key, _ in kb.examples("en"))
    assert not any(key == "safety.not_emergency" for key, _, _ in training_examples(kb, False))


async def test_without_the_model_the_closest_topics_by_their_words_are_offered(
    make_engine, content_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    write(
        content_dir / "questions/en.yml",
        """
        permit.renewal:
          title: Renewing a permit
          examples: ["how do i renew my residence permit", "my permit expires soon"]
        housing.tenant_rights:
          title: Tenant rights
          examples: ["the landlord keeps my deposit", "landlord wants to evict me"]
        """,
    )

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("hung", request=request)

    engine = make_engine(down)
    engine.kb.texts.clear()
    engine.kb.texts.update(load_knowledge_base(content_dir, ("prague",), LANGS).texts)
    reply = await engine.ask("my landlord will not give back the deposit", "prague", "en")
    assert reply.outcome is Outcome.CLARIFY and reply.answer is None and not reply.urgent
    assert [a.key for a in reply.alternatives][:1] == ["housing.tenant_rights"]
    assert reply.text == engine.catalogues["en"].gettext(
        "I cannot fully understand questions right now because of a technical problem. Is your "
        "question about one of these topics? You can also ask to talk to a person."
    )
    nothing = await engine.ask("qqqq zzzz", "prague", "en")
    assert nothing.outcome is Outcome.UNAVAILABLE


def test_thresholds_are_chosen_recall_first_on_development_messages(make_engine) -> None:  # type: ignore[no-untyped-def]
    from bot.tools.realistic import Item
    from bot.tools.tune import Scored, choose, evaluate, frontier, grid
    from nlu import Classification

    def scored(style: str, key: str, whole: float, signal: bool = False) -> Scored:
        result = Classification(key, 0.8, (IntentScore(key, 0.8),), emergency_whole=whole)
        return Scored(Item("en", f"{style} {whole}", key, style), result, signal)

    messages = [
        scored("emergency", "housing.tenant_rights", 0.52),  # the detector's weakest true alarm
        scored("emergency", "work.rights", 0.9),
        scored("emergency", "out_of_scope", 0.1, signal=True),  # caught by a danger signal at any threshold
        scored("distress", "work.rights", 0.45),  # false alarms below 0.5
        scored("distress", "housing.shelter", 0.35),
        scored("story", "housing.rent", 0.6),  # a false alarm no threshold that keeps recall can avoid
        scored("plain", "safety.emergency", 0.99),  # "what is the police number": neither
    ]
    urgency = make_engine(server(parse_result([("greet", 1.0)]))).urgency
    values = {"emergency_detector_threshold": (0.3, 0.4, 0.5, 0.55, 0.7)}
    choices = [evaluate(messages, nlu, urgency, tuple(values)) for nlu in grid(NLUSettings(), values)]
    chosen = choose(choices)
    # 0.55 and 0.7 would miss the 0.52 emergency; of 0.3-0.5 only 0.5 drops both distress alarms.
    assert chosen.thresholds == {"emergency_detector_threshold": 0.5}
    assert (chosen.caught, chosen.emergencies) == (3, 3)
    assert (chosen.false_alarms, chosen.others) == (1, 3)
    assert [(item.style, reason) for item, reason in chosen.alarms] == [("story", "detector")]
    low = next(c for c in choices if c.thresholds["emergency_detector_threshold"] == 0.3)
    assert low.false_alarms == 3 and low.caught == 3
    high = next(c for c in choices if c.thresholds["emergency_detector_threshold"] == 0.7)
    assert high.caught == 2 and high.missed[0].key == "housing.tenant_rights"
    # What one emergency fewer would buy: 0.7 misses one and raises no false alarm at all.
    assert [(c.caught, c.false_alarms) for c in frontier(choices)] == [(3, 1), (2, 0)]


def test_a_false_alarm_or_two_more_does_not_buy_a_higher_threshold() -> None:
    from bot.tools.tune import FALSE_ALARM_TOLERANCE, Choice, choose

    def choice(detector: float, caught: int, false_alarms: int) -> Choice:
        return Choice({"emergency_detector_threshold": detector}, caught, 280, false_alarms, 673)

    low, high, higher = choice(0.25, 279, 82), choice(0.45, 279, 81), choice(0.6, 278, 70)
    # One development message apart is within the tolerance (0.5 % of 673: three): the lower wins.
    assert int(FALSE_ALARM_TOLERANCE * 673) == 3
    assert choose([high, low, higher]) is low
    # Recall still comes first, and a real difference in false alarms still counts.
    assert choose([choice(0.25, 279, 90), high, higher]) is high
    # Without a tolerance the fewest false alarms win, as before.
    assert choose([high, low], tolerance=0.0) is high


def test_the_caution_threshold_is_the_lowest_within_its_budget(make_engine) -> None:  # type: ignore[no-untyped-def]
    from bot.tools.realistic import Item
    from bot.tools.tune import Scored, choose_caution
    from nlu import Classification, PartScore

    def scored(style: str, key: str, detector: float) -> Scored:
        result = Classification(
            key, 0.9, (IntentScore(key, 0.9),), emergency=detector, emergency_whole=detector
        )
        return Scored(Item("en", f"{style} {key} {detector}", key, style), result, False)

    messages = [
        scored("emergency", "thanks", 0.3),  # a farewell told as thanks, below the alarm (0.5)
        scored("emergency", "housing.shelter", 0.9),  # the alarm
        scored("plain", "housing.tenant_rights", 0.45),  # answered: never a line under an answer
        scored("colloquial", "thanks", 0.1),
        scored("distress", "thanks", 0.25),
    ]
    engine = make_engine(server(parse_result([("greet", 1.0)])))
    nlu = engine.settings.nlu
    chosen, tried = choose_caution(messages, nlu, engine.decide, "prague", budget=0.4)
    # 0.05 and 0.1 put the line under two of the three other messages (67 %), 0.15 under one (33 %).
    assert chosen.threshold == 0.15 and (chosen.covered, chosen.missed) == (1, 1)
    assert (chosen.cautioned, chosen.quiet) == (1, 3)
    assert [c.cautioned for c in tried[:6]] == [2, 2, 1, 1, 1, 0]
    assert next(c for c in tried if c.threshold == 0.35).covered == 0  # above the farewell's 0.3
    # "Years ago he beat me badly. Can I get a lawyer?": a sentence alarm a "danger over" phrase held
    # back gets the line at every threshold; it is reported, and does not use up the budget.
    past = Classification(
        "services.legal_aid",
        0.9,
        (IntentScore("services.legal_aid", 0.9),),
        parts=(PartScore("safety.emergency", 0.8, 0.9), PartScore("services.legal_aid", 0.9, 0.9)),
    )
    messages.append(Scored(Item("en", "years ago…", "services.legal_aid", "distress"), past, False, True))
    again, tried = choose_caution(messages, nlu, engine.decide, "prague", budget=0.4)
    assert again.threshold == 0.15 and (again.cautioned, again.quiet, again.held_back) == (2, 4, 1)
    assert [c.cautioned for c in tried[:6]] == [3, 3, 2, 2, 2, 1]
    assert again.rate == 0.25  # one of four from the threshold


# Figurative or negated danger words, one per language, each with the same danger word meant for real.
# Written for this test; not taken from the training, development or evaluation messages.
FIGURATIVE_AND_REAL = {
    "en": (
        "I almost had a heart attack when I saw the gas bill, can the landlord charge that much?",
        "my dad is having a heart attack right now",
    ),
    "ru": (
        "чуть инфаркт не получила, когда увидела счёт за свет. можно оплатить частями?",
        "у папы инфаркт прямо сейчас",
    ),
    "uk": ("ледь не отримала інфаркт від рахунку за газ, можна платити частинами?", "у тата інфаркт зараз"),
    "bg": ("за малко да получа инфаркт от сметката за ток, може ли на части?", "баща ми получи инфаркт сега"),
    "cs": (
        "malem jsem dostala infarkt z faktury za elektrinu, da se to platit na splatky?",
        "tata ma ted infarkt",
    ),
    "sk": (
        "skoro som dostala infarkt z faktury za elektrinu, da sa to platit na splatky?",
        "otec ma teraz infarkt",
    ),
    "hr": (
        "skoro sam dobila infarkt od racuna za struju, moze li se platiti na rate?",
        "tata ima infarkt sada",
    ),
    "it": (
        "non ho pensieri suicidi, solo tanta nostalgia. c'è uno psicologo gratuito a Padova?",
        "ho pensieri suicidi stanotte e non ce la faccio",
    ),
    "ar": ("ما عندي افكار انتحار، بس زعلانة كتير. في دعم نفسي مجاني بصوفيا؟", "عندي افكار انتحار الليلة"),
    "fa": ("فکر خودکشی ندارم، فقط دلتنگم. مشاوره رایگان در پراگ هست؟", "امشب فکر خودکشی دارم"),
}


# Danger long past, and danger from the recent past that may still go on. Written for this test.
PAST_AND_RECENT = {
    "en": (
        "years ago my ex was hitting me, now i am safe. can i get a free lawyer for the divorce?",
        "he got out of prison last month and now he is hitting me again",
    ),
    "ru": (
        "пять лет назад муж бьет меня каждый день, теперь я в безопасности. как получить внж отдельно?",
        "в прошлом году он вышел из тюрьмы, сейчас бьет меня",
    ),
    "it": (
        "anni fa mi picchia ogni sera, ora sono al sicuro. posso avere un avvocato gratis?",
        "il mese scorso è uscito di prigione e adesso mi picchia",
    ),
}


def test_only_danger_long_past_holds_back_a_danger_word() -> None:
    # "Last month", "last year": the danger may still go on, so such phrases are no "danger over".
    safety = load_safety(
        ROOT / "content/safety",
        tuple(PAST_AND_RECENT),
        lambda path: yaml.safe_load(path.read_text(encoding="utf-8")),
        lambda path, message, hint: None,
    )
    for lang, (past, recent) in PAST_AND_RECENT.items():
        assert safety.signals.find(past) is not None and safety.signals.over(past) is not None, lang
        assert safety.signals.find(recent) is not None and safety.signals.over(recent) is None, lang


def test_shipped_safe_phrases_stop_figurative_danger_words_and_never_the_real_ones() -> None:
    problems: list[str] = []
    safety = load_safety(
        ROOT / "content/safety",
        tuple(FIGURATIVE_AND_REAL),
        lambda path: yaml.safe_load(path.read_text(encoding="utf-8")),
        lambda path, message, hint: problems.append(f"{path}: {message}"),
    )
    assert problems == []
    plain = DangerSignals(safety.signals.signals)
    for lang, (figurative, real) in FIGURATIVE_AND_REAL.items():
        # Each figurative message does hold a danger signal: only its safe phrase keeps it quiet.
        assert plain.find(figurative) is not None, lang
        assert safety.signals.find(figurative) is None, (lang, safety.signals.find(figurative))
        assert safety.signals.find(real) is not None, lang
    # "They took our passports", not only "my passport", in every language that had only the singular.
    for text in (
        "agentura nam vzala doklady, vzali nam pasy a zamykaji nas",
        "zobrali nam pasy a nepustia nas von",
        "uzeli su nam putovnice i ne puštaju nas",
        "أخذوا جوازاتنا وما بيخلونا نطلع",
        "پاسپورتامونو گرفتن و نمیذارن بریم بیرون",
    ):
        assert safety.signals.find(text) is not None, text
