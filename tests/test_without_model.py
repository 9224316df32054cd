"""Without the model (NLU server down, hung or slow), someone in danger is still recognised.

The engine has no NLU client here, so every question takes the path a person meets during an outage:
a danger signal, or the nearest examples by their words (bot/lexical.py), brings the emergency numbers;
everything else gets the closest topics and the offer of a person. The realistic evaluation set
(written apart from training) gates the suite for this path too; no Rasa server is needed.
"""

from __future__ import annotations

import httpx
import pytest

from bot.engine import EMERGENCY, Engine, Outcome
from bot.lexical import LexicalMatcher, Nearest
from bot.runtime import Services
from bot.settings import NLUSettings, Settings
from bot.tools.realistic import RealisticReport, cities_for, load_realistic
from nlu import NLUClient

from .emergencies import EMERGENCY_SITUATIONS

# Overall, on the realistic set without the model. The shipped thresholds (chosen by `make tune` on
# the development set) reach 94.4 % of emergencies (the danger signals alone: 21.7 %) with 2.7 %
# false alarms, and offer the right topic among three for 92.8 % of all questions; 96.4 % get their
# reply in the language they wrote in (lingua alone: 88.7 %, none of those typed in Latin letters).
# With the realistic set's second round (distressing messages that share words with danger) and more
# emergency situations: 94.2 % of 483 emergencies, 4.3 % false alarms, top-3 92.3 %, language 96.6 %.
# With the third round (content/realistic/README.md): 93.3 % of 643, 5.1 %, 91.6 %, 96.7 %.
# With the fourth and fifth rounds and the 7 neighbours make tune then chose (its budget, the model's
# own false alarms on the development set, had grown with emergency_sentence_confidence 0.5):
# 94.4 % of 963, 8.6 %, 90.3 %, 97.2 %. With the fifth safety round's examples in the index:
# 94.8 %, 9.1 %, 90.3 %, 97.3 %. With the sixth round and the sixth safety round's examples:
# 95.5 % of 1123, 9.2 %, 90.6 %, 97.2 %. With rounds 7-9 (the ninth: danger told with the past,
# half of it messages where the danger is over) and the seventh and eighth safety rounds: 96.0 % of
# 1543, 10.8 % (words 222, signals 36: while the model is away signals always count), 90.1 %, 97.7 %.
# The false-alarm gate follows the harder set.
MIN_RECALL = 0.90
MAX_FALSE_ALARMS = 0.115
MIN_TOP3 = 0.89
MIN_LANGUAGE = 0.94


@pytest.fixture(scope="module")
def engine(settings: Settings) -> Engine:
    services = Services(settings)  # content, language detector, catalogues; never opened: no model
    return Engine(settings, services.kb, None, services.detector, services.catalogues)


@pytest.mark.parametrize(("lang", "text"), EMERGENCY_SITUATIONS)
async def test_every_emergency_situation_gets_the_emergency_numbers_without_the_model(
    engine: Engine, lang: str, text: str
) -> None:
    reply = await engine.ask(text, "prague", None)
    assert reply.urgent and reply.key == EMERGENCY, (reply.key, reply.outcome)
    assert reply.urgent_reason in ("signal", "words") and reply.handoff
    assert reply.text == engine.kb.answer("prague", EMERGENCY, reply.language).text  # type: ignore[union-attr]


async def test_realistic_emergencies_are_recognised_without_the_model(
    engine: Engine, settings: Settings
) -> None:
    items = load_realistic(settings.path(settings.content_dir) / "realistic", settings.languages)
    known = set(engine.kb.taxonomy.all_keys)
    report = RealisticReport()
    for item, city in zip(items, cities_for(items, settings.cities), strict=True):
        report.add(item, await engine.ask(item.text, city, None), known)
    overall = report.as_dict()["languages"]["all"]
    assert overall["n"] >= 1500 and overall["emergencies"] >= 300
    assert overall["emergency_recall"] >= MIN_RECALL, report.markdown()
    assert overall["false_alarms"] <= MAX_FALSE_ALARMS, report.markdown()
    assert overall["top3"] >= MIN_TOP3, report.markdown()
    assert overall["language"] >= MIN_LANGUAGE, report.markdown()
    # Most of it is the words' doing: the danger signals alone find about a fifth.
    reasons = [m["why_urgent"] for m in report.misses if m["urgent"]]
    caught = round(overall["emergency_recall"] * overall["emergencies"])
    signals = sum(engine.kb.safety.signals.find(i.text) is not None for i in items if i.style == "emergency")
    assert caught - signals >= 150, (caught, signals, reasons.count("words"))


def test_the_nearest_examples_decide_topics_and_emergencies() -> None:
    examples = [
        ("housing.tenant_rights", "the landlord keeps my deposit"),
        ("housing.tenant_rights", "landlord wants to evict me"),
        ("permit.renewal", "how do i renew my residence permit"),
        ("permit.renewal", "my permit expires soon"),
        (EMERGENCY, "he is hitting her and she is screaming"),
        (EMERGENCY, "my husband is beating me right now"),
        ("safety.not_emergency", "this bureaucracy is killing me"),
    ]
    matcher = LexicalMatcher(
        [(key, text, "en") for key, text in examples],
        ["housing.tenant_rights", "permit.renewal", EMERGENCY],
    )
    [(key, _, similarity), *_] = matcher.neighbours("my husband is beating me again", 3).examples
    assert key == EMERGENCY and 0.5 < similarity <= 1.0
    assert matcher.neighbours("my husband is beating me again", 2).share(EMERGENCY) == 1.0
    assert matcher.neighbours("the landlord keeps the deposit", 2).share(EMERGENCY) == 0.0
    assert (
        matcher.neighbours("ꙮꙮꙮ", 5).share(EMERGENCY) == 0.0
    )  # nothing similar: no alarm, no division by zero
    # Topics: ranked by their nearest examples; not-emergencies are never offered.
    assert [s.key for s in matcher.best("landlord kept my deposit")][:1] == ["housing.tenant_rights"]
    assert all(s.key != "safety.not_emergency" for s in matcher.best("this bureaucracy is killing me"))
    # The share weighs each neighbour by its similarity.
    assert Nearest(((EMERGENCY, "en", 0.6), ("permit.renewal", "en", 0.2))).share(EMERGENCY) == pytest.approx(
        0.75
    )
    assert Nearest(()).share(EMERGENCY) == 0.0


