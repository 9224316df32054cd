"""Which language a person writes in, and the names and locales of the supported languages."""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from babel import Locale
from babel.core import get_global, negotiate_locale
from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

from nlu import IntentScore, letter_count

__all__ = [
    "Detection",
    "LanguageDetector",
    "language_name",
    "native_name",
    "negotiate",
    "script_of",
    "text_direction",
]

_SCRIPTS = ("LATIN", "CYRILLIC", "ARABIC")
# Lingua's language models: "high" accuracy (its n-gram models of 1 to 5 letters) or "low" (trigrams
# only), loaded at start-up or on first use ("…-lazy"); "none": the NLU model's guess alone.
MODELS = ("high", "high-lazy", "low", "low-lazy", "none")
# From this confidence on, the NLU model's language guess decides alone.
MODEL_DECIDES_AT = 0.9


def script_of_text(text: str) -> str | None:
    """The writing system most letters of ``text`` use: LATIN, CYRILLIC, ARABIC, or None."""
    counts: Counter[str] = Counter()
    for char in text:
        if char.isalpha():
            name = unicodedata.name(char, "")
            counts[next((s for s in _SCRIPTS if name.startswith(s)), "OTHER")] += 1
    if not counts:
        return None
    script, _ = counts.most_common(1)[0]
    return script if script in _SCRIPTS else None


def script_of(language: str) -> str:
    """The writing system a language is usually typed in (from CLDR's likely subtags)."""
    full = str(get_global("likely_subtags").get(language, ""))
    code = full.split("_")[1] if full.count("_") >= 2 else "Latn"
    return {"Latn": "LATIN", "Cyrl": "CYRILLIC", "Arab": "ARABIC"}.get(code, code.upper())


def text_direction(language: str) -> str:
    """``rtl`` or ``ltr`` for a language, from CLDR."""
    return str(Locale.parse(language).text_direction)


def native_name(language: str) -> str:
    """The language's name in itself, e.g. 'Українська', 'العربية', 'Čeština'."""
    name = Locale.parse(language).get_display_name(language) or language
    return name[:1].upper() + name[1:]


def language_name(language: str, reader: str) -> str:
    """The language's name in the ``reader``'s language, from CLDR: Persian is "perština" for a Czech
    reader. CLDR's own case: lower case where the reader's language writes names of languages so
    mid-sentence (Czech, Italian, Russian), capitalised where it does not (English, German)."""
    return Locale.parse(language).get_display_name(reader) or language


def negotiate(code: str | None, supported: Sequence[str]) -> str | None:
    """Match a client's language tag (e.g. Telegram's 'uk', 'en-US', 'pt-br') to a supported language."""
    if not code:
        return None
    return negotiate_locale([code.replace("-", "_")], list(supported))


@dataclass(frozen=True)
class Detection:
    """The language chosen for a message."""

    language: str
    confidence: float
    detected: str | None
    switched: bool


