"""The loaded knowledge base: question keys, and the answer for a city, a key and a language."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..safety import SafetyContent
from .schema import EMERGENCY_KEY, NOT_EMERGENCY_KEY, City, Entry, KeyText, Problem

__all__ = ["Answer", "KnowledgeBase", "Taxonomy"]


@dataclass(frozen=True)
class Taxonomy:
    """The question keys (from ``content/keys.yml``) and their menu topics."""

    topics: Mapping[str, tuple[str, ...]]
    conversation: tuple[str, ...]

    @property
    def content_keys(self) -> tuple[str, ...]:
        return tuple(key for keys in self.topics.values() for key in keys)

    @property
    def all_keys(self) -> tuple[str, ...]:
        return self.content_keys + self.conversation

    def topic_of(self, key: str) -> str | None:
        return next((topic for topic, keys in self.topics.items() if key in keys), None)


@dataclass(frozen=True)
class Answer:
    """An answer resolved for one city and one person's language."""

    key: str
    city: str
    requested_language: str
    language: str
    text: str
    sources: tuple[str, ...]
    updated: dt.date
    checked_by: str | None
    checked_on: dt.date | None
    origin: str

    @property
    def is_fallback(self) -> bool:
        """True when the answer is not in the language the person asked for."""
        return self.language != self.requested_language


@dataclass
class KnowledgeBase:
    """Everything under ``content/``: keys, cities, answers and example questions."""

    root: Path
    taxonomy: Taxonomy
    cities: dict[str, City] = field(default_factory=dict)
    country_entries: dict[str, dict[str, Entry]] = field(default_factory=dict)
    city_entries: dict[str, dict[str, Entry]] = field(default_factory=dict)
    origins: dict[tuple[str, str, str], str] = field(default_factory=dict)
    texts: dict[str, dict[str, KeyText]] = field(default_factory=dict)
    heldout: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    safety: SafetyContent = field(default_factory=SafetyContent)
    problems: list[Problem] = field(default_factory=list)

    def entry(self, city: str, key: str) -> tuple[Entry, str] | None:
        """The entry for a city and key (city first, then its country) and the file it came from."""
        spec = self.cities.get(city)
        if spec is None:
            return None
        if key in self.city_entries.get(city, {}):
            return self.city_entries[city][key], self.origins[("city", city, key)]
        if key in self.country_entries.get(spec.country, {}):
            return self.country_entries[spec.country][key], self.origins[("country", spec.country, key)]
        return None

    def fallback_languages(self, city: str, language: str) -> list[str]:
        """The order in which languages are tried: the person's, English, the city's own."""
        order = [language, "en"]
        spec = self.cities.get(city)
        if spec is not None:
            order.append(spec.local_language)
        return list(dict.fromkeys(order))

    def answer(self, city: str, key: str, language: str) -> Answer | None:
        """The answer for ``key`` in ``city`` in the best available language, or None."""
        found = self.entry(city, key)
        if found is None:
            return None
        entry, origin = found
        for lang in self.fallback_languages(city, language):
            if lang in entry.answer:
                return Answer(
                    key=key,
                    city=city,
                    requested_language=language,
                    language=lang,
                    text=entry.answer[lang],
                    sources=entry.sources,
                    updated=entry.updated,
                    checked_by=entry.checked.by if entry.checked else None,
                    checked_on=entry.checked.on if entry.checked else None,
                    origin=origin,
                )
        return None

    def has_content(self, city: str) -> bool:
        return any(self.entry(city, key) for key in self.taxonomy.content_keys)

    def title(self, key: str, language: str) -> str:
        """The short label for a key in a language (English, then the key itself, as fallback)."""
        for lang in (language, "en"):
            text = self.texts.get(lang, {}).get(key)
            if text is not None:
                return text.title
        return key

    def examples(self, language: str) -> Iterator[tuple[str, str]]:
        """(key, example question) pairs in one language, the curated emergency situations included."""
        for key, text in self.texts.get(language, {}).items():
            for example in text.examples:
                yield key, example
        for situation in self.safety.situations.get(language, ()):
            yield EMERGENCY_KEY, situation

    def detector_negatives(self, language: str) -> Iterator[tuple[str, str]]:
        """(``NOT_EMERGENCY_KEY``, text) for the curated not-emergencies of a language."""
        for text in self.safety.not_emergencies.get(language, ()):
            yield NOT_EMERGENCY_KEY, text

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]
