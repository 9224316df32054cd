"""``python -m bot langid``: how well each way of telling the language works, and what it costs.

For every setting of the language detector (``bot.language.MODELS``: lingua's high- or low-accuracy
models, loaded at start-up or on first use, or no lingua at all and the NLU model's own guess) it
reports, per language, how often the detector picks the language a question is written in, on the
held-out questions (``content/heldout/``) and the realistic set (``content/realistic/``), with the
NLU model's language guess (as the bot uses it) and without it (NLU server down) — next to the
detector's resident memory and time per message, each measured in a fresh process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from nlu import IntentScore, NLUClient

from ..language import MODEL_DECIDES_AT, MODELS, LanguageDetector
from ..runtime import Services, local_secret, var_dir
from ..settings import ROOT, Settings, load_settings
from .realistic import load_realistic

__all__ = ["add_parser", "measure"]

Sample = tuple[str, str, str]  # (set, language, text)

# Run in a fresh interpreter: the detector's memory and speed alone.
_COST = """
import json, resource, sys, time
from pathlib import Path
def rss():
    status = Path("/proc/self/status").read_text().splitlines()
    value = lambda k: int(next(l for l in status if l.startswith(k + ":")).split()[1]) / 1024
    return {k: value(k) for k in ("VmRSS", "VmHWM")}
from bot.language import LanguageDetector
before = rss()
started = time.process_time()
detector = LanguageDetector(sys.argv[1].split(","), models=sys.argv[2])
built = time.process_time() - started
texts = json.loads(sys.stdin.read())
started = time.process_time()
for text in texts:
    detector.detect(text)
per = (time.process_time() - started) / len(texts)
after = rss()
print(json.dumps({"rss_mib": after["VmRSS"] - before["VmRSS"], "peak_mib": after["VmHWM"],
                  "import_rss_mib": before["VmRSS"], "build_s": built, "ms_per_text": per * 1000}))
"""


def samples(services: Services) -> list[Sample]:
    settings = services.settings
    found: list[Sample] = [
        ("heldout", lang, text)
        for lang, keys in services.kb.heldout.items()
        for questions in keys.values()
        for text in questions
    ]
    realistic = load_realistic(settings.path(settings.content_dir) / "realistic", settings.languages)
    found += [("realistic", item.language, item.text) for item in realistic]
    return found


async def model_guesses(services: Services, texts: list[str]) -> dict[str, list[tuple[str, float]]]:
    """The NLU model's language ranking per text (cached in var/bench/ per model)."""
    settings = services.settings
    secret = settings.nlu.jwt_secret.get_secret_value() if settings.nlu.jwt_secret else None
    if not settings.nlu.url:
        secret = local_secret(settings)
    cache = var_dir(settings) / "bench" / "langid-guesses.json"
    cache.parent.mkdir(exist_ok=True)
    status = await services.nlu.status()
    model = str(status.get("model_file") or status.get("fingerprint") or "")
    stored: dict[str, Any] = json.loads(cache.read_text()) if cache.exists() else {}
    guesses: dict[str, list[tuple[str, float]]] = (
        stored.get("guesses", {}) if stored.get("model") == model else {}
    )
    missing = [text for text in dict.fromkeys(texts) if text not in guesses]
    semaphore = asyncio.Semaphore(2)
    # Its own client with a long timeout: a busy machine makes a parse slow, not wrong.
    async with NLUClient(str(services.nlu.base_url), secret, timeout=60) as client:

        async def one(text: str) -> None:
            async with semaphore:
                result = await client.classify(text)
            guesses[text] = [(score.key, score.confidence) for score in result.languages]

        for start in range(0, len(missing), 200):  # kept as it goes: a second run resumes
            await asyncio.gather(*(one(text) for text in missing[start : start + 200]))
            cache.write_text(json.dumps({"model": model, "guesses": guesses}))
            print(f"model guesses: {len(guesses)}", file=sys.stderr, flush=True)
    return guesses


