"""Command line: ``python -m bot ask|chat|run|nlu|content|eval|tune|insights``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from .engine import InvalidQuestion, UnknownCity
from .language import native_name
from .render import render_plain
from .runtime import Services, ensure_model, load_content, rasa_project, training_examples, training_keys
from .settings import ConfigError, Settings, load_settings

__all__ = ["main"]


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        sys.exit(f"Configuration error: {exc}")


# --- ask -------------------------------------------------------------------------------------------


async def _ask_one(services: Services, text: str, city: str, lang: str | None) -> int:
    try:
        reply = await services.engine.ask(text, city, lang)
    except UnknownCity as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except InvalidQuestion as exc:
        print(exc.message, file=sys.stderr)
        return 2
    print(render_plain(services.engine, reply))
    return 0


def _jsonl_request(line: str) -> tuple[str, str, str | None]:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"not a JSON object: {exc.args[0]}") from exc
    if not isinstance(data, dict):
        raise ValueError('each line must be a JSON object like {"text": "...", "city": "prague"}')
    text, city, lang = data.get("text"), data.get("city"), data.get("lang")
    if not isinstance(text, str):
        raise ValueError('"text" is missing or not a string')
    if not isinstance(city, str) or not city:
        raise ValueError('"city" is missing or not a string')
    if lang is not None and not isinstance(lang, str):
        raise ValueError('"lang" must be a string')
    return text, city, lang


async def ask_jsonl(services: Services, lines: TextIO, out: TextIO) -> int:
    """Answer one JSON request per input line, one JSON record per output line, in order."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, lines.readline)
        if not line:
            return 0
        if not line.strip():
            continue
        record: dict[str, Any]
        try:
            text, city, lang = _jsonl_request(line)
            record = (await services.engine.ask(text, city, lang)).to_json()
        except (ValueError, UnknownCity) as exc:
            record = {"error": getattr(exc, "message", None) or str(exc)}
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()


async def _ask(args: argparse.Namespace) -> int:
    settings = _settings()
    if not args.jsonl and (not args.text or not args.city):
        print('usage: python -m bot ask --city CITY "question"   (or --jsonl)', file=sys.stderr)
        return 2
    async with Services(settings) as services:
        if args.jsonl:
            return await ask_jsonl(services, sys.stdin, sys.stdout)
        return await _ask_one(services, " ".join(args.text), args.city, args.lang)


# --- terminal chat ---------------------------------------------------------------------------------


async def _input(prompt: str) -> str | None:
    try:
        return await asyncio.to_thread(input, prompt)
    except EOFError:
        return None


async def _choose(title: str, options: Sequence[tuple[str, str]]) -> str | None:
    print(title)
    for i, (_, label) in enumerate(options, 1):
        print(f"  {i}. {label}")
    while True:
        answer = await _input("> ")
        if answer is None:
            return None
        answer = answer.strip().lower()
        for i, (value, label) in enumerate(options, 1):
            if answer in {str(i), value, label.lower()}:
                return value
        print(f"Please type a number from 1 to {len(options)}.")


async def chat(settings: Settings) -> int:
    """An interactive chat in the terminal on the same engine the Telegram bot uses."""
    async with Services(settings) as services:
        engine = services.engine
        cities = list(settings.cities)
        city = await _choose(
            "Which city? / Місто? / Город? / المدينة؟", [(c, engine.city_name(c, "en")) for c in cities]
        )
        if city is None:
            return 0
        lang = await _choose("Language?", [(code, native_name(code)) for code in settings.languages])
        if lang is None:
            return 0
        print(engine.conversation_text("greet", city, lang))
        print("(/city, /language, /quit)")
        while True:
            text = await _input("\n? ")
            if text is None or text.strip() in {"/quit", "/exit"}:
                return 0
            if text.strip() == "/city":
                city = await _choose("City:", [(c, engine.city_name(c, lang)) for c in cities]) or city
                continue
            if text.strip() == "/language":
                lang = await _choose("Language:", [(c, native_name(c)) for c in settings.languages]) or lang
                continue
            try:
                reply = await engine.ask(text, city, lang)
            except InvalidQuestion as exc:
                print(exc.message)
                continue
            lang = reply.language
            print()
            print(render_plain(engine, reply))
            if reply.followup is not None:
                print()
                print(render_plain(engine, reply.followup))


