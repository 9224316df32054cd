"""``python -m bot loadtest``: the real bot process under load, through the Bot-API test server.

The load generator hosts the project's Bot-API test server (``tests.botapi.FakeBotAPI``, imported
from the repository: this tool runs from a checkout, as ``make bench`` does) with a network delay per
call, starts ``python -m bot run`` against it (its own SQLite database in ``var/bench/``, the running
NLU server), and lets 1, 10, 50 and 200 simulated people ask realistic questions in their languages,
each the next one as soon as the previous reply arrived, for a bounded time per level. It measures
updates/s, update → reply latency (from the moment the update exists at "Telegram" to the moment the
bot's first reply message is there), the bot's CPU per update (``/proc/<pid>/stat``) and the resident
memory of bot and NLU server.

With ``--rate``, questions instead arrive at a fixed average rate (exponential gaps, "open loop"), each
from one of the people not already waiting for a reply: what people see when the bot receives that
many questions a second. In the closed loop, N people who ask again the instant a reply arrives wait
N / throughput on average, whatever the bot does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml

from nlu import cpu_seconds, make_token, normalise

from ..runtime import Services, local_secret, var_dir
from ..settings import ROOT, Settings, load_settings
from .benchmark import percentile, rss_mib
from .realistic import load_realistic

if TYPE_CHECKING:
    from tests.botapi import FakeBotAPI

__all__ = ["add_parser", "run_load"]

TOKEN = "424242:load-test-token"
FIRST_USER = 610_000_001
BEGIN, END = "<!-- loadtest: begin -->", "<!-- loadtest: end -->"
# Questions whose reply opens a case or shows emergency numbers first (several messages) are left out:
# one question, one reply keeps the latency exact.
SKIPPED_KEYS = ("safety.",)


def peak_rss_mib(pid: int) -> float:
    """The peak resident memory of one process (VmHWM), in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) / 1024


def questions_by_language(settings: Settings) -> dict[str, list[str]]:
    items = load_realistic(settings.path(settings.content_dir) / "realistic", settings.languages)
    found: dict[str, list[str]] = {}
    for item in items:
        if not item.key.startswith(SKIPPED_KEYS):
            found.setdefault(item.language, []).append(item.text)
    return found


@dataclass
class Level:
    """What one level (a number of people at one delay) measured."""

    users: int
    delay_ms: int
    seconds: float
    rate: float | None = None  # questions/s arriving (open loop); None: each person asks on a reply
    sent: int = 0
    skipped: int = 0  # open loop: arrivals when every person was already waiting
    answered_in_time: int = 0
    lost: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    bot_cpu_s: float = 0.0
    nlu_cpu_s: float | None = None
    loadgen_cpu_s: float = 0.0
    bot_rss_mib: float = 0.0
    bot_peak_rss_mib: float = 0.0
    nlu_rss_mib: float | None = None
    messages: int = 0
    load_average: float = 0.0  # of the machine, over the last minute, as the level ended

    def as_dict(self) -> dict[str, Any]:
        answered = len(self.latencies)

        def per(seconds: float | None) -> float | None:
            return seconds / answered * 1000 if answered and seconds is not None else None

        return {
            "users": self.users,
            "delay_ms": self.delay_ms,
            "seconds": self.seconds,
            "rate": self.rate,
            "skipped": self.skipped,
            "questions": self.sent,
            "answered": answered,
            "lost": self.lost,
            "errors": self.errors,
            "updates_per_s": self.answered_in_time / self.seconds,
            "p50_ms": percentile(self.latencies, 50) * 1000,
            "p95_ms": percentile(self.latencies, 95) * 1000,
            "p99_ms": percentile(self.latencies, 99) * 1000,
            "bot_cpu_ms_per_update": per(self.bot_cpu_s),
            "nlu_cpu_ms_per_update": per(self.nlu_cpu_s),
            "loadgen_cpu_ms_per_update": per(self.loadgen_cpu_s),
            "bot_rss_mib": self.bot_rss_mib,
            "bot_peak_rss_mib": self.bot_peak_rss_mib,
            "nlu_rss_mib": self.nlu_rss_mib,
            "messages_per_answer": self.messages / answered if answered else None,
            "load_average": self.load_average,
        }