def accuracy(
    settings: Settings,
    models: str,
    decides_at: float,
    data: list[Sample],
    guesses: dict[str, list[tuple[str, float]]],
) -> dict[str, Any]:
    """Share of texts whose language the detector picks, per set, with or without the model's guess,
    and language."""
    lang = settings.language
    detector = LanguageDetector(
        settings.languages,
        default=settings.default_language,
        min_letters_to_switch=lang.min_letters_to_switch,
        switch_ratio=lang.switch_ratio,
        models=models,
        model_decides_at=decides_at,
    )
    right: Counter[tuple[str, str, str]] = Counter()
    total: Counter[tuple[str, str, str]] = Counter()
    for subset, language, text in data:
        hint = tuple(IntentScore(k, c) for k, c in guesses.get(text, []))
        for mode, given in (("with model", hint), ("alone", ())):
            picked = detector.detect(text, None, given).language
            for key in ((subset, mode, language), (subset, mode, "all")):
                total[key] += 1
                right[key] += picked == language
    return {"|".join(key): right[key] / total[key] for key in total}


def cost(settings: Settings, models: str, texts: list[str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _COST, ",".join(settings.languages), models],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=True,
    )
    return dict(json.loads(done.stdout))


def variants(models: list[str]) -> list[tuple[str, float]]:
    """Each lingua setting with the two ways of combining: equal weights always (never sure: 2.0),
    and the model deciding when it is sure (the default)."""
    return [(m, at) for m in models for at in ((2.0,) if m == "none" else (2.0, MODEL_DECIDES_AT))]


def label(models: str, decides_at: float) -> str:
    if models == "none":
        return "no lingua: the model's guess alone"
    return f"{models}, equal weights" if decides_at > 1 else f"{models}, model decides at {decides_at:g}"


async def measure(services: Services, models: list[str]) -> dict[str, Any]:
    data = samples(services)
    guesses = await model_guesses(services, [text for _, _, text in data])
    texts = [text for _, _, text in data][::7]
    report: dict[str, Any] = {"texts": len(data), "variants": {}}
    costs = {m: cost(services.settings, m, texts) for m in models}
    for m, decides_at in variants(models):
        started = time.perf_counter()
        report["variants"][label(m, decides_at)] = {
            "accuracy": accuracy(services.settings, m, decides_at, data, guesses),
            "cost": costs[m],
        }
        print(f"{label(m, decides_at)}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return report


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}"


def markdown(report: dict[str, Any], languages: list[str]) -> str:
    variants = report["variants"]
    lines = [
        f"{report['texts']} questions (held-out and realistic sets), language told without a prior.",
        "",
        "| detector | memory MiB | ms per message | held-out, with model | realistic, with model "
        "| realistic, alone | worst language (realistic, with model) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for models, found in variants.items():
        acc, c = found["accuracy"], found["cost"]
        worst = min(languages, key=lambda lang: acc[f"realistic|with model|{lang}"])
        lines.append(
            f"| `{models}` | {c['rss_mib']:.0f} | {c['ms_per_text']:.2f} "
            f"| {_pct(acc['heldout|with model|all'])} "
            f"| {_pct(acc['realistic|with model|all'])} | {_pct(acc['realistic|alone|all'])} "
            f"| {worst} {_pct(acc[f'realistic|with model|{worst}'])} |"
        )
    lines += [
        "",
        "Per language, realistic set with the model's guess (held-out in brackets):",
        "",
        "| detector | " + " | ".join(languages) + " |",
        "|---|" + "---:|" * len(languages),
    ]
    for models, found in variants.items():
        acc = found["accuracy"]
        cells = [
            f"{_pct(acc[f'realistic|with model|{lang}'])} ({_pct(acc[f'heldout|with model|{lang}'])})"
            for lang in languages
        ]
        lines.append(f"| `{models}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


async def _langid(args: argparse.Namespace) -> int:
    settings = load_settings()
    async with Services(settings) as services:
        report = await measure(services, args.models or list(MODELS))
    text = markdown(report, list(settings.languages))
    print(text)
    (var_dir(settings) / "langid.json").write_text(json.dumps(report, indent=2))
    if args.out:
        await asyncio.to_thread(Path(args.out).write_text, text, encoding="utf-8")
    return 0


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "langid", help="language identification: accuracy per detector setting and its cost"
    )
    parser.add_argument("--models", action="append", choices=MODELS, help="only this setting (repeatable)")
    parser.add_argument("--out", help="also write the Markdown report here")
    parser.set_defaults(func=_langid)