async def test_during_an_outage_the_thresholds_from_config_decide(engine: Engine) -> None:
    """Through the NLU client's real failure path: at the text's own emergency share the alarm is
    raised, just above it it is not: the setting decides, not a fixed rule."""

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    text = "my boyfriend is drunk and throwing things at me, im hiding in the bathroom"
    assert engine.kb.safety.signals.find(text) is None
    share = engine.lexical.neighbours(text, 10).share(EMERGENCY)
    assert 0.1 <= share < 0.99
    client = NLUClient("http://nlu.test", "s" * 32, transport=httpx.MockTransport(down))
    for threshold, urgent in ((share, True), (share + 0.01, False)):
        nlu = NLUSettings(degraded_emergency_neighbours=10, degraded_emergency_share=threshold)
        settings = engine.settings.model_copy(update={"nlu": nlu})
        other = Engine(settings, engine.kb, client, engine.detector, engine.catalogues)
        other._lexical = engine.lexical
        reply = await other.ask(text, "prague", "en")
        assert reply.urgent is urgent, threshold
        assert reply.urgent_reason == ("words" if urgent else None)
        if not urgent:
            assert reply.outcome in (Outcome.CLARIFY, Outcome.UNAVAILABLE) and reply.degraded


def test_tune_finds_the_most_emergencies_within_the_models_false_alarms() -> None:
    from bot.tools.realistic import Item
    from bot.tools.tune import Scored, choose_words, evaluate_words
    from nlu import Classification, IntentScore

    def scored(style: str, key: str, text: str, signal: bool = False) -> Scored:
        return Scored(
            Item("en", text, key, style), Classification(key, 0.9, (IntentScore(key, 0.9),)), signal
        )

    messages = [
        scored("emergency", EMERGENCY, "a"),  # the nearest example is an emergency
        scored("emergency", EMERGENCY, "b"),  # one emergency among its three nearest
        scored("emergency", EMERGENCY, "c", signal=True),  # a danger signal: found at any setting
        scored("distress", "work.rights", "d"),  # one emergency among its three nearest too
        scored("plain", "permit.renewal", "e"),
    ]
    other, near = ("permit.renewal", "en", 0.5), (EMERGENCY, "en", 0.5)
    nearest = {
        "a": Nearest((near, other, other)),
        "b": Nearest((other, other, near)),
        "c": Nearest((other,) * 3),
        "d": Nearest((other, near, other)),
        "e": Nearest((other,) * 3),
    }
    choices = [evaluate_words(messages, nearest, k, share) for k in (1, 3) for share in (0.3, 0.5)]
    # One nearest example: 2 of 3 emergencies, no false alarm; three at a share of 0.3: all of them,
    # at the cost of the distress message.
    assert choose_words(choices, budget=0).thresholds == {
        "degraded_emergency_neighbours": 1,
        "degraded_emergency_share": 0.5,
    }
    generous = choose_words(choices, budget=1)
    assert generous.thresholds == {"degraded_emergency_neighbours": 3, "degraded_emergency_share": 0.3}
    assert (generous.caught, generous.false_alarms) == (3, 1)
    assert [(item.text, reason) for item, reason in generous.alarms] == [("d", "words")]


# Typed in Latin letters (written for this test): lingua alone reads most of these as Slovak, Croatian
# or English; the nearest examples' languages read them as the model's identifier does.
TRANSLITERATED = [
    ("ru", "zdravstvujte, kak mne prodlit vid na zhitelstvo v Prage?"),
    ("uk", "dobryj den, de meni otrymaty medychnu strahovku?"),
    ("bg", "zdraveite, kak da si namerq rabota v Sofia"),
    ("ar", "mar7aba, kif ba3mel tajdeed lal iqama?"),
    ("fa", "salam, chetor mitoonam baraye bachem madrese peyda konam?"),
]


@pytest.mark.parametrize(("lang", "text"), TRANSLITERATED)
async def test_without_the_model_transliteration_is_answered_in_its_language(
    engine: Engine, lang: str, text: str
) -> None:
    reply = await engine.ask(text, "prague", None)
    assert reply.language == lang and reply.degraded and not reply.urgent
    assert engine.lexical.neighbours(text, 10).languages()[0].key == lang


async def test_an_emergency_typed_in_latin_letters_gets_the_numbers_in_its_script(engine: Engine) -> None:
    reply = await engine.ask("pomogite, muzh menja b'et, ja zakrylas v vannoj", "prague", None)
    assert reply.urgent and reply.language == "ru"
    assert reply.text == engine.kb.answer("prague", EMERGENCY, "ru").text  # type: ignore[union-attr]