class LanguageDetector:
    """Detects the language of a message, restricted to the supported languages, with a prior.

    The prior is the language the person already uses (chosen, or from Telegram). A message switches
    away from it only when it is long enough and the detector is clearly surer of another language;
    switching from Cyrillic or Arabic script to Latin letters needs more, because people often type
    their own language in Latin transliteration ("kak prodlit vnzh"): plain ASCII then only switches
    to English, and other Latin-script languages need their own diacritics in the text.

    ``models`` chooses lingua's models (``MODELS``). The default, "low" (trigrams only), takes about
    30 MiB instead of 320 for "high"; with the model deciding when it is sure (``model_decides_at``)
    it tells the language as well as "high" did (docs/benchmarks.md, ``python -m bot langid``).
    """

    def __init__(
        self,
        languages: Sequence[str],
        *,
        default: str = "en",
        min_letters_to_switch: int = 12,
        switch_ratio: float = 3.0,
        latin_transliteration_confidence: float = 0.9,
        hint_confidence: float = 0.4,
        models: str = "low",
        model_decides_at: float = MODEL_DECIDES_AT,
    ) -> None:
        if models not in MODELS:
            raise ValueError(f"models must be one of {MODELS}")
        self.languages = tuple(languages)
        self.default = default
        self.min_letters = min_letters_to_switch
        self.ratio = switch_ratio
        self.latin_confidence = latin_transliteration_confidence
        self.hint_confidence = hint_confidence
        self.model_decides_at = model_decides_at
        self._scripts = {lang: script_of(lang) for lang in self.languages}
        self._by_lingua = {
            Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())): code for code in self.languages
        }
        builder = LanguageDetectorBuilder.from_languages(*self._by_lingua)
        if models.startswith("low"):
            builder = builder.with_low_accuracy_mode()
        if not models.endswith("lazy"):
            builder = builder.with_preloaded_language_models()
        self._detector = None if models == "none" else builder.build()

    def confidences(self, text: str) -> dict[str, float]:
        """Lingua's confidence per language (empty without lingua, ``models="none"``)."""
        if self._detector is None:
            return {}
        return {
            self._by_lingua[value.language]: value.value
            for value in self._detector.compute_language_confidence_values(text)
        }

    def transliterated(
        self, text: str, hint: Sequence[IntentScore], hint_confidence: float | None = None
    ) -> str | None:
        """The language of ``text`` when it is one of ours typed in Latin letters, per the model's ``hint``.

        Character statistics (lingua) read "kak prodlit vnzh" as Slovak or Croatian; the NLU model's
        language identifier learnt transliteration from the example questions. ``hint_confidence``:
        how sure the hint must be, when not the identifier's own ``self.hint_confidence``.
        """
        least = self.hint_confidence if hint_confidence is None else hint_confidence
        if not hint or script_of_text(text) != "LATIN" or letter_count(text) < self.min_letters:
            return None  # a few Latin letters say too little to leave lingua's reading
        top = hint[0]
        if top.key in self._scripts and self._scripts[top.key] != "LATIN" and top.confidence >= least:
            return top.key
        return None

    def detect(
        self,
        text: str,
        prior: str | None = None,
        hint: Sequence[IntentScore] = (),
        hint_confidence: float | None = None,
    ) -> Detection:
        """The language to answer ``text`` in, given the person's current language ``prior``.

        ``hint`` is the NLU model's language ranking (or the nearest examples' languages, with their
        own ``hint_confidence``); it decides for transliterated text.
        """
        prior = prior if prior in self.languages else None
        fallback = prior or self.default
        if letter_count(text) == 0:
            return Detection(fallback, 0.0, None, switched=False)
        translit = self.transliterated(text, hint, hint_confidence)
        if translit is not None:
            keep = prior is not None and (prior == translit or self._scripts[prior] != "LATIN")
            if keep:
                assert prior is not None
                return Detection(
                    prior, hint[0].confidence if prior == translit else 0.0, translit, switched=False
                )
            return Detection(translit, hint[0].confidence, translit, switched=prior is not None)
        guess = {score.key: score.confidence for score in hint if score.key in self._scripts}
        sure = bool(guess) and max(guess.values()) >= self.model_decides_at
        # The model's identifier learnt how people write here (code-switching, local words, slang):
        # when it is sure, it decides (lingua's trigrams read "tečaj hrvatskog jezika" in an English
        # sentence as Croatian). Otherwise lingua, which knows the languages in general, and the
        # model count equally.
        values = {} if sure else self.confidences(text)
        if guess:
            if values:
                values = {lang: (value + guess.get(lang, 0.0)) / 2 for lang, value in values.items()}
            else:
                values = {lang: guess.get(lang, 0.0) for lang in self.languages}
        if not values:  # neither character statistics nor the model's guess: keep what we have
            return Detection(fallback, 0.0, None, switched=False)
        top = max(values, key=values.__getitem__)
        top_confidence = values[top]
        if prior is None:
            # A few letters say little: prefer the default language when its script fits.
            unsure = letter_count(text) < self.min_letters and top_confidence < 0.7
            if unsure and script_of_text(text) == self._scripts.get(self.default):
                return Detection(self.default, values.get(self.default, 0.0), top, switched=False)
            return Detection(top, top_confidence, top, switched=False)
        if top == prior or letter_count(text) < self.min_letters:
            return Detection(prior, values.get(prior, 0.0), top, switched=False)
        text_script = script_of_text(text)
        if text_script == "LATIN" and self._scripts[prior] != "LATIN":
            # Transliteration is plain ASCII: only English, or text with its own diacritics, switches.
            own_letters = top == "en" or not text.isascii()
            switch = own_letters and top_confidence >= self.latin_confidence
        else:
            switch = top_confidence >= max(0.5, self.ratio * values.get(prior, 0.0))
        if switch:
            return Detection(top, top_confidence, top, switched=True)
        return Detection(prior, values.get(prior, 0.0), top, switched=False)
