"""Language detection with a prior, and CLDR data through Babel."""

from __future__ import annotations

import pytest

from bot.language import LanguageDetector, language_name, native_name, negotiate, script_of, text_direction
from nlu import IntentScore

LANGS = ["en", "uk", "ru", "ar", "fa", "bg", "cs", "sk", "hr", "it"]


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(LANGS, min_letters_to_switch=12, switch_ratio=3.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("jak prodloužit povolení k pobytu v Praze", "cs"),
        ("kako produžiti boravak u Osijeku", "hr"),
        ("ako si predĺžiť prechodný pobyt v Košiciach", "sk"),
        ("come rinnovare il permesso di soggiorno", "it"),
        ("how do I renew my residence permit", "en"),
        ("як продовжити посвідку на проживання", "uk"),
        ("как продлить вид на жительство", "ru"),
        ("как да подновя разрешението си за пребиваване", "bg"),
        ("كيف أجدد تصريح الإقامة الخاص بي", "ar"),
        ("چطور اجازه اقامتم را تمدید کنم", "fa"),
    ],
)
def test_full_sentences_are_recognised_without_a_prior(
    detector: LanguageDetector, text: str, expected: str
) -> None:
    assert detector.detect(text).language == expected


@pytest.mark.parametrize(
    ("text", "prior"), [("ok", "uk"), ("dobry den", "ru"), ("ciao", "en"), ("112", "ar")]
)
def test_short_messages_never_flip_the_language(detector: LanguageDetector, text: str, prior: str) -> None:
    result = detector.detect(text, prior)
    assert result.language == prior and not result.switched


def test_transliterated_cyrillic_keeps_the_cyrillic_prior(detector: LanguageDetector) -> None:
    result = detector.detect("kak prodlit vnzh v prage pozhaluysta", "ru")
    assert result.language == "ru" and not result.switched


def test_a_clear_sentence_in_another_language_switches(detector: LanguageDetector) -> None:
    result = detector.detect("how do I renew my residence permit here", "ru")
    assert result.language == "en" and result.switched
    assert detector.detect("كيف أجدد الإقامة في براغ", "en").language == "ar"


def test_no_letters_falls_back_to_prior_or_default(detector: LanguageDetector) -> None:
    assert detector.detect("😀 👍 123", "fa").language == "fa"
    assert detector.detect("😀", None).language == "en"


def test_babel_negotiation_and_names() -> None:
    assert negotiate("en-US", LANGS) == "en"
    assert negotiate("uk", LANGS) == "uk"
    assert negotiate("fa-IR", LANGS) == "fa"
    assert negotiate("pt-br", LANGS) is None and negotiate(None, LANGS) is None
    assert [native_name(c) for c in ("uk", "ar", "cs", "fa")] == ["Українська", "العربية", "Čeština", "فارسی"]
    # For staff: the person's language named in the staff's, as CLDR writes it mid-sentence.
    assert [language_name("fa", c) for c in ("cs", "en", "hr", "bg")] == [
        "perština",
        "Persian",
        "perzijski",
        "персийски",
    ]
    assert text_direction("ar") == text_direction("fa") == "rtl" and text_direction("uk") == "ltr"
    assert [script_of(c) for c in ("bg", "fa", "hr")] == ["CYRILLIC", "ARABIC", "LATIN"]


def test_latin_text_with_diacritics_switches_from_a_cyrillic_prior(detector: LanguageDetector) -> None:
    assert detector.detect("jak prodloužit povolení k pobytu v Praze", "ru").language == "cs"
    assert detector.detect("jak prodlouzit povoleni k pobytu v Praze", "ru").language == "ru"


def test_the_models_sure_guess_decides_over_lingua_for_mixed_text(detector: LanguageDetector) -> None:
    text = "is there a tečaj hrvatskog jezika for adults in Osijek that's free"
    sure = (IntentScore("en", 0.99), IntentScore("hr", 0.01))
    assert detector.detect(text, None, sure).language == "en"
    # Lingua's trigrams alone read the Croatian words; an unsure model counts only half.
    unsure = (IntentScore("en", 0.5), IntentScore("hr", 0.4))
    assert detector.detect(text, None, ()).language == detector.detect(text, None, unsure).language == "hr"


def test_without_lingua_the_models_guess_decides_and_no_guess_keeps_the_language() -> None:
    model_only = LanguageDetector(LANGS, models="none")
    assert (
        model_only.detect("как продлить вид на жительство", None, (IntentScore("ru", 0.6),)).language == "ru"
    )
    assert model_only.detect("как продлить вид на жительство", "uk").language == "uk"
    with pytest.raises(ValueError, match="models must be one of"):
        LanguageDetector(LANGS, models="medium")
