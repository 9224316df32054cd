"""``python -m bot content check|coverage|preview|review|migrate-review|unanswered``: editor tools.

The people who edit ``content/`` use these: ``check`` lists problems in plain words, ``coverage`` shows
what is missing or unchecked, ``review`` records that a partner organisation checked an answer (a
two-line edit that keeps the file as the editor wrote it) and ``migrate-review`` moves answer files
from the old review fields (``status``, ``last_reviewed``) to ``updated``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nlu import normalise

from .engine import Engine
from .i18n import Catalogues
from .knowledge import Entry, KnowledgeBase, Problem, Severity
from .language import LanguageDetector
from .render import render_plain
from .runtime import load_content
from .settings import Settings, load_settings
from .storage import Storage
from .tools.realistic import load_realistic

__all__ = [
    "ACTOR_STEMS",
    "Migration",
    "add_parser",
    "check",
    "coverage_markdown",
    "coverage_matrix",
    "coverage_png",
    "migrate_review",
    "names_an_actor",
    "preview",
    "record_check",
    "unanswered_markdown",
]

_URL_IN_TEXT = re.compile(r"https?://|www\.", re.IGNORECASE)
_MARKUP_IN_TEXT = re.compile(r"<[a-z/][^>]*>|\*\*|__|\[[^\]]+\]\(")
# A phone screen shows about this much without scrolling much; longer answers get a warning.
PHONE_FRIENDLY_CHARS = 900

# --- "who do I turn to?" ---------------------------------------------------------------------------
# An answer should tell people whom to turn to. `names_an_actor` accepts a text that has
#   1. a word starting with one of ACTOR_STEMS (case-insensitive: "Ministry", "offices", "consulate",
#      "e-mail"), or
#   2. an acronym: a word of two or more capitals ("OAMP", "NGO", "EU"), or
#   3. a proper name of two or more capitalised words in a row, not counting the first word of a
#      sentence ("the Integration Centre Prague", "ask Caritas Czech Republic").
# It looks at the English text, or at the first language an entry has when English is missing (then
# only 2 and 3 are meaningful). A warning, never an error: it cannot understand the text.
ACTOR_STEMS = (
    "office",
    "ministr",
    "police",
    "municipal",
    "centre",
    "center",
    "organisation",
    "organization",
    "ngo",
    "hotline",
    "helpline",
    "website",
    "portal",
    "embass",
    "consul",
    "agenc",
    "institut",
    "service",
    "insurer",
    "bank",
    "school",
    "court",
    "union",
    "authorit",
    "department",
    "directorate",
    "administration",
    "call",
    "phone",
    "telephone",
    "e-mail",
    "email",
)
_ACTOR_WORD = re.compile(r"\b(?:" + "|".join(re.escape(s) for s in ACTOR_STEMS) + ")", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")
_TOKEN_EDGE = "\"'()[]{}«»„“”‚‘’,.;:!?"


def names_an_actor(text: str) -> bool:
    """True when ``text`` names an office, organisation or channel (see the rules above)."""
    if _ACTOR_WORD.search(text):
        return True
    for sentence in _SENTENCE_END.split(text):
        run = 0
        for position, token in enumerate(sentence.split()):
            word = re.split(r"['’]", token.strip(_TOKEN_EDGE), maxsplit=1)[0]
            if len(word) >= 2 and word.isalpha() and word.isupper():
                return True
            capitalised = position > 0 and word[:1].isupper() and word.isalpha()
            run = run + 1 if capitalised else 0
            if run >= 2:
                return True
            if token[-1:] in ",;:()":
                run = 0
    return False


def _age_in_words(days: int) -> str:
    months = round(days * 12 / 365)
    return f"{months} months" if months * 365 == days * 12 else f"{days} days"


def _engine(settings: Settings, kb: KnowledgeBase) -> Engine:
    detector = LanguageDetector(settings.languages[:1] or ["en"], default=settings.default_language)
    return Engine(settings, kb, None, detector, Catalogues(settings.languages))


def check(settings: Settings, kb: KnowledgeBase, today: dt.date | None = None) -> list[Problem]:
    """Every problem in the content, most serious first."""
    today = today or dt.date.today()
    problems = list(kb.problems)
    max_age = dt.timedelta(days=settings.content.max_review_age_days)
    engine = _engine(settings, kb)
    seen_entries: set[int] = set()
    unchecked = 0

    for city in settings.cities:
        spec = kb.cities.get(city)
        if spec is None:
            continue
        for key in kb.taxonomy.content_keys:
            found = kb.entry(city, key)
            if found is None:
                problems.append(
                    Problem(
                        "error",
                        f"content/cities/{city}",
                        f"the city has no answer for '{key}' "
                        f"(neither in the city nor in countries/{spec.country})",
                        entry=key,
                        hint=f"add an entry '{key}:' to content/countries/{spec.country}/ "
                        f"or content/cities/{city}/",
                    )
                )
                continue
            entry, origin = found
            file, _, line_text = origin.partition(":")
            line = int(line_text) if line_text else None
            first_time = id(entry) not in seen_entries
            seen_entries.add(id(entry))
            if first_time:
                unchecked += entry.checked is None
                problems += _check_entry(settings, engine, city, key, entry, file, line, today, max_age)

    if unchecked:
        problems.append(
            Problem(
                "warning",
                "content/",
                f"{unchecked} of {len(seen_entries)} answers are not yet checked by a partner organisation",
                hint="when a partner organisation has checked an answer against its sources, record it: "
                "`python -m bot content review --city C --key K --by ORGANISATION`",
            )
        )
    problems += _check_questions(settings, kb)
    problems += _check_realistic_overlap(settings, kb)
    return sorted(problems, key=lambda p: (p.severity != "error", p.file, p.line or 0))


def _check_entry(
    settings: Settings,
    engine: Engine,
    city: str,
    key: str,
    entry: Entry,
    file: str,
    line: int | None,
    today: dt.date,
    max_age: dt.timedelta,
) -> list[Problem]:
    """Problems of one answer entry (checked once, even when several cities share it)."""
    found: list[Problem] = []

    def report(severity: Severity, message: str, hint: str, field: str | None = None) -> None:
        found.append(Problem(severity, file, message, entry=key, field=field, line=line, hint=hint))

    missing = [lang for lang in settings.languages if lang not in entry.answer]
    if missing:
        shown = "English" if "en" in entry.answer else "the local language"
        report(
            "warning",
            f"no translation in: {', '.join(missing)} (people then see {shown})",
            "add a line per missing language under 'answer:'",
            "answer",
        )
    if entry.updated > today:
        report(
            "error",
            f"the date {entry.updated} is in the future",
            "write the day the text or the sources last changed (YYYY-MM-DD)",
            "updated",
        )
    if entry.checked is not None:
        by, on = entry.checked.by, entry.checked.on
        record = (
            f'when they have, record it: `python -m bot content review --city {city} --key {key} --by "{by}"`'
        )
        if on > today:
            report(
                "error",
                f"the check date {on} is in the future",
                "write the day the partner organisation checked the answer (YYYY-MM-DD)",
                "checked.on",
            )
        elif today - on > max_age:
            report(
                "warning",
                f"checked by {by} on {on}, more than {_age_in_words(max_age.days)} ago: "
                "ask them to check it again",
                record,
                "checked.on",
            )
        if entry.updated > on:
            report(
                "warning",
                f"changed on {entry.updated}, after {by} checked it on {on} (people still read that it "
                "was checked): ask them to check it again",
                record,
                "updated",
            )
    actor_lang = "en" if "en" in entry.answer else next(iter(entry.answer))
    if not names_an_actor(entry.answer[actor_lang]):
        report(
            "warning",
            "the answer names no office, organisation or channel, so people do not know whom to turn to",
            "name the responsible office or organisation (or its website, phone line or e-mail) in the text",
            f"answer.{actor_lang}",
        )
    for lang, text in entry.answer.items():
        field = f"answer.{lang}"
        if _URL_IN_TEXT.search(text):
            report("warning", "the text contains a web address", "move web addresses to 'sources:'", field)
        if _MARKUP_IN_TEXT.search(text):
            report(
                "warning",
                "the text contains HTML or Markdown, which is shown as is",
                "write plain text",
                field,
            )
        if lang not in settings.languages:
            report("warning", f"'{lang}' is not a language in config.yml", "check the language code", field)
            continue
        shown_chars = len(render_plain(engine, engine.answer_key(key, city, lang)))
        limit = settings.content.max_message_chars
        if shown_chars > limit:
            report(
                "error",
                f"too long for one Telegram message ({shown_chars} characters with sources, limit {limit})",
                "shorten the answer",
                field,
            )
        elif len(text) > PHONE_FRIENDLY_CHARS:
            report(
                "warning",
                f"long for a phone screen ({len(text)} characters)",
                f"keep answers under {PHONE_FRIENDLY_CHARS} characters",
                field,
            )
    return found


def _check_questions(settings: Settings, kb: KnowledgeBase) -> list[Problem]:
    problems: list[Problem] = []
    minimum = settings.content.min_examples_per_key
    for lang in settings.languages:
        file = f"content/questions/{lang}.yml"
        texts = kb.texts.get(lang)
        if texts is None:
            problems.append(
                Problem(
                    "error",
                    file,
                    "the file with example questions is missing",
                    hint="copy content/questions/en.yml and translate it",
                )
            )
            continue
        owner: dict[str, str] = {}
        for key in kb.taxonomy.all_keys:
            text = texts.get(key)
            if text is None:
                problems.append(
                    Problem(
                        "error",
                        file,
                        "this key has no title and no example questions",
                        entry=key,
                        hint=f"add '{key}:' with a title and examples",
                    )
                )
                continue
            if len(text.examples) < minimum:
                problems.append(
                    Problem(
                        "error",
                        file,
                        f"only {len(text.examples)} example questions (at least {minimum} "
                        "needed for the bot to recognise this topic)",
                        entry=key,
                        field="examples",
                        hint="add more ways people ask this",
                    )
                )
            for example in text.examples:
                folded = normalise(example)
                other = owner.get(folded)
                if other is not None and other != key:
                    problems.append(
                        Problem(
                            "error",
                            file,
                            f"the question '{example}' is also listed under '{other}'",
                            entry=key,
                            field="examples",
                            hint="keep it under the one key it belongs to",
                        )
                    )
                owner.setdefault(folded, key)
        heldout = kb.heldout.get(lang, {})
        if not heldout:
            problems.append(
                Problem(
                    "warning",
                    f"content/heldout/{lang}.yml",
                    "no held-out test questions: accuracy in this language cannot be measured",
                    hint="add a few questions per key that are not in questions/",
                )
            )
        for key, questions in heldout.items():
            for question in questions:
                if normalise(question) in owner:
                    problems.append(
                        Problem(
                            "error",
                            f"content/heldout/{lang}.yml",
                            f"'{question}' is also a training example, so it cannot test anything",
                            entry=key,
                            hint="reword it or remove it from one of the two files",
                        )
                    )
    return problems


def _check_realistic_overlap(settings: Settings, kb: KnowledgeBase) -> list[Problem]:
    """Training examples that are also questions of the realistic evaluation set (content/realistic/).

    The evaluation set is read only to compare normalised forms; its text is never shown.
    """
    problems: list[Problem] = []
    folder = kb.root / "realistic"
    for lang in settings.languages:
        realistic_file = f"content/realistic/{lang}.yml"
        try:
            items = load_realistic(folder, [lang])
        except ValueError as exc:
            problems.append(
                Problem("error", realistic_file, f"the file cannot be read: {exc}", hint="ask the NLU team")
            )
            continue
        held = {normalise(item.text) for item in items}
        if not held:
            continue
        for key, text in kb.texts.get(lang, {}).items():
            for number, example in enumerate(text.examples, 1):
                if normalise(example) in held:
                    problems.append(
                        Problem(
                            "error",
                            f"content/questions/{lang}.yml",
                            f"example {number} is also a question in {realistic_file} (the realistic "
                            "evaluation set), so the evaluation would overstate how well the bot understands",
                            entry=key,
                            field="examples",
                            hint="remove or reword this example; never copy from content/realistic/",
                        )
                    )
    return problems


# --- coverage --------------------------------------------------------------------------------------

MISSING, UNCHECKED, STALE, CHECKED = "missing", "unchecked", "stale", "checked"


def _review_state(entry: Entry, max_age: dt.timedelta, today: dt.date) -> str:
    if entry.checked is None:
        return UNCHECKED
    return STALE if today - entry.checked.on > max_age else CHECKED


def coverage_matrix(
    settings: Settings, kb: KnowledgeBase, today: dt.date | None = None
) -> dict[tuple[str, str, str], str]:
    """(city, key, language) → missing | unchecked | stale (checked too long ago) | checked."""
    today = today or dt.date.today()
    max_age = dt.timedelta(days=settings.content.max_review_age_days)
    matrix = {}
    for city in settings.cities:
        for key in kb.taxonomy.content_keys:
            found = kb.entry(city, key)
            for lang in settings.languages:
                if found is None or lang not in found[0].answer:
                    matrix[(city, key, lang)] = MISSING
                else:
                    matrix[(city, key, lang)] = _review_state(found[0], max_age, today)
    return matrix


def coverage_markdown(settings: Settings, kb: KnowledgeBase, today: dt.date | None = None) -> str:
    matrix = coverage_matrix(settings, kb, today)
    mark = {CHECKED: "✅", UNCHECKED: "📝", STALE: "⏰", MISSING: "❌"}
    age = _age_in_words(settings.content.max_review_age_days)
    lines = [
        "# Knowledge base coverage",
        "",
        f"✅ checked by a partner · 📝 not yet checked · ⏰ check older than {age} · ❌ missing",
        "",
    ]
    totals: dict[str, int] = defaultdict(int)
    for value in matrix.values():
        totals[value] += 1
    n = len(matrix)
    lines.append(
        f"{n} answers needed ({len(settings.cities)} cities × {len(kb.taxonomy.content_keys)} keys × "
        f"{len(settings.languages)} languages): {totals[CHECKED]} checked by a partner, "
        f"{totals[UNCHECKED]} not yet checked, {totals[STALE]} checked more than {age} ago, "
        f"{totals[MISSING]} missing."
    )
    for city in settings.cities:
        done = sum(1 for (c, _, _), v in matrix.items() if c == city and v != MISSING)
        checked = sum(1 for (c, _, _), v in matrix.items() if c == city and v == CHECKED)
        per_city = len(kb.taxonomy.content_keys) * len(settings.languages)
        lines += ["", f"## {city} ({done}/{per_city} written, {checked}/{per_city} checked)", ""]
        lines.append("| key | " + " | ".join(settings.languages) + " |")
        lines.append("|---|" + "---|" * len(settings.languages))
        for key in kb.taxonomy.content_keys:
            cells = [mark[matrix[(city, key, lang)]] for lang in settings.languages]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def coverage_png(settings: Settings, kb: KnowledgeBase, path: Path, today: dt.date | None = None) -> Path:
    """A heat map: keys down, city × language across; coloured by missing / unchecked / stale / checked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    matrix = coverage_matrix(settings, kb, today)
    keys = kb.taxonomy.content_keys
    columns = [(city, lang) for city in settings.cities for lang in settings.languages]
    value = {MISSING: 0, UNCHECKED: 1, STALE: 2, CHECKED: 3}
    grid = [[value[matrix[(city, key, lang)]] for city, lang in columns] for key in keys]
    fig, ax = plt.subplots(figsize=(max(8, len(columns) * 0.28 + 3), len(keys) * 0.3 + 2.5))
    colours = ListedColormap(["#d73027", "#fee08b", "#fc8d59", "#1a9850"])
    ax.imshow(grid, cmap=colours, vmin=0, vmax=3, aspect="auto")
    ax.set_yticks(range(len(keys)), keys, fontsize=8)
    ax.set_xticks(range(len(columns)), [lang for _, lang in columns], fontsize=7, rotation=90)
    for i, city in enumerate(settings.cities):
        start = i * len(settings.languages)
        ax.axvline(start - 0.5, color="white", linewidth=3)
        ax.text(start + len(settings.languages) / 2 - 0.5, -1.2, city, ha="center", fontsize=9, weight="bold")
    age = _age_in_words(settings.content.max_review_age_days)
    ax.set_title(
        "Knowledge base coverage\ngreen: checked by a partner · yellow: not yet checked · "
        f"orange: check older than {age} · red: missing",
        pad=30,
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- preview ---------------------------------------------------------------------------------------


def preview(settings: Settings, kb: KnowledgeBase, city: str, lang: str, key: str) -> str:
    """Exactly what a person would read for ``key`` in ``city`` in ``lang``."""
    if city not in settings.cities:
        raise ValueError(f"unknown city '{city}'; choose one of: {', '.join(settings.cities)}")
    if lang not in settings.languages:
        raise ValueError(f"unknown language '{lang}'; choose one of: {', '.join(settings.languages)}")
    if key not in kb.taxonomy.content_keys:
        raise ValueError(f"unknown key '{key}'; see content/keys.yml")
    engine = _engine(settings, kb)
    return render_plain(engine, engine.answer_key(key, city, lang))


# --- recording a partner's check, and moving files from the old review fields -----------------------
# Both edit answer files line by line, so comments, order and formatting stay as the editor wrote them.

_TOP_LEVEL = re.compile(r"^[^\s#]")


def _entry_blocks(lines: list[str]) -> dict[str, tuple[int, int]]:
    """Top-level entry → (index of its 'key:' line, index after its last line)."""
    starts = [i for i, line in enumerate(lines) if _TOP_LEVEL.match(line)]
    blocks: dict[str, tuple[int, int]] = {}
    for n, start in enumerate(starts):
        key = lines[start].split(":", 1)[0].strip().strip("\"'")
        blocks.setdefault(key, (start, starts[n + 1] if n + 1 < len(starts) else len(lines)))
    return blocks


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _field_indent(lines: list[str], start: int, end: int) -> str:
    """The indentation of an entry's fields (two spaces in every shipped file)."""
    for line in lines[start + 1 : end]:
        if line.strip() and not line.lstrip().startswith("#"):
            return " " * _indent_of(line)
    return "  "


def _field_at(line: str, indent: str, name: str) -> bool:
    """True when ``line`` is the field ``name`` of an entry whose fields are indented by ``indent``."""
    return re.match(rf"{indent}{re.escape(name)}\s*:", line) is not None and _indent_of(line) == len(indent)


def _field_value(line: str) -> str:
    return line.split(":", 1)[1].split("#", 1)[0].strip().strip("\"'")


def _eol(line: str) -> str:
    return "\r\n" if line.endswith("\r\n") else "\n"


def _set_check(lines: list[str], start: int, end: int, by: str, on: dt.date) -> list[str]:
    """The entry's lines with its 'checked:' block (if any) replaced by one after 'updated:'."""
    indent = _field_indent(lines, start, end)
    body: list[str] = []
    rest = lines[start + 1 : end]
    i = 0
    while i < len(rest):
        if _field_at(rest[i], indent, "checked"):
            i += 1
            while i < len(rest) and rest[i].strip() and _indent_of(rest[i]) > len(indent):
                i += 1
            continue
        body.append(rest[i])
        i += 1
    # "last_reviewed:" is the old name of "updated:" (before `content migrate-review`).
    anchor = next((j for j, line in enumerate(body) if _field_at(line, indent, "updated")), None)
    if anchor is None:
        anchor = next((j for j, line in enumerate(body) if _field_at(line, indent, "last_reviewed")), None)
    if anchor is None:
        raise ValueError("the entry has no 'updated:' line: add one (the day the text last changed) first")
    eol = _eol(body[anchor])
    if not body[anchor].endswith("\n"):
        body[anchor] += eol
    block = [
        f"{indent}checked:{eol}",
        f"{indent * 2}by: {json.dumps(by, ensure_ascii=False)}{eol}",
        f"{indent * 2}on: {on.isoformat()}{eol}",
    ]
    return [*lines[: start + 1], *body[: anchor + 1], *block, *body[anchor + 1 :], *lines[end:]]


def record_check(
    settings: Settings,
    kb: KnowledgeBase,
    city: str,
    key: str,
    by: str,
    on: dt.date | None = None,
    today: dt.date | None = None,
) -> str:
    """Record that organisation ``by`` checked the answer ``city`` uses for ``key``; say what changed.

    The entry is the one the city actually uses: its own, else its country's. Raises ValueError with a
    plain-language message when the city, the key or the entry cannot be found.
    """
    today = today or dt.date.today()
    on = on or today
    by = by.strip()
    if city not in settings.cities:
        raise ValueError(f"unknown city '{city}'; choose one of: {', '.join(settings.cities)}")
    spec = kb.cities.get(city)
    if spec is None:
        raise ValueError(f"the city '{city}' has no content yet (content/cities/{city}/city.yml)")
    if key not in kb.taxonomy.content_keys:
        raise ValueError(f"unknown key '{key}'; see content/keys.yml for the list")
    if not by:
        raise ValueError('name the organisation that checked it, e.g. --by "Integration Centre Prague"')
    if on > today:
        raise ValueError(f"the date {on} is in the future: give the day the organisation checked the answer")
    folders = (f"{kb.root.name}/cities/{city}/", f"{kb.root.name}/countries/{spec.country}/")
    broken = [p for p in kb.errors if p.entry == key and p.file.startswith(folders)]
    if broken:
        raise ValueError(
            f"the entry '{key}' in {broken[0].file} has errors: fix them first "
            "(`python -m bot content check` lists them)"
        )
    found = kb.entry(city, key)
    if found is None:
        raise ValueError(
            f"{city} has no answer for '{key}': neither content/cities/{city}/ nor "
            f"content/countries/{spec.country}/ has an entry '{key}:'. Write the answer first."
        )
    rel, _, line_text = found[1].partition(":")
    path = Path(rel) if Path(rel).is_absolute() else kb.root.parent / rel
    raw = path.read_bytes().decode("utf-8")
    lines = raw.splitlines(keepends=True)
    blocks = _entry_blocks(lines)
    if key not in blocks:
        raise ValueError(f"the entry '{key}:' was not found at the start of a line in {rel}")
    start, end = blocks[key]
    edited = "".join(_set_check(lines, start, end, by, on))
    # The edit must change this entry's check and nothing else.
    before, after = yaml.safe_load(raw), yaml.safe_load(edited)
    entry = Entry.model_validate(after[key])
    assert entry.checked is not None and (entry.checked.by, entry.checked.on) == (by, on)
    assert {k: v for k, v in after.items() if k != key} == {k: v for k, v in before.items() if k != key}
    if edited != raw:
        path.write_bytes(edited.encode("utf-8"))
    line = int(line_text) if line_text else start + 1
    if rel.startswith(folders[0]):
        scope = f"This is {kb.cities[city].display_name('en')}'s own answer."
    else:
        sharing = [c for c in settings.cities if (used := kb.entry(c, key)) and used[1] == found[1]]
        scope = (
            f"This is the country-level answer for '{spec.country}': it applies to every city of that "
            f"country that has no answer of its own (now: {', '.join(sharing)})."
        )
    state = "Recorded" if edited != raw else "Already recorded"
    return f"{state} in {rel}:{line}, entry '{key}': checked by {by} on {on.isoformat()}.\n{scope}"


@dataclass
class Migration:
    """What ``migrate_review`` changed, and what it left for a person."""

    changed_files: list[str] = field(default_factory=list)
    renamed: int = 0
    deleted: int = 0
    was_reviewed: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = [
            f"{len(self.changed_files)} file(s) changed: {self.renamed} 'last_reviewed' renamed to "
            f"'updated', {self.deleted} 'status' line(s) deleted."
        ]
        if self.was_reviewed:
            lines.append(
                "These entries said 'status: reviewed', which named nobody; if a partner organisation "
                "checked them, record it with `python -m bot content review --city C --key K --by ORG`:"
            )
            lines += [f"  {where}" for where in self.was_reviewed]
        if self.left:
            lines.append("Left as they are, for you to fix:")
            lines += [f"  {what}" for what in self.left]
        return "\n".join(lines)


def migrate_review(root: Path, write: bool = True) -> Migration:
    """Move answer files to ``updated:`` (from ``last_reviewed:``) and drop ``status:`` lines.

    Line by line, so comments and formatting stay; running it again changes nothing.
    """
    result = Migration()
    paths = sorted(root.glob("countries/*/*.yml")) + sorted(root.glob("cities/*/*.yml"))
    for path in paths:
        if path.name == "city.yml":
            continue
        rel = str(path.relative_to(root.parent))
        raw = path.read_bytes().decode("utf-8")
        lines = raw.splitlines(keepends=True)
        drop: set[int] = set()
        for key, (start, end) in _entry_blocks(lines).items():
            indent = _field_indent(lines, start, end)
            fields = {
                name: [i for i in range(start + 1, end) if _field_at(lines[i], indent, name)]
                for name in ("status", "last_reviewed", "updated")
            }
            where = f"{rel}:{start + 1}, entry '{key}'"
            for i in fields["last_reviewed"]:
                if fields["updated"]:
                    result.left.append(f"{where}: has both 'last_reviewed' and 'updated'; keep one")
                    continue
                lines[i] = indent + "updated" + lines[i][len(indent) + len("last_reviewed") :]
                result.renamed += 1
            for i in fields["status"]:
                value = _field_value(lines[i])
                if value not in ("draft", "reviewed"):
                    result.left.append(f"{where}: unknown 'status: {value}'; delete the line")
                    continue
                if value == "reviewed":
                    result.was_reviewed.append(where)
                drop.add(i)
                result.deleted += 1
        edited = "".join(line for i, line in enumerate(lines) if i not in drop)
        if edited != raw:
            result.changed_files.append(rel)
            if write:
                path.write_bytes(edited.encode("utf-8"))
    return result


# --- command line ----------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.action == "migrate-review":
        root = Path(args.content) if args.content else settings.path(settings.content_dir)
        migration = migrate_review(root, write=not args.dry_run)
        print(("Dry run, nothing written. " if args.dry_run else "") + migration.report())
        return 1 if migration.left else 0
    kb = load_content(settings)
    if args.action == "review":
        try:
            print(record_check(settings, kb, args.city, args.key, args.by, args.on))
        except ValueError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.action == "check":
        problems = check(settings, kb)
        shown = [p for p in problems if p.severity == "error" or not args.errors_only]
        for problem in shown:
            print(problem)
        errors = sum(p.severity == "error" for p in problems)
        warnings = len(problems) - errors
        print(f"\n{errors} error(s), {warnings} warning(s).", file=sys.stderr)
        if not errors:
            print("The content is ready to use.", file=sys.stderr)
        return 1 if errors else 0
    if args.action == "coverage":
        text = coverage_markdown(settings, kb)
        out_md = Path(args.output or settings.root / "var" / "coverage.md")
        out_md.parent.mkdir(parents=True, exist_ok=True)
        out_md.write_text(text, encoding="utf-8")
        png = coverage_png(settings, kb, out_md.with_suffix(".png"))
        print(text)
        print(f"Written: {out_md} and {png}", file=sys.stderr)
        return 0
    if args.action == "preview":
        try:
            print(preview(settings, kb, args.city, args.lang, args.key))
        except ValueError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.action == "unanswered":
        return asyncio.run(_unanswered(settings, args.days, args.limit))
    raise AssertionError(args.action)


async def unanswered_markdown(storage: Storage, since: dt.datetime | None, limit: int) -> str:
    """Questions the bot could not answer, by city, language and frequency, as a Markdown table."""
    rows = await storage.unanswered_report(since=since, limit=limit)
    if not rows:
        return "No unanswered questions in this period.\n"
    lines = ["| city | language | times asked | last asked | question |", "|---|---|---:|---|---|"]
    for row in rows:
        question = row.text.replace("|", "/")
        lines.append(f"| {row.city} | {row.language} | {row.count} | {row.last_seen:%Y-%m-%d} | {question} |")
    return "\n".join(lines) + "\n"


async def _unanswered(settings: Settings, days: int, limit: int) -> int:
    async with Storage.from_settings(settings) as storage:
        since = storage.clock() - dt.timedelta(days=days)
        print(await unanswered_markdown(storage, since, limit), end="")
    return 0


def _date_argument(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a date: write it as YYYY-MM-DD") from None


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("content", help="check, coverage, preview and review of the knowledge base")
    actions = parser.add_subparsers(dest="action", required=True)
    check_cmd = actions.add_parser("check", help="report problems; exit 1 on errors")
    check_cmd.add_argument("--errors-only", action="store_true", help="hide warnings")
    cov = actions.add_parser("coverage", help="city × key × language matrix (Markdown and PNG)")
    cov.add_argument("--output", help="Markdown file to write (the PNG goes next to it)")
    prev = actions.add_parser("preview", help="show an answer exactly as a person would see it")
    prev.add_argument("--city", required=True)
    prev.add_argument("--lang", required=True)
    prev.add_argument("key")
    review = actions.add_parser(
        "review",
        help="record that a partner organisation checked an answer against its sources",
        description="Writes 'checked: {by, on}' into the entry the city uses: the city's own answer, "
        "else its country's (which every city of that country shares).",
    )
    review.add_argument("--city", required=True)
    review.add_argument("--key", required=True, help="the question key, e.g. permit.renewal")
    review.add_argument("--by", required=True, help='the organisation, e.g. "Integration Centre Prague"')
    review.add_argument("--on", type=_date_argument, help="the day it checked (YYYY-MM-DD; default: today)")
    migrate = actions.add_parser(
        "migrate-review",
        help="replace the old review fields: 'last_reviewed' becomes 'updated', 'status' lines go",
    )
    migrate.add_argument("--content", help="the content folder to change (default: the configured one)")
    migrate.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    unanswered = actions.add_parser(
        "unanswered", help="questions the bot could not answer, by city, language and frequency"
    )
    unanswered.add_argument("--days", type=int, default=30, help="look back this many days (default 30)")
    unanswered.add_argument("--limit", type=int, default=100)
    parser.set_defaults(func=_run)