def _observed_api(delay: float) -> FakeBotAPI:
    """The test server, telling waiting people the moment the bot's message to them exists."""
    try:
        from tests.botapi import FakeBotAPI
        from tests.botapi.methods import JSON, Params, bot_api
    except ImportError as exc:  # pragma: no cover - only outside a checkout
        raise SystemExit(
            "the load test needs the repository's tests/botapi (run it from the checkout)"
        ) from exc

    class ObservedAPI(FakeBotAPI):
        def __init__(self) -> None:
            super().__init__(TOKEN, delay=delay)
            self.waiting: dict[int, asyncio.Future[float]] = {}
            self.messages = 0

        @bot_api
        def sendMessage(self, p: Params) -> JSON:
            result = super().sendMessage(p)
            self.messages += 1
            future = self.waiting.pop(result["chat"]["id"], None)
            if future is not None and not future.done():
                future.set_result(time.perf_counter())
            return result

    return ObservedAPI()


class BotUnderTest:
    """``python -m bot run`` against the test server, its own database and the given NLU server."""

    def __init__(
        self,
        api: FakeBotAPI,
        directory: Path,
        nlu_url: str,
        nlu_secret: str | None,
        checkout: Path = ROOT,
        profile: Path | None = None,
    ) -> None:
        self.api = api
        # cProfile writes its statistics when the bot exits (SIGTERM ends it cleanly).
        self.command = [sys.executable, *(("-m", "cProfile", "-o", str(profile)) if profile else ()), "-m"]
        self.checkout = checkout
        self.log = directory / f"bot-{int(api.delay * 1000)}ms.log"
        self.database = directory / "loadtest.db"
        self.config = directory / "config.yml"
        shipped = yaml.safe_load((checkout / "config.yml").read_text(encoding="utf-8"))
        # No staff groups: a reply never turns into a handoff that waits for a caseworker.
        shipped.update(root=str(checkout), handoff={**shipped.get("handoff", {}), "groups": {}})
        self.config.write_text(yaml.safe_dump(shipped, allow_unicode=True), encoding="utf-8")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("NLU_", "TELEGRAM_"))}
        self.env.update(
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_BASE_URL=api.base_url,
            DATABASE_URL=f"sqlite+aiosqlite:///{self.database}",
            INTEGRA_CONFIG=str(self.config),
            NLU_URL=nlu_url,
            PYTHONUNBUFFERED="1",
        )
        if nlu_secret:
            self.env["NLU_JWT_SECRET"] = nlu_secret
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def errors(self) -> int:
        """Handler failures the bot logged so far (their count only: no texts are logged)."""
        return len(re.findall(r"handler failed", self.log.read_text(errors="replace")))

    def _launch(self) -> subprocess.Popen[bytes]:
        with self.log.open("wb") as log:
            return subprocess.Popen(
                [*self.command, "bot", "run"],
                cwd=self.checkout,  # ``-m bot`` imports the checkout's code
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def start(self, timeout: float = 180.0) -> None:  # noqa: ASYNC109 - a bounded wait
        self.process = self._launch()
        try:
            await self.api.wait_for_poll(timeout)  # its first long poll: it takes updates
        except TimeoutError:
            await self.stop()
            raise SystemExit(f"the bot did not start within {timeout:.0f} s; see {self.log}") from None

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after 30 s (the test server keeps answering meanwhile)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        for _ in range(300):
            if process.poll() is not None:
                return
            await asyncio.sleep(0.1)
        process.kill()
        process.wait(timeout=10)


# Run by the checkout's own Python code, so its own migrations make the database.
_SEED = """
import asyncio, datetime, json, sys
from bot.storage import Storage

async def seed(url, people):
    async with Storage(url) as storage:
        for chat_id, language, city in people:
            now = datetime.datetime.now(datetime.UTC)
            await storage.save_person(chat_id, language=language, city=city, consent_at=now)

asyncio.run(seed(sys.argv[1], json.loads(sys.stdin.read())))
"""


async def _seed(bot: BotUnderTest, settings: Settings, users: int) -> list[tuple[int, str]]:
    """People who agreed and chose a city and language, as after onboarding."""
    people = [(FIRST_USER + i, settings.languages[i % len(settings.languages)]) for i in range(users)]
    rows = [
        (chat_id, lang, settings.cities[n % len(settings.cities)]) for n, (chat_id, lang) in enumerate(people)
    ]
    bot.database.unlink(missing_ok=True)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _SEED, bot.env["DATABASE_URL"], cwd=bot.checkout, stdin=subprocess.PIPE
    )
    await process.communicate(json.dumps(rows).encode())
    if process.returncode:
        raise SystemExit("could not prepare the load test's database")
    return people


