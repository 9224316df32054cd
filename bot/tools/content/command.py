"""``python -m bot content …``: the command line of the editor tools, with ``preview`` and
``unanswered``."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ...knowledge import KnowledgeBase, Taxonomy
from ...render import render_plain
from ...runtime import load_content, var_dir
from ...settings import Settings, load_settings
from ...storage import Storage, database_url
from .checks import check, editor_engine
from .coverage import coverage_markdown, coverage_png, gaps_markdown
from .review import migrate_review, record_check

__all__ = ["add_parser", "preview", "unanswered_markdown"]


def preview(settings: Settings, kb: KnowledgeBase, city: str, lang: str, key: str) -> str:
    """Exactly what a person would read for ``key`` in ``city`` in ``lang``."""
    if city not in settings.cities:
        raise ValueError(f"unknown city '{city}'; choose one of: {', '.join(settings.cities)}")
    if lang not in settings.languages:
        raise ValueError(f"unknown language '{lang}'; choose one of: {', '.join(settings.languages)}")
    if key not in kb.taxonomy.content_keys:
        raise ValueError(f"unknown key '{key}'; see content/keys.yml")
    engine = editor_engine(settings, kb)
    return render_plain(engine, engine.answer_key(key, city, lang))


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
        text = coverage_markdown(settings, kb) + _gaps(settings, kb.taxonomy, args.days)
        out_md = Path(args.output or var_dir(settings) / "coverage.md")
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


def _gaps(settings: Settings, taxonomy: Taxonomy, days: int) -> str:
    """The coverage report's section from the database, when there is one (a SQLite file is not
    created for it; a database that cannot be reached is said so)."""
    url = database_url(settings.database_url, settings.root)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return "\n_No database yet: the gaps people met appear here once the bot has run._\n"
    return asyncio.run(_read_gaps(settings, taxonomy, days))


async def _read_gaps(settings: Settings, taxonomy: Taxonomy, days: int) -> str:
    try:
        async with Storage.from_settings(settings) as storage:
            end = storage.clock().date()
            return await gaps_markdown(storage, settings, taxonomy, end - dt.timedelta(days=days - 1), end)
    except (OSError, SQLAlchemyError) as exc:
        return f"\n_The database could not be read ({type(exc).__name__}): no gaps section._\n"


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
    cov.add_argument(
        "--days", type=int, default=90, help="gaps people met: the last this many days (default 90)"
    )
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
