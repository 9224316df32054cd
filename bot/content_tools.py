"""``python -m bot content check|coverage|preview``: tools for the people who edit ``content/``."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from nlu import normalise

from .engine import Engine
from .i18n import Catalogues
from .knowledge import Entry, KnowledgeBase, Problem, Severity
from .language import LanguageDetector
from .render import render_plain
from .runtime import load_content
from .settings import Settings, load_settings
from .storage import Storage

__all__ = [
    "add_parser",
    "check",
    "coverage_markdown",
    "coverage_matrix",
    "coverage_png",
    "preview",
    "unanswered_markdown",
]

_URL_IN_TEXT = re.compile(r"https?://|www\.", re.IGNORECASE)
_MARKUP_IN_TEXT = re.compile(r"<[a-z/][^>]*>|\*\*|__|\[[^\]]+\]\(")
# A phone screen shows about this much without scrolling much; longer answers get a warning.
PHONE_FRIENDLY_CHARS = 900


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
                problems += _check_entry(settings, engine, city, key, entry, file, line, today, max_age)

    problems += _check_questions(settings, kb)
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
    if entry.last_reviewed > today:
        report(
            "error",
            "the review date is in the future",
            "write the day the answer was checked",
            "last_reviewed",
        )
    elif today - entry.last_reviewed > max_age:
        report(
            "warning",
            f"not reviewed since {entry.last_reviewed} (older than {max_age.days} days)",
            "check the answer against its sources, then update last_reviewed",
            "last_reviewed",
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


# --- coverage --------------------------------------------------------------------------------------

MISSING, FALLBACK, DRAFT, REVIEWED = "missing", "fallback", "draft", "reviewed"


def coverage_matrix(settings: Settings, kb: KnowledgeBase) -> dict[tuple[str, str, str], str]:
    """(city, key, language) → missing | draft | reviewed."""
    matrix = {}
    for city in settings.cities:
        for key in kb.taxonomy.content_keys:
            found = kb.entry(city, key)
            for lang in settings.languages:
                if found is None or lang not in found[0].answer:
                    matrix[(city, key, lang)] = MISSING
                else:
                    matrix[(city, key, lang)] = found[0].status
    return matrix


def coverage_markdown(settings: Settings, kb: KnowledgeBase) -> str:
    matrix = coverage_matrix(settings, kb)
    mark = {REVIEWED: "✅", DRAFT: "📝", MISSING: "❌"}
    lines = ["# Knowledge base coverage", "", "✅ reviewed · 📝 draft (not yet reviewed) · ❌ missing", ""]
    totals: dict[str, int] = defaultdict(int)
    for value in matrix.values():
        totals[value] += 1
    n = len(matrix)
    lines.append(
        f"{n} answers needed ({len(settings.cities)} cities × {len(kb.taxonomy.content_keys)} keys × "
        f"{len(settings.languages)} languages): {totals[REVIEWED]} reviewed, {totals[DRAFT]} draft, "
        f"{totals[MISSING]} missing."
    )
    for city in settings.cities:
        done = sum(1 for (c, _, _), v in matrix.items() if c == city and v != MISSING)
        per_city = len(kb.taxonomy.content_keys) * len(settings.languages)
        lines += ["", f"## {city} ({done}/{per_city})", ""]
        lines.append("| key | " + " | ".join(settings.languages) + " |")
        lines.append("|---|" + "---|" * len(settings.languages))
        for key in kb.taxonomy.content_keys:
            cells = [mark[matrix[(city, key, lang)]] for lang in settings.languages]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def coverage_png(settings: Settings, kb: KnowledgeBase, path: Path) -> Path:
    """A heat map: keys down, city × language across; green reviewed, yellow draft, red missing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    matrix = coverage_matrix(settings, kb)
    keys = kb.taxonomy.content_keys
    columns = [(city, lang) for city in settings.cities for lang in settings.languages]
    value = {MISSING: 0, DRAFT: 1, REVIEWED: 2}
    grid = [[value[matrix[(city, key, lang)]] for city, lang in columns] for key in keys]
    fig, ax = plt.subplots(figsize=(max(8, len(columns) * 0.28 + 3), len(keys) * 0.3 + 2.5))
    ax.imshow(grid, cmap=ListedColormap(["#d73027", "#fee08b", "#1a9850"]), vmin=0, vmax=2, aspect="auto")
    ax.set_yticks(range(len(keys)), keys, fontsize=8)
    ax.set_xticks(range(len(columns)), [lang for _, lang in columns], fontsize=7, rotation=90)
    for i, city in enumerate(settings.cities):
        start = i * len(settings.languages)
        ax.axvline(start - 0.5, color="white", linewidth=3)
        ax.text(start + len(settings.languages) / 2 - 0.5, -1.2, city, ha="center", fontsize=9, weight="bold")
    ax.set_title("Knowledge base coverage — green reviewed, yellow draft, red missing", pad=22, fontsize=10)
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


# --- command line ----------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    kb = load_content(settings)
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
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    async with Storage(settings.database_url) as storage:
        print(await unanswered_markdown(storage, since, limit), end="")
    return 0


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("content", help="check, coverage and preview of the knowledge base")
    actions = parser.add_subparsers(dest="action", required=True)
    check_cmd = actions.add_parser("check", help="report problems; exit 1 on errors")
    check_cmd.add_argument("--errors-only", action="store_true", help="hide warnings")
    cov = actions.add_parser("coverage", help="city × key × language matrix (Markdown and PNG)")
    cov.add_argument("--output", help="Markdown file to write (the PNG goes next to it)")
    prev = actions.add_parser("preview", help="show an answer exactly as a person would see it")
    prev.add_argument("--city", required=True)
    prev.add_argument("--lang", required=True)
    prev.add_argument("key")
    unanswered = actions.add_parser(
        "unanswered", help="questions the bot could not answer, by city, language and frequency"
    )
    unanswered.add_argument("--days", type=int, default=30, help="look back this many days (default 30)")
    unanswered.add_argument("--limit", type=int, default=100)
    parser.set_defaults(func=_run)
