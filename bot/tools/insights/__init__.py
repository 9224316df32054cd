"""``python -m bot insights``: a city's integration-audit report (HTML and CSV) from the database, with
every figure resting on fewer than k people hidden."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from ...knowledge import Taxonomy, load_taxonomy
from ...settings import Settings, load_settings
from ...storage import Storage
from .figures import Insights, build
from .report import write_report

__all__ = ["add_parser", "collect", "insights_main"]


def _partner_namer(settings: Settings, city: str) -> Any:
    def name(partner_id: str | None) -> str:
        if partner_id is None:
            # Cases from before partners existed: the city's default partner.
            defaults = settings.partners_in(city)
            partner_id = defaults[0].id if defaults else city
        found = settings.find_partner(partner_id)
        return (found[1].name or found[1].id) if found else partner_id

    return name


async def collect(
    storage: Storage,
    settings: Settings,
    taxonomy: Taxonomy,
    city: str,
    start: dt.date,
    end: dt.date,
    k: int = 5,
) -> Insights:
    """The report's figures for ``city`` from ``start`` to ``end`` (both days included, UTC)."""
    since = dt.datetime.combine(start, dt.time(), dt.UTC)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
    return build(
        city,
        start,
        end,
        usage=await storage.usage.rows(city, since, until),
        handoffs=await storage.usage.handoffs(city, since, until),
        referrals=await storage.usage.referrals(city, since, until),
        topic_of=lambda key: None if key is None else taxonomy.topic_of(key),
        topic_order=list(taxonomy.topics),
        partner_name=_partner_namer(settings, city),
        k=k,
    )


async def _report(settings: Settings, args: argparse.Namespace) -> int:
    from ...runtime import var_dir

    taxonomy = load_taxonomy(settings.path(settings.content_dir))
    folder = Path(args.out or var_dir(settings) / "insights" / f"{args.city}-{args.start}-{args.end}")
    async with Storage.from_settings(settings) as storage:
        insights = await collect(storage, settings, taxonomy, args.city, args.start, args.end, args.k)
    for path in write_report(insights, folder):
        print(path)
    return 0


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a date: write it as YYYY-MM-DD") from None


def insights_main(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.city not in settings.cities:
        print(
            f"Error: unknown city '{args.city}'; choose one of: {', '.join(settings.cities)}", file=sys.stderr
        )
        return 2
    if args.end < args.start:
        print("Error: --to is before --from", file=sys.stderr)
        return 2
    if args.k < 2:
        print("Error: --k must be at least 2", file=sys.stderr)
        return 2
    return asyncio.run(_report(settings, args))


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "insights",
        help="a city's report for its integration audit (HTML and CSV; small figures hidden)",
        description="Writes index.html (charts included) and CSV files: questions per topic and week, "
        "languages, what the content could not answer, 'did you mean' and thumbs-down rates, handoffs "
        "per partner and time to the first staff reply, referrals, ratings. Any figure resting on fewer "
        "than k people is hidden.",
    )
    parser.add_argument("--city", required=True)
    parser.add_argument("--from", dest="start", required=True, type=_date, help="first day (YYYY-MM-DD)")
    parser.add_argument("--to", dest="end", required=True, type=_date, help="last day, included (YYYY-MM-DD)")
    parser.add_argument("--out", help="folder to write to (default: var/insights/CITY-FROM-TO)")
    parser.add_argument("--k", type=int, default=5, help="hide figures resting on fewer people (default 5)")
    parser.set_defaults(func=insights_main)
