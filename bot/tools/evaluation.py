"""``python -m bot eval``: accuracy of the NLU on the held-out questions, per language."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine import Reply
from ..runtime import Services
from ..settings import load_settings
from .compare import compare
from .compare import markdown as compare_markdown
from .realistic import Item, RealisticReport, cities_for, load_realistic

__all__ = ["EvalReport", "add_parser", "evaluate"]


@dataclass
class EvalReport:
    per_language: dict[str, Counter[str]] = field(default_factory=dict)
    confusions: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, lang: str, expected: str, predicted: str, confident: bool) -> None:
        counts = self.per_language.setdefault(lang, Counter())
        counts["total"] += 1
        counts["correct"] += predicted == expected
        counts["answered_correctly"] += predicted == expected and confident
        counts["answered_wrongly"] += predicted != expected and confident
        if predicted != expected:
            self.confusions[(expected, predicted)] += 1

    def accuracy(self, lang: str) -> float:
        counts = self.per_language[lang]
        return counts["correct"] / counts["total"] if counts["total"] else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "languages": {
                lang: {**counts, "accuracy": round(self.accuracy(lang), 4)}
                for lang, counts in self.per_language.items()
            },
            "confusions": [
                {"expected": e, "predicted": p, "count": n} for (e, p), n in self.confusions.most_common(20)
            ],
        }

    def markdown(self) -> str:
        lines = [
            "| language | questions | top-1 accuracy | answered right | answered wrong |",
            "|---|---:|---:|---:|---:|",
        ]
        total: Counter[str] = Counter()
        for lang, counts in self.per_language.items():
            total.update(counts)
            n = counts["total"]
            lines.append(
                f"| {lang} | {n} | {self.accuracy(lang):.1%} | {counts['answered_correctly'] / n:.1%} "
                f"| {counts['answered_wrongly'] / n:.1%} |"
            )
        if total["total"]:
            n = total["total"]
            lines.append(
                f"| **all** | {n} | {total['correct'] / n:.1%} | {total['answered_correctly'] / n:.1%} "
                f"| {total['answered_wrongly'] / n:.1%} |"
            )
        lines += ["", "Most confused (expected → predicted):", ""]
        lines += [f"- {e} → {p}: {n}" for (e, p), n in self.confusions.most_common(10)]
        return "\n".join(lines)


async def evaluate(
    services: Services, languages: list[str] | None = None, concurrency: int = 4
) -> EvalReport:
    """Classify every held-out question and compare with its key."""
    report = EvalReport()
    threshold = services.settings.nlu.answer_threshold
    limit = asyncio.Semaphore(concurrency)
    items = [
        (lang, key, question)
        for lang, keys in services.kb.heldout.items()
        if languages is None or lang in languages
        for key, questions in keys.items()
        for question in questions
    ]

    async def one(question: str) -> tuple[str, float]:
        async with limit:
            result = await services.nlu.classify(question)
            return result.key, result.confidence

    results = await asyncio.gather(*(one(q) for _, _, q in items))
    for (lang, key, _), (predicted, confidence) in zip(items, results, strict=True):
        report.add(lang, key, predicted, confidence >= threshold)
    return report


async def evaluate_realistic(
    services: Services, languages: list[str] | None = None, concurrency: int = 4, *, model: bool = True
) -> RealisticReport:
    """Ask every realistic question as a new person's first message and count what they met;
    ``model=False``: as they would while the NLU server is down (``Engine.without_model``)."""
    settings = services.settings
    items = load_realistic(settings.path(settings.content_dir) / "realistic", languages or settings.languages)
    known = set(services.kb.taxonomy.all_keys) & {
        key for lang in services.kb.texts.values() for key, text in lang.items() if text.examples
    }
    report = RealisticReport()
    limit = asyncio.Semaphore(concurrency)

    async def one(item: Item, city: str) -> Reply:
        if not model:
            return services.engine.without_model(item.text, city, None)
        async with limit:
            return await services.engine.ask(item.text, city, None)

    cities = cities_for(items, settings.cities)
    replies = await asyncio.gather(*(one(item, city) for item, city in zip(items, cities, strict=True)))
    for item, reply in zip(items, replies, strict=True):
        report.add(item, reply, known)
    return report


async def _eval(args: argparse.Namespace) -> int:
    async with Services(load_settings()) as services:
        report = await evaluate(services, args.lang or None)
        realistic = await evaluate_realistic(services, args.lang or None)
        words = await evaluate_realistic(services, args.lang or None, model=False)
    print("## Held-out questions (content/heldout/)\n")
    print(report.markdown())
    print("\n## Realistic questions (content/realistic/), as a new person's first message\n")
    print(realistic.markdown())
    failed = realistic.goals_failed()
    print("\nGoals missed: " + ("; ".join(failed) if failed else "none"))
    print("\n## The same questions while the NLU server is down\n")
    print(
        "Danger signals and the nearest examples by their words (bot/lexical.py). Nothing is answered "
        "without the model: top-3 is the right topic among the ones offered; emergency recall and "
        "false alarms are what counts.\n"
    )
    print(words.markdown())
    if args.compare:
        async with Services(load_settings()) as services:
            results = await compare(services)
        print("\n## Pipelines compared on the same questions\n")
        print(compare_markdown(results))
    if args.json:
        data = {
            "heldout": report.as_dict(),
            "realistic": realistic.as_dict(),
            "misses": realistic.misses,
            "without_model": words.as_dict(),
        }
        text = json.dumps(data, indent=2, ensure_ascii=False)
        await asyncio.to_thread(Path(args.json).write_text, text)
        print(f"\n(written to {args.json}, with every miss of the realistic set)", file=sys.stderr)
    worst = min((report.accuracy(lang) for lang in report.per_language), default=0.0)
    return 0 if worst >= args.min_accuracy else 1


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("eval", help="accuracy per language on the held-out questions")
    parser.add_argument("--lang", action="append", help="only this language (repeatable)")
    parser.add_argument("--json", help="also write the report as JSON to this file")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also train and compare the other NLU pipelines in nlu/variants/ (slow the first time)",
    )
    parser.add_argument(
        "--min-accuracy", type=float, default=0.0, help="exit 1 if any language is below this (0-1)"
    )
    parser.set_defaults(func=_eval)