def _run(args: argparse.Namespace) -> Any:
    settings = _settings()
    if settings.telegram_token is None:
        print("No TELEGRAM_BOT_TOKEN set: starting the terminal chat.", file=sys.stderr)
        return chat(settings)
    from .telegram import run_bot  # imported late: the terminal chat does not need it

    return run_bot(settings)  # blocking; python-telegram-bot runs its own event loop


# --- nlu -------------------------------------------------------------------------------------------


async def _nlu(args: argparse.Namespace) -> int:
    settings = _settings()
    kb = load_content(settings)
    if args.action == "train":
        path = ensure_model(settings, kb)
        print(path)
        return 0
    if args.action == "validate":
        ensure_model(settings, kb)
        rasa_project(settings).validate()
        print("rasa data validate: OK")
        return 0
    if args.action == "detector-cv":
        project = rasa_project(settings)
        project.write_data(training_keys(kb), training_examples(kb))  # what the comparison reads
        script = project.runtime_dir / "detector_cv.py"
        command = [str(project.python), str(script), str(project.directory), *args.setting]
        done = await asyncio.to_thread(subprocess.run, command, env=project.env(), check=False)
        return done.returncode
    services = Services(settings, reuse_running=False)
    async with services:
        if services.server is None:
            print("NLU_URL is set: nothing to serve locally.", file=sys.stderr)
            return 2
        print(f"NLU server on {services.server.url} (Ctrl+C to stop)", file=sys.stderr)
        await services.serve_forever()
    return 0


# --- entry point -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="INTEGRA city information assistant")
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="answer one question, or JSON lines on stdin with --jsonl")
    ask.add_argument("text", nargs="*", help="the question")
    ask.add_argument("--city", help="city id, e.g. prague")
    ask.add_argument("--lang", help="the person's language so far (ISO 639-1), used as a prior")
    ask.add_argument("--jsonl", action="store_true", help='read {"text", "city", "lang"} lines on stdin')
    ask.set_defaults(func=_ask)

    run = sub.add_parser("run", help="run the Telegram bot (or the terminal chat without a token)")
    run.set_defaults(func=_run)
    chat_cmd = sub.add_parser("chat", help="chat in the terminal")
    chat_cmd.set_defaults(func=lambda args: chat(_settings()))

    nlu = sub.add_parser(
        "nlu",
        help="train, validate or serve the NLU model; compare emergency-detector settings (detector-cv)",
    )
    nlu.add_argument("action", choices=["train", "validate", "serve", "detector-cv"])
    nlu.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="C:HARD_NEGATIVE_WEIGHT:DENSE_WEIGHT",
        help="detector-cv: an emergency-detector setting to compare (repeatable; default: nlu/config.yml's)",
    )
    nlu.set_defaults(func=_nlu)

    from .tools import benchmark, content, evaluation, langid, loadtest, locales, tune
    from .tools.insights import add_parser as add_insights_parser

    content.add_parser(sub)
    evaluation.add_parser(sub)
    locales.add_parser(sub)
    benchmark.add_parser(sub)
    loadtest.add_parser(sub)
    langid.add_parser(sub)
    tune.add_parser(sub)
    add_insights_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # httpx logs request URLs at INFO; the Telegram Bot API URL contains the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = _parser().parse_args(argv)
    try:
        result = args.func(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last line of defence: a clear message, never a traceback
        logging.getLogger("bot").debug("fatal", exc_info=True)
        print(f"Error: {exc}", file=sys.stderr)
        return 1