async def _person(
    api: Any, chat_id: int, lang: str, questions: Iterator[str], level: Level, until: float, grace: float
) -> None:
    user = _user(api, chat_id, lang)
    while time.perf_counter() < until:
        if not await _ask_once(api, user, chat_id, next(questions), level, until, grace):
            return


def _user(api: Any, chat_id: int, lang: str) -> Any:
    return api.user(chat_id, f"Person {chat_id - FIRST_USER + 1}", language_code=lang)


async def _ask_once(
    api: Any, user: Any, chat_id: int, question: str, level: Level, until: float, grace: float
) -> bool:
    """Ask one question and wait for its reply; False if none came (counted as lost)."""
    future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    api.waiting[chat_id] = future
    sent = time.perf_counter()
    await user.send(question)
    level.sent += 1
    try:
        replied = await asyncio.wait_for(future, max(until + grace - sent, 0.1))
    except TimeoutError:
        level.lost += 1
        return False
    level.latencies.append(replied - sent)
    if replied <= until:
        level.answered_in_time += 1
    return True


async def _arrivals(
    api: Any,
    people: list[tuple[int, str]],
    streams: Mapping[int, Iterator[str]],
    level: Level,
    until: float,
    grace: float,
    rng: random.Random,
) -> None:
    """Open loop: questions arrive at ``level.rate`` per second on average, each from a person who
    is not waiting for a reply (an arrival finding everyone waiting is counted as skipped)."""
    assert level.rate is not None
    users = {chat_id: _user(api, chat_id, lang) for chat_id, lang in people}
    busy: set[int] = set()
    tasks: list[asyncio.Task[None]] = []

    async def ask(chat_id: int) -> None:
        try:
            await _ask_once(api, users[chat_id], chat_id, next(streams[chat_id]), level, until, grace)
        finally:
            busy.discard(chat_id)

    next_at = time.perf_counter()
    while True:
        next_at += rng.expovariate(level.rate)
        if next_at >= until:
            break
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        idle = [chat_id for chat_id, _lang in people if chat_id not in busy]
        if not idle:
            level.skipped += 1
            continue
        chat_id = rng.choice(idle)
        busy.add(chat_id)
        tasks.append(asyncio.create_task(ask(chat_id)))
    await asyncio.gather(*tasks)


