"""``python -m bot bench``: latency and memory of the answering engine, as a report with numbers."""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from nlu import make_token, normalise

from ..runtime import Services, local_secret, rasa_project, var_dir
from ..settings import load_settings

__all__ = ["add_parser", "percentile", "rss_mib"]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * q / 100
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children, in MiB (Linux)."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            pids += [int(c) for c in children]
        except (OSError, StopIteration):
            continue
    return total / 1024


async def run(services: Services, rounds: int) -> dict[str, Any]:
    questions = [
        (lang, q) for lang, keys in sorted(services.kb.heldout.items()) for qs in keys.values() for q in qs
    ]
    questions = (questions * (rounds // max(len(questions), 1) + 1))[:rounds]
    engine, city = services.engine, services.settings.cities[0]
    secret = local_secret(services.settings) if not services.settings.nlu.url else None
    base_url = services.nlu.base_url  # the same server, asked with bare HTTP for comparison

    for lang, text in questions[:20]:  # warm-up
        await engine.ask(text, city, lang)
    ask_ms = []
    for lang, text in questions:
        started = time.perf_counter()
        await engine.ask(text, city, lang)
        ask_ms.append((time.perf_counter() - started) * 1000)

    # The path a person meets while the NLU server is down: danger signals, nearest examples by words.
    words_ms = []
    for lang, text in questions:
        started = time.perf_counter()
        engine.without_model(text, city, lang)
        words_ms.append((time.perf_counter() - started) * 1000)

    headers = {"Authorization": f"Bearer {make_token(secret)}"} if secret else {}
    bare_ms = []
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10) as client:
        for _, text in questions:
            started = time.perf_counter()
            response = await client.post("/model/parse", json={"text": normalise(text)})
            response.raise_for_status()
            bare_ms.append((time.perf_counter() - started) * 1000)

    model = rasa_project(services.settings).model_path()
    training = model.with_suffix("").with_suffix(".json")
    report: dict[str, Any] = {
        "requests": len(questions),
        "ask_ms": {
            "p50": percentile(ask_ms, 50),
            "p95": percentile(ask_ms, 95),
            "mean": statistics.mean(ask_ms),
        },
        "bare_parse_ms": {
            "p50": percentile(bare_ms, 50),
            "p95": percentile(bare_ms, 95),
            "mean": statistics.mean(bare_ms),
        },
        "without_model_ms": {
            "p50": percentile(words_ms, 50),
            "p95": percentile(words_ms, 95),
            "mean": statistics.mean(words_ms),
        },
        "nlu_server_rss_mib": rss_mib(services.server.pid)
        if services.server and services.server.pid
        else None,
        "bot_max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "model_archive_mib": model.stat().st_size / 2**20 if model.exists() else None,
        "training": json.loads(training.read_text()) if training.exists() else None,
    }
    return report


def markdown(report: dict[str, Any]) -> str:
    a, b = report["ask_ms"], report["bare_parse_ms"]
    lines = [
        "# Engine benchmark",
        "",
        f"{report['requests']} held-out questions, sequential, one city.",
        "",
        "| path | p50 ms | p95 ms | mean ms |",
        "|---|---:|---:|---:|",
        f"| `engine.ask` (language + NLU client + knowledge base) | {a['p50']:.1f} "
        f"| {a['p95']:.1f} | {a['mean']:.1f} |",
        f"| bare `POST /model/parse` (httpx) | {b['p50']:.1f} | {b['p95']:.1f} | {b['mean']:.1f} |",
    ]
    if "without_model_ms" in report:
        w = report["without_model_ms"]
        lines.append(
            f"| `engine.without_model` (NLU server down: signals, nearest examples) | {w['p50']:.1f} "
            f"| {w['p95']:.1f} | {w['mean']:.1f} |"
        )
    lines.append("")
    if report["nlu_server_rss_mib"] is not None:
        lines.append(f"- NLU server resident memory: {report['nlu_server_rss_mib']:.0f} MiB")
    lines.append(f"- Bot process peak resident memory: {report['bot_max_rss_mib']:.0f} MiB")
    if report["model_archive_mib"] is not None:
        lines.append(f"- Model archive: {report['model_archive_mib']:.1f} MiB")
    if report["training"]:
        t = report["training"]
        lines.append(f"- Last training: {t['seconds']:.0f} s for {t['examples']} examples")
    return "\n".join(lines) + "\n"


async def _bench(args: argparse.Namespace) -> int:
    from . import loadtest

    settings = load_settings()
    async with Services(settings, reuse_running=False) as services:
        report = await run(services, args.requests)
        text = markdown(report)
        print(text, flush=True)
        if args.load:  # the real bot process under load, with the same NLU server
            load = await loadtest.run_load(services, args.users, args.delays, args.seconds, args.grace)
            (var_dir(settings) / "loadtest.json").write_text(json.dumps(load, indent=2))
            text = loadtest.markdown(load) + "\n" + text.replace("# Engine benchmark", "Engine alone:")
            print(loadtest.markdown(load))
    out = var_dir(settings) / "bench.json"
    out.write_text(json.dumps(report, indent=2))
    (var_dir(settings) / "bench.md").write_text(text)
    if args.write:
        loadtest.write_section(Path(args.write), text)
    print(f"(written to {out} and bench.md)", file=sys.stderr)
    return 0


def add_parser(sub: Any) -> None:
    from .loadtest import add_load_arguments

    parser = sub.add_parser("bench", help="latency (p50/p95) and memory of the engine (--load: of the bot)")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--load", action="store_true", help="also the real bot under load (loadtest)")
    add_load_arguments(parser)
    parser.set_defaults(func=_bench)
