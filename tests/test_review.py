"""Honest review metadata: `updated` and a partner's `checked`, on the card, in check and coverage.

Also the editor commands that write it: `content review` (records a partner's check) and
`content migrate-review` (moves files from the old `status` / `last_reviewed` fields).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from bot.engine import Engine, Outcome, Reply
from bot.i18n import Catalogues
from bot.knowledge import Answer, KnowledgeBase, Taxonomy, load_knowledge_base
from bot.language import LanguageDetector
from bot.render import render_plain
from bot.settings import ROOT, Settings
from bot.telegram.ui import answer_card
from bot.tools.content import check, migrate_review, names_an_actor, record_check

from .conftest import entry, write

LANGS = ("en", "cs", "uk")
TODAY = dt.date(2026, 11, 23)
CHECKS = "checked needs 'by' (the organisation) and 'on' (the date)"


def small_settings(content_dir: Path) -> Settings:
    return Settings(languages=LANGS, cities=("prague", "brno"), content_dir=content_dir)


def problems_of(content_dir: Path, today: dt.date = TODAY) -> list[str]:
    settings = small_settings(content_dir)
    kb = load_knowledge_base(content_dir, settings.cities, LANGS)
    return [str(p) for p in check(settings, kb, today=today)]


# --- schema ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "checked",
    ['\n    by: "Caritas"', "\n    on: 2026-11-20", " {}", " yes", '\n    by: "  "\n    on: 2026-11-20'],
)
def test_checked_needs_by_and_on(content_dir: Path, checked: str) -> None:
    write(
        content_dir / "countries/cz/housing.yml",
        f"housing.rent:\n  updated: 2026-11-01\n  checked:{checked}\n"
        "  sources: [https://www.example.gov/rent]\n  answer:\n    en: Ask the municipal housing office.\n",
    )
    kb = load_knowledge_base(content_dir, ["prague"], LANGS)
    [problem] = kb.errors
    assert (problem.entry, problem.field, problem.message) == ("housing.rent", "checked", CHECKS)
    assert "content review" in (problem.hint or "")
    assert kb.answer("prague", "housing.rent", "en") is None


def test_checked_on_must_be_a_date_and_updated_is_required(content_dir: Path) -> None:
    write(
        content_dir / "countries/cz/housing.yml",
        """
        housing.rent:
          checked:
            by: Caritas
            on: last week
          sources: [https://www.example.gov/rent]
          answer:
            en: Ask the municipal housing office.
        """,
    )
    kb = load_knowledge_base(content_dir, ["prague"], LANGS)
    messages = {p.field: p.message for p in kb.errors}
    assert messages == {
        "updated": "this field is missing",
        "checked.on": "this field is not a date in the form YYYY-MM-DD",
    }


def test_future_dates_are_errors(content_dir: Path) -> None:
    write(
        content_dir / "countries/cz/housing.yml",
        entry("housing.rent", checked=("Caritas", "2026-12-24"), en="Ask the municipal housing office.")
        + entry("housing.social", en="Ask the municipal housing office.").replace("2026-11-01", "2027-01-01"),
    )
    errors = [p for p in problems_of(content_dir) if p.startswith("ERROR") and "housing.yml" in p]
    assert any(
        "'housing.rent', field 'checked.on': the check date 2026-12-24 is in the future" in p for p in errors
    )
    assert any("'housing.social', field 'updated': the date 2027-01-01 is in the future" in p for p in errors)


def test_old_review_fields_still_load_with_a_warning(content_dir: Path) -> None:
    write(
        content_dir / "countries/cz/housing.yml",
        """
        housing.rent:
          status: reviewed
          last_reviewed: 2026-10-01
          sources: [https://www.example.gov/rent]
          answer:
            en: Ask the municipal housing office.
        housing.social:
          status: draft
          last_reviewed: 2026-10-02
          sources: [https://www.example.gov/social]
          answer:
            en: Ask the municipal housing office.
        housing.shelter:
          status: finished
          last_reviewed: 2026-10-03
          sources: [https://www.example.gov/shelter]
          answer:
            en: Ask the municipal housing office.
        """,
    )
    kb = load_knowledge_base(content_dir, ["prague"], LANGS)
    rent = kb.answer("prague", "housing.rent", "en")
    # "status: reviewed" never said who checked, so it is not shown as a partner's check.
    assert rent is not None and rent.updated == dt.date(2026, 10, 1) and rent.checked_by is None
    [error] = kb.errors
    assert (error.entry, error.field) == ("housing.shelter", "status")
    assert "migrate-review" in (error.hint or "")
    [warning] = [p for p in kb.problems if p.severity == "warning" and "housing.yml" in p.file]
    assert str(warning) == (
        "WARNING: content/countries/cz/housing.yml:1: old review fields ('status', 'last_reviewed') in 3 "
        "entries: run `python -m bot content migrate-review`\n"
        "    how to fix: it renames 'last_reviewed' to 'updated' and deletes 'status' in every answer file"
    )


# --- the answer card -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> Engine:
    settings = Settings(languages=LANGS, cities=("prague",))
    kb = KnowledgeBase(
        root=settings.root, taxonomy=Taxonomy(topics={"permits": ("permit.renewal",)}, conversation=())
    )
    return Engine(settings, kb, None, LanguageDetector(["en"]), Catalogues(LANGS))


def reply(language: str, checked: bool) -> Reply:
    answer = Answer(
        "permit.renewal",
        "prague",
        language,
        language,
        "Ask OAMP.",
        ("https://frs.gov.cz/",),
        dt.date(2026, 11, 1),
        "Integration Centre Prague" if checked else None,
        dt.date(2026, 11, 10) if checked else None,
        "x",
    )
    return Reply(Outcome.ANSWER, "prague", language, "Ask OAMP.", key="permit.renewal", answer=answer)


@pytest.mark.parametrize(
    ("language", "checked", "expected"),
    [
        ("en", True, "Checked by Integration Centre Prague on November 10, 2026."),
        ("en", False, "Not yet checked by a partner organisation. Last updated November 1, 2026."),
        ("cs", True, "Zkontrolovala organizace Integration Centre Prague dne 10. listopadu 2026."),
        (
            "cs",
            False,
            "Zatím nezkontrolováno partnerskou organizací. Naposledy aktualizováno 1. listopadu 2026.",
        ),
        ("uk", True, "Перевірено 10 листопада 2026\u202fр. організацією Integration Centre Prague."),
        (
            "uk",
            False,
            "Ще не перевірено партнерською організацією. Останнє оновлення: 1 листопада 2026\u202fр.",
        ),
    ],
)
def test_card_says_who_checked_it_or_when_it_changed(
    engine: Engine, language: str, checked: bool, expected: str
) -> None:
    shown = reply(language, checked)
    plain = render_plain(engine, shown)
    assert plain.splitlines()[-1] == expected
    [card] = answer_card(engine, shown)
    assert card.endswith(f"<i>{expected}</i>")
    assert "Draft" not in plain and "Last checked" not in plain


# --- content review --------------------------------------------------------------------------------


def test_review_writes_the_check_into_the_country_file_and_is_idempotent(content_dir: Path) -> None:
    settings = small_settings(content_dir)
    path = content_dir / "countries/cz/permit.yml"
    original = "# National answers: edit with care.\n" + path.read_text()
    path.write_text(original)
    kb = load_knowledge_base(content_dir, settings.cities, LANGS)

    said = record_check(
        settings, kb, "brno", "permit.renewal", "Caritas Czech Republic", dt.date(2026, 11, 20), TODAY
    )
    assert said.startswith(
        "Recorded in content/countries/cz/permit.yml:2, entry 'permit.renewal': "
        "checked by Caritas Czech Republic on 2026-11-20."
    )
    assert "applies to every city of that country" in said and "(now: prague, brno)" in said
    expected = original.replace(
        "permit.renewal:\n  updated: 2026-11-01\n",
        "permit.renewal:\n  updated: 2026-11-01\n"
        '  checked:\n    by: "Caritas Czech Republic"\n    on: 2026-11-20\n',
    )
    assert path.read_text() == expected

    again = record_check(
        settings, kb, "brno", "permit.renewal", "Caritas Czech Republic", dt.date(2026, 11, 20), TODAY
    )
    assert again.startswith("Already recorded") and path.read_text() == expected

    record_check(settings, kb, "prague", "permit.renewal", 'Centre "Meta"', dt.date(2026, 11, 22), TODAY)
    assert path.read_text() == expected.replace(
        '    by: "Caritas Czech Republic"\n    on: 2026-11-20\n',
        '    by: "Centre \\"Meta\\""\n    on: 2026-11-22\n',
    )
    answer = load_knowledge_base(content_dir, settings.cities, LANGS).answer("brno", "permit.renewal", "en")
    assert answer is not None and (answer.checked_by, answer.checked_on) == (
        'Centre "Meta"',
        dt.date(2026, 11, 22),
    )


def test_review_uses_the_citys_own_entry_and_replaces_its_check(content_dir: Path) -> None:
    settings = small_settings(content_dir)
    path = content_dir / "cities/prague/services.yml"
    before = path.read_text()
    kb = load_knowledge_base(content_dir, settings.cities, LANGS)
    said = record_check(settings, kb, "prague", "services.integration_centre", "InBáze", today=TODAY)
    assert "content/cities/prague/services.yml:1" in said and "This is Prague's own answer." in said
    assert path.read_text() == before.replace(
        '    by: "Integration Centre Prague"\n    on: 2026-11-10\n', '    by: "InBáze"\n    on: 2026-11-23\n'
    )
    # The country's answer, which Brno uses, is untouched.
    assert "checked:" not in (content_dir / "countries/cz/services.yml").read_text()


def test_review_works_on_old_format_entries_and_keeps_crlf(content_dir: Path) -> None:
    settings = small_settings(content_dir)
    path = content_dir / "countries/cz/housing.yml"
    old = (
        "housing.rent:\r\n  status: draft\r\n  last_reviewed: 2026-10-01  # a comment\r\n"
        "  sources: [https://a.gov/]\r\n  answer:\r\n    en: Ask the municipal office.\r\n"
    )
    path.write_bytes(old.encode())
    kb = load_knowledge_base(content_dir, settings.cities, LANGS)
    record_check(settings, kb, "brno", "housing.rent", "Caritas", dt.date(2026, 11, 1), TODAY)
    assert path.read_bytes().decode() == old.replace(
        "# a comment\r\n", '# a comment\r\n  checked:\r\n    by: "Caritas"\r\n    on: 2026-11-01\r\n'
    )


@pytest.mark.parametrize(
    ("city", "key", "by", "on", "message"),
    [
        ("paris", "permit.renewal", "X", None, "unknown city 'paris'; choose one of: prague, brno"),
        ("prague", "permit.renewl", "X", None, "unknown key 'permit.renewl'"),
        ("prague", "housing.shelter", "X", None, "prague has no answer for 'housing.shelter'"),
        ("prague", "permit.renewal", " ", None, "name the organisation"),
        ("prague", "permit.renewal", "X", dt.date(2027, 1, 1), "the date 2027-01-01 is in the future"),
    ],
)
def test_review_errors_are_plain(
    content_dir: Path, city: str, key: str, by: str, on: dt.date | None, message: str
) -> None:
    settings = small_settings(content_dir)
    kb = load_knowledge_base(content_dir, settings.cities, LANGS)
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        record_check(settings, kb, city, key, by, on, TODAY)


# --- content migrate-review ------------------------------------------------------------------------


def test_migration_rewrites_old_fields_line_by_line_and_is_idempotent(tmp_path: Path) -> None:
    root = tmp_path / "content"
    old = """\
# Housing in the Czech Republic.
housing.rent:
  status: draft          # not yet checked
  last_reviewed: 2026-11-01
  sources:
    - https://www.example.gov/rent
  answer:
    en: |
      status: draft is text here, not a field.
housing.social:
  status: reviewed
  last_reviewed: 2026-11-02
  sources: [https://www.example.gov/social]
  answer: {en: Ask the municipal office.}
housing.shelter:
  status: "finished"
  updated: 2026-11-03
  last_reviewed: 2026-11-03
  sources: [https://www.example.gov/shelter]
  answer: {en: Ask the municipal office.}
"""
    write(root / "countries/cz/housing.yml", old)
    write(root / "cities/prague/city.yml", "country: cz\nlocal_language: cs\nname: {en: Prague}\n")
    write(root / "cities/prague/school.yml", entry("school.enrolment", en="Ask the school."))

    result = migrate_review(root)
    assert (
        (root / "countries/cz/housing.yml").read_text()
        == """\
# Housing in the Czech Republic.
housing.rent:
  updated: 2026-11-01
  sources:
    - https://www.example.gov/rent
  answer:
    en: |
      status: draft is text here, not a field.
housing.social:
  updated: 2026-11-02
  sources: [https://www.example.gov/social]
  answer: {en: Ask the municipal office.}
housing.shelter:
  status: "finished"
  updated: 2026-11-03
  last_reviewed: 2026-11-03
  sources: [https://www.example.gov/shelter]
  answer: {en: Ask the municipal office.}
"""
    )
    assert result.changed_files == ["content/countries/cz/housing.yml"]
    assert (result.renamed, result.deleted) == (2, 2)
    assert result.was_reviewed == ["content/countries/cz/housing.yml:10, entry 'housing.social'"]
    where = "content/countries/cz/housing.yml:15, entry 'housing.shelter'"
    assert result.left == [
        f"{where}: has both 'last_reviewed' and 'updated'; keep one",
        f"{where}: unknown 'status: finished'; delete the line",
    ]
    assert "housing.social" in result.report() and "content review" in result.report()
    migrated = (root / "countries/cz/housing.yml").read_text()
    again = migrate_review(root)
    assert again.changed_files == [] and again.renamed == again.deleted == 0
    assert (root / "countries/cz/housing.yml").read_text() == migrated


def test_migration_of_a_copy_of_the_shipped_content(tmp_path: Path) -> None:
    root = tmp_path / "content"
    shutil.copytree(ROOT / "content", root, ignore=shutil.ignore_patterns("realistic", "heldout"))
    before = load_knowledge_base(root, ["prague", "sofia"], ["en", "cs", "bg"])
    migrate_review(root)
    after = load_knowledge_base(root, ["prague", "sofia"], ["en", "cs", "bg"])
    assert not [p for p in after.problems if "old review fields" in p.message]
    assert [str(p) for p in after.errors] == [str(p) for p in before.errors]
    for city in ("prague", "sofia"):
        for key in after.taxonomy.content_keys:
            old, new = before.answer(city, key, "en"), after.answer(city, key, "en")
            assert (old and (old.text, old.updated, old.checked_by)) == (
                new and (new.text, new.updated, new.checked_by)
            )
    assert migrate_review(root).changed_files == []


# --- content check: whom to turn to, and the realistic evaluation set ------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Bring your passport and two photos.", False),
        ("In Prague, rents are high. Look early.", False),
        ("Apply at the Ministry of the Interior.", True),
        ("Ask OAMP before your permit expires.", True),
        ("Caritas Czech Republic helps with forms.", True),
        ("Help comes from Caritas Czech Republic.", True),
        ("Call 112.", True),
        ("Write an e-mail to the school.", True),
    ],
)
def test_names_an_actor(text: str, names: bool) -> None:
    assert names_an_actor(text) is names


def test_warning_for_an_answer_that_names_nobody(content_dir: Path) -> None:
    write(
        content_dir / "countries/cz/housing.yml",
        entry("housing.rent", en="Bring your passport and two photos.", cs="Vezměte si pas.")
        + entry("housing.social", en="Ask the municipal housing office.", cs="Zeptejte se na úřadě."),
    )
    found = [p for p in problems_of(content_dir) if "names no office" in p]
    assert len(found) == 1 and "entry 'housing.rent', field 'answer.en'" in found[0]
    assert found[0].startswith("WARNING: content/countries/cz/housing.yml:1")


def test_training_question_in_the_realistic_set_is_an_error(content_dir: Path) -> None:
    write(
        content_dir / "realistic/en.yml",
        yaml.safe_dump([{"text": "How do I  RENEW my permít", "key": "permit.renewal", "style": "plain"}]),
    )
    write(
        content_dir / "questions/en.yml",
        yaml.safe_dump(
            {
                "permit.renewal": {
                    "title": "Renewal",
                    "examples": ["extend visa", "how do i renew my permit"],
                },
                "permit.first_application": {"title": "First", "examples": ["first permit"]},
            }
        ),
    )
    [problem] = [p for p in problems_of(content_dir) if "realistic" in p]
    assert problem.startswith(
        "ERROR: content/questions/en.yml, entry 'permit.renewal', field 'examples': "
        "example 2 is also a message in content/realistic/en.yml (the realistic evaluation set)"
    )
    assert "renew my permit" not in problem.lower()