async def _level(
    api: Any,
    bot: BotUnderTest,
    nlu_pid: Callable[[], int | None],
    people: list[tuple[int, str]],
    questions: dict[str, list[str]],
    level: Level,
    grace: float,
) -> Level:
    rng = random.Random(level.users * 1000 + level.delay_ms)
    streams = {}
    for chat_id, lang in people[: level.users]:
        mine = list(questions[lang])
        rng.shuffle(mine)
        streams[chat_id] = itertools.cycle(mine)
    errors, messages = bot.errors(), api.messages
    # The NLU server's pid is read again at the end: its supervisor may have restarted it meanwhile.
    nlu_before = nlu_pid()
    bot_cpu, nlu_cpu = cpu_seconds(bot.pid), cpu_seconds(nlu_before)
    own_cpu = time.process_time()
    until = time.perf_counter() + level.seconds
    if level.rate is not None:
        await _arrivals(api, people[: level.users], streams, level, until, grace, rng)
    else:
        await asyncio.gather(
            *(
                _person(api, chat_id, lang, streams[chat_id], level, until, grace)
                for chat_id, lang in people[: level.users]
            )
        )
    level.bot_cpu_s = cpu_seconds(bot.pid) - bot_cpu
    nlu_after = nlu_pid()
    if nlu_after is not None and nlu_after == nlu_before:  # else restarted: its CPU is not comparable
        level.nlu_cpu_s = cpu_seconds(nlu_after) - nlu_cpu
    level.loadgen_cpu_s = time.process_time() - own_cpu
    level.bot_rss_mib, level.bot_peak_rss_mib = rss_mib(bot.pid), peak_rss_mib(bot.pid)
    level.nlu_rss_mib = rss_mib(nlu_after) if nlu_after else None
    level.errors = bot.errors() - errors
    level.messages = api.messages - messages
    level.load_average = os.getloadavg()[0]
    api.waiting.clear()
    return level


async def bare_parse(url: str, secret: str | None, texts: list[str]) -> dict[str, float]:
    """Latency of ``POST /model/parse`` alone, sequential, in ms."""
    headers = {"Authorization": f"Bearer {make_token(secret)}"} if secret else {}
    timings = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10, trust_env=False) as client:
        for text in texts:
            started = time.perf_counter()
            (await client.post("/model/parse", json={"text": normalise(text)})).raise_for_status()
            timings.append((time.perf_counter() - started) * 1000)
    return {"p50": percentile(timings, 50), "p95": percentile(timings, 95)}


def _nlu_pid(services: Services, given: int | None) -> Callable[[], int | None]:
    """How to find the NLU server's process now (an embedded one is restarted under a new pid)."""
    if given:
        return lambda: given
    server = services.server
    if server is not None:
        return lambda: server.pid
    with contextlib.suppress(OSError, ValueError, KeyError):
        state = json.loads((var_dir(services.settings) / "nlu-server.json").read_text())
        if str(state["url"]).rstrip("/") == str(services.nlu.base_url).rstrip("/"):
            pid = int(state["pid"])
            return lambda: pid
    return lambda: None


