"""UI strings: one gettext catalogue per language, loaded once at start-up (never ``install()``ed)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from babel.support import NullTranslations, Translations

__all__ = ["LOCALES_DIR", "Catalogues"]

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"


class Catalogues:
    """The compiled catalogues for the supported languages.

    ``catalogues[lang].gettext("...")`` translates; a language without a catalogue (or a string not
    yet translated) falls back to the English source text.
    """

    def __init__(self, languages: Iterable[str], directory: Path = LOCALES_DIR) -> None:
        self._translations: dict[str, NullTranslations] = {}
        for lang in languages:
            loaded = Translations.load(str(directory), [lang], domain=DOMAIN)
            self._translations[lang] = loaded

    def __getitem__(self, language: str) -> NullTranslations:
        return self._translations.get(language) or NullTranslations()

    def has(self, language: str) -> bool:
        return isinstance(self._translations.get(language), Translations)
