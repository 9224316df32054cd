"""The knowledge base: schema errors an editor can act on, country → city resolution, fallbacks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bot.knowledge import load_knowledge_base
from bot.settings import Settings

from .conftest import entry, write


def test_city_entry_replaces_country_entry(content_dir: Path) -> None:
    kb = load_knowledge_base(content_dir, ["prague", "brno"], ["en", "cs", "uk"])
    assert kb.errors == []
    prague = kb.answer("prague", "services.integration_centre", "en")
    brno = kb.answer("brno", "services.integration_centre", "en")
    assert prague is not None and prague.text == "Integration Centre Prague."
    assert prague.checked_by == "Integration Centre Prague" and prague.checked_on == dt.date(2026, 11, 10)
    assert prague.updated == dt.date(2026, 11, 1)
    assert prague.origin.startswith("content/cities/prague/services.yml")
    # A second city in the same country reuses the country-level answer.
    assert brno is not None and brno.text == "National integration centres."
    assert brno.origin.startswith("content/countries/cz/services.yml")
    assert brno.checked_by is None and brno.checked_on is None


def test_language_fallback_is_person_then_english_then_local(content_dir: Path) -> None:
    kb = load_knowledge_base(content_dir, ["prague"], ["en", "cs", "uk", "ar"])
    uk = kb.answer("prague", "services.integration_centre", "uk")
    assert uk is not None and uk.language == "uk" and not uk.is_fallback
    ar = kb.answer("prague", "permit.renewal", "ar")
    assert ar is not None and ar.language == "en" and ar.is_fallback
    write(
        content_dir / "countries/cz/housing.yml",
        entry("housing.rent", cs="Jen česky."),
    )
    kb = load_knowledge_base(content_dir, ["prague"], ["en", "cs", "ar"])
    only_local = kb.answer("prague", "housing.rent", "ar")
    assert only_local is not None and only_local.language == "cs"


def test_missing_key_and_unknown_city(content_dir: Path) -> None:
    kb = load_knowledge_base(content_dir, ["prague"], ["en"])
    assert kb.answer("prague", "housing.shelter", "en") is None
    assert kb.answer("atlantis", "permit.renewal", "en") is None
    assert not kb.has_content("atlantis")


def test_errors_name_file_entry_and_field_in_plain_words(content_dir: Path) -> None:
    write(
        content_dir / "countries/cz/housing.yml",
        """
        housing.rent:
          updated: 23.11.2026
          sources: []
          answer:
            en: Look on the big portals.
          colour: red
        housing.shelterr:
          updated: 2026-11-01
        """,
    )
    kb = load_knowledge_base(content_dir, ["prague"], ["en"])
    messages = {(p.file, p.entry, p.field): p for p in kb.errors}
    where = "content/countries/cz/housing.yml"
    updated = messages[(where, "housing.rent", "updated")]
    assert updated.message == "this field is not a date in the form YYYY-MM-DD"
    assert "updated: 2026-11-23" in (updated.hint or "")
    assert messages[(where, "housing.rent", "sources")].message == "this field is empty"
    assert "https://" in (messages[(where, "housing.rent", "sources")].hint or "")
    assert "not a field" in messages[(where, "housing.rent", "colour")].message
    assert "not a known question key" in messages[(where, "housing.shelterr", None)].message
    text = str(messages[(where, "housing.rent", "updated")])
    assert text.startswith("ERROR: content/countries/cz/housing.yml:1, entry 'housing.rent', field 'updated'")
    # An entry with errors is left out; the rest of the knowledge base still works.
    assert kb.answer("prague", "housing.rent", "en") is None
    assert kb.answer("prague", "permit.renewal", "en") is not None


def test_broken_yaml_and_duplicates_are_reported_not_raised(content_dir: Path) -> None:
    write(content_dir / "countries/cz/work.yml", "work.rights:\n  updated: 2026-11-01\n bad indent: [\n")
    write(
        content_dir / "countries/cz/health.yml",
        entry("health.doctor", en="Find a GP.") + entry("health.doctor", en="Find a GP again."),
    )
    write(content_dir / "countries/cz/extra.yml", entry("permit.renewal", en="Twice."))
    kb = load_knowledge_base(content_dir, ["prague"], ["en"])
    problems = [str(p) for p in kb.errors]
    assert any("work.yml" in p and "cannot be read" in p and "indentation" in p for p in problems)
    assert any("health.yml" in p and "appears twice" in p for p in problems)
    assert any("extra.yml" in p and "already answered in" in p for p in problems)


def test_sources_must_be_web_addresses(content_dir: Path) -> None:
    write(
        content_dir / "countries/cz/health.yml",
        entry("health.doctor", en="Find a GP.").replace(
            "https://www.example.gov/health.doctor", "ask a friend"
        ),
    )
    kb = load_knowledge_base(content_dir, ["prague"], ["en"])
    assert any(p.field == "sources" and "web address" in p.message for p in kb.errors)


def test_city_without_content_is_a_warning(content_dir: Path) -> None:
    kb = load_knowledge_base(content_dir, ["prague", "kosice"], ["en"])
    assert [p.severity for p in kb.problems if "kosice" in p.file] == ["warning"]
    assert "kosice" not in kb.cities


def test_shipped_content_has_no_errors_and_every_city_answers_every_key(settings: Settings) -> None:
    kb = load_knowledge_base(settings.path(settings.content_dir), settings.cities, settings.languages)
    assert [str(p) for p in kb.errors] == []
    assert len(kb.taxonomy.content_keys) == 35 and len(kb.taxonomy.conversation) == 8
    for city in settings.cities:
        for key in kb.taxonomy.content_keys:
            answer = kb.answer(city, key, "en")
            assert answer is not None, (city, key)
            assert answer.sources and all(s.startswith(("https://", "http://")) for s in answer.sources)
            local = kb.answer(city, key, kb.cities[city].local_language)
            assert local is not None and not local.is_fallback, (city, key)
