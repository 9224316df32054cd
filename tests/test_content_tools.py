"""Editor tools: check, coverage and preview; adding a city is a content and config change only."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.i18n import Catalogues
from bot.knowledge import load_knowledge_base
from bot.settings import ROOT, Settings, load_settings
from bot.tools.content import check, coverage_markdown, coverage_matrix, coverage_png, preview

from .conftest import entry, write

LANGS = ("en", "cs", "uk")


def small_settings(content_dir: Path, cities: tuple[str, ...] = ("prague", "brno")) -> Settings:
    return Settings(languages=LANGS, cities=cities, content_dir=content_dir)


def questions(lang: str, keys: list[str], per_key: int = 12) -> str:
    return yaml.safe_dump(
        {
            key: {
                "title": f"{key} ({lang})",
                "examples": [f"{lang} {key} question {i}" for i in range(per_key)],
            }
            for key in keys
        },
        allow_unicode=True,
    )


def test_check_reports_each_kind_of_problem_with_a_hint(content_dir: Path) -> None:
    settings = small_settings(content_dir)
    write(
        content_dir / "countries/cz/housing.yml",
        entry(
            "housing.rent",
            checked=("Caritas", "2019-01-01"),
            en="See https://example.org for flats.",
            cs="Viz <b>portály</b>.",
        )
        + entry("housing.social", en="x " * 2100).replace("2026-11-01", "2099-01-01"),
    )
    keys = ["permit.renewal", "housing.rent"]
    write(content_dir / "questions/en.yml", questions("en", keys, per_key=3))
    dup = yaml.safe_load((content_dir / "questions/en.yml").read_text())
    dup["housing.rent"]["examples"].append(dup["permit.renewal"]["examples"][0])
    write(content_dir / "questions/en.yml", yaml.safe_dump(dup))
    write(
        content_dir / "heldout/en.yml",
        yaml.safe_dump({"permit.renewal": [dup["permit.renewal"]["examples"][1]]}),
    )
    kb = load_knowledge_base(content_dir, settings.cities, LANGS)
    problems = check(settings, kb, today=dt.date(2026, 11, 23))
    text = "\n".join(str(p) for p in problems)
    assert "the city has no answer for 'housing.shelter'" in text
    assert "no translation in: uk" in text
    assert "checked by Caritas on 2019-01-01, more than 12 months ago: ask them to check it again" in text
    assert "the date 2099-01-01 is in the future" in text
    assert "4 of 6 answers are not yet checked by a partner organisation" in text
    assert "the text contains a web address" in text and "move web addresses to 'sources:'" in text
    assert "HTML or Markdown" in text
    assert "too long for one Telegram message" in text
    assert "only 3 example questions" in text
    assert "is also listed under 'permit.renewal'" in text
    assert "is also a training example" in text
    assert "content/questions/cs.yml: the file with example questions is missing" in text
    assert problems[0].severity == "error" and all(p.hint for p in problems if p.severity == "error")


def test_coverage_matrix_markdown_and_png(content_dir: Path, tmp_path: Path) -> None:
    settings = small_settings(content_dir)
    kb = load_knowledge_base(content_dir, settings.cities, LANGS)
    matrix = coverage_matrix(settings, kb)
    assert len(matrix) == 2 * len(kb.taxonomy.content_keys) * 3
    assert matrix[("prague", "services.integration_centre", "uk")] == "checked"
    assert matrix[("brno", "services.integration_centre", "uk")] == "missing"
    assert matrix[("brno", "permit.renewal", "cs")] == "unchecked"
    later = coverage_matrix(settings, kb, today=dt.date(2028, 1, 1))
    assert later[("prague", "services.integration_centre", "uk")] == "stale"
    text = coverage_markdown(settings, kb, today=dt.date(2026, 12, 1))
    assert "## prague" in text and "| permit.renewal | 📝 | 📝 | ❌ |" in text
    assert "| services.integration_centre | ✅ | ✅ | ✅ |" in text
    assert "✅ checked by a partner · 📝 not yet checked · ⏰ check older than 12 months · ❌ missing" in text
    assert ": 3 checked by a partner, " in text and " 0 checked more than 12 months ago, " in text
    assert "⏰" in coverage_markdown(settings, kb, today=dt.date(2028, 1, 1)).split("## prague")[1]
    png = coverage_png(settings, kb, tmp_path / "coverage.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_preview_shows_what_the_person_sees(content_dir: Path) -> None:
    settings = small_settings(content_dir)
    kb = load_knowledge_base(content_dir, settings.cities, LANGS)
    shown = preview(settings, kb, "prague", "uk", "permit.renewal")
    assert "Renew at the Ministry of the Interior." in shown  # English fallback for Ukrainian
    assert "English" in shown and "https://www.example.gov/permit.renewal" in shown
    note = Catalogues(("uk",))["uk"].gettext(
        "Not yet checked by a partner organisation. Last updated {date}."
    )
    # updated: 2026-11-01, in Ukrainian (CLDR puts a narrow no-break space before "р.")
    assert shown.splitlines()[-1] == note.format(date="1 листопада 2026\u202fр.")
    with pytest.raises(ValueError, match="unknown key"):
        preview(settings, kb, "prague", "uk", "permit.renewl")


def test_adding_a_city_is_a_content_and_config_change_only(tmp_path: Path) -> None:
    """A fixture city in an existing country: one folder, one line in config.yml, no code."""
    root = tmp_path / "deployment"
    shutil.copytree(ROOT / "content", root / "content")
    write(
        root / "content/cities/brno/city.yml", "country: cz\nlocal_language: cs\nname: {en: Brno, cs: Brno}\n"
    )
    write(
        root / "content/cities/brno/services.yml",
        entry(
            "services.integration_centre",
            en="The South Moravian integration centre helps.",
            cs="Pomůže Jihomoravské integrační centrum.",
        ),
    )
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    config["cities"].append("brno")
    (root / "config.yml").write_text(yaml.safe_dump(config))

    settings = load_settings(root / "config.yml", environ={})
    kb = load_knowledge_base(settings.path(settings.content_dir), settings.cities, settings.languages)
    assert "brno" in settings.cities and kb.cities["brno"].country == "cz"
    errors = [str(p) for p in check(settings, kb) if p.severity == "error"]
    assert errors == []
    assert "South Moravian" in preview(settings, kb, "brno", "en", "services.integration_centre")
    # Everything else comes from the Czech country-level answers.
    prague_free = kb.answer("brno", "permit.renewal", "uk")
    assert prague_free is not None and prague_free.origin.startswith("content/countries/cz/")
    assert "## brno" in coverage_markdown(settings, kb)


def test_content_check_cli_passes_on_the_shipped_content() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "content", "check", "--errors-only"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 error(s)" in result.stderr


def test_shipped_content_is_complete_for_five_cities_and_ten_languages(settings: Settings) -> None:
    kb = load_knowledge_base(settings.path(settings.content_dir), settings.cities, settings.languages)
    matrix = coverage_matrix(settings, kb)
    assert len(matrix) == 5 * len(kb.taxonomy.content_keys) * 10
    missing = sorted(k for k, v in matrix.items() if v == "missing")
    assert missing == []


async def test_unanswered_lists_questions_by_city_language_and_frequency(tmp_path: Path) -> None:
    from bot.storage import Storage
    from bot.tools.content import unanswered_markdown

    async with Storage(f"sqlite+aiosqlite:///{tmp_path / 'u.db'}") as storage:
        assert "No unanswered" in await unanswered_markdown(storage, None, 10)
        for _ in range(3):
            await storage.add_unanswered("prague", "uk", "де купити квиток на футбол", "out_of_scope", 0.4)
        await storage.add_unanswered("sofia", "ar", "sim card | cheap", None, 0.2)
        table = await unanswered_markdown(storage, None, 10)
    lines = table.splitlines()
    assert lines[2].startswith("| prague | uk | 3 |") and lines[2].endswith("| де купити квиток на футбол |")
    assert lines[3].startswith("| sofia | ar | 1 |") and "sim card / cheap" in lines[3]