async def run_load(
    services: Services,
    users: list[int],
    delays_ms: list[int],
    seconds: float,
    grace: float = 60.0,
    nlu_pid: int | None = None,
    checkout: Path = ROOT,
    profile: Path | None = None,
    rates: list[float] | None = None,
) -> dict[str, Any]:
    """Every level at every delay; one bot process per delay. With ``rates``, each level of people
    once per arrival rate (open loop) instead of each asking again on a reply."""
    settings = services.settings
    secret = None if settings.nlu.url else local_secret(settings)
    if settings.nlu.url and settings.nlu.jwt_secret:
        secret = settings.nlu.jwt_secret.get_secret_value()
    url = str(services.nlu.base_url)
    find_nlu = _nlu_pid(services, nlu_pid)
    questions = questions_by_language(settings)
    sample = [q for qs in questions.values() for q in qs[:10]]
    await bare_parse(url, secret, sample[:20])  # warm-up
    report: dict[str, Any] = {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "checkout": str(checkout),
        "bare_parse_ms": await bare_parse(url, secret, sample),
        "levels": [],
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    directory = var_dir(settings) / "bench"
    directory.mkdir(exist_ok=True)
    for delay in delays_ms:
        async with _observed_api(delay / 1000) as api:
            bot = BotUnderTest(api, directory, url, secret, checkout, profile)
            people = await _seed(bot, settings, max(users))
            await bot.start()
            try:
                arrival_rates: list[float | None] = list(rates) if rates else [None]
                for count, rate in itertools.product(users, arrival_rates):
                    level = await _level(
                        api, bot, find_nlu, people, questions, Level(count, delay, seconds, rate), grace
                    )
                    row = level.as_dict()
                    report["levels"].append(row)
                    print(_row(row), file=sys.stderr, flush=True)
            finally:
                await bot.stop()
    report["loadgen_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _row(r: dict[str, Any]) -> str:
    rate = r.get("rate")
    arriving = "" if rate is None else f"{rate:g}/s arriving ({r.get('skipped', 0)} skipped) | "
    return (
        f"| {r['users']} | {r['delay_ms']} ms | {arriving}{r['updates_per_s']:.1f} | {_ms(r['p50_ms'])} "
        f"| {_ms(r['p95_ms'])} | {_ms(r['p99_ms'])} | {r['answered']} | {r['lost']} | {r['errors']} "
        f"| {_ms(r['bot_cpu_ms_per_update'])} | {_ms(r['nlu_cpu_ms_per_update'])} "
        f"| {r['bot_rss_mib']:.0f} | {_mib(r['nlu_rss_mib'])} | {r.get('load_average', 0):.1f} |"
    )


def _mib(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def markdown(report: dict[str, Any]) -> str:
    bare = report["bare_parse_ms"]
    lines = [
        f"Measured {report['started']} on {report['machine']['cores']} cores "
        f"(Python {report['machine']['python']}); bare `POST /model/parse`: p50 {bare['p50']:.1f} ms, "
        f"p95 {bare['p95']:.1f} ms (sequential).",
        "",
    ]
    for delay in sorted({r["delay_ms"] for r in report["levels"]}):
        rows = [r for r in report["levels"] if r["delay_ms"] == delay]
        open_loop = any(r.get("rate") is not None for r in rows)
        lines += [
            f"Bot API delay {delay} ms per call"
            + (", questions arriving at a fixed rate (open loop):" if open_loop else ":"),
            "",
            "| people | delay | "
            + ("questions | " if open_loop else "")
            + "updates/s | p50 ms | p95 ms | p99 ms | answered | lost | errors "
            "| bot CPU ms/update | NLU CPU ms/update | bot RSS MiB | NLU RSS MiB | machine load |",
            "|---:|---:|"
            + ("---:|" if open_loop else "")
            + "---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *(_row(r) for r in rows),
            "",
        ]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    """Replace the generated part of ``path`` (between the loadtest markers), or append it."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{BEGIN}\n{text.rstrip()}\n{END}"
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + block + old[old.index(END) + len(END) :]
    else:
        new = old.rstrip() + ("\n\n" if old else "") + block + "\n"
    path.write_text(new, encoding="utf-8")


async def _loadtest(args: argparse.Namespace) -> int:
    settings = load_settings()
    async with Services(settings) as services:
        report = await run_load(
            services,
            args.users,
            args.delays,
            args.seconds,
            args.grace,
            args.nlu_pid,
            args.checkout,
            args.profile,
            args.rate,
        )
    text = markdown(report)
    print(text)
    (var_dir(settings) / "loadtest.json").write_text(json.dumps(report, indent=2))
    if args.write:
        write_section(Path(args.write), text)
    return 0


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, nargs="+", default=[1, 10, 50, 200])
    parser.add_argument("--delays", type=int, nargs="+", default=[0, 80], help="ms per Bot API call")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each level sends questions")
    parser.add_argument("--grace", type=float, default=60.0, help="how long to wait for the last replies")
    parser.add_argument("--write", help="replace the generated section of this Markdown file")


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("loadtest", help="the real bot under 1-200 simulated people (updates/s, latency)")
    add_load_arguments(parser)
    parser.add_argument(
        "--checkout", type=Path, default=ROOT, help="run the bot from this source tree (e.g. an older commit)"
    )
    parser.add_argument("--profile", type=Path, help="run the bot under cProfile, statistics to this file")
    parser.add_argument("--nlu-pid", type=int, help="the NLU server's process (for NLU_URL), for its memory")
    parser.add_argument(
        "--rate",
        type=float,
        nargs="+",
        help="questions arriving per second, spread over the people (open loop), instead of each person "
        "asking again as soon as a reply arrives",
    )
    parser.set_defaults(func=_loadtest)
