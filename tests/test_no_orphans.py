"""Fault: kill -9 of the real bot process that started its own Rasa server → no orphan is left.

The bot (``python -m bot run`` against the Bot-API test server) gets a ``var/`` of its own, so it
finds no shared server to reuse and starts one: ~700 MB that used to outlive a killed bot. One
model load (30-60 s).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.settings import ROOT

from .botapi import FakeBotAPI
from .botapi.process import BotProcess
from .test_supervisor import gone, until

pytestmark = pytest.mark.rasa

TOKEN = "123456:orphan-test-token"


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def tree(pid: int) -> list[int]:
    """``pid``'s descendants, depth first."""
    return [p for child in children(pid) for p in (child, *tree(child))]


def command(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def test_the_embedded_rasa_dies_with_the_bot_even_by_kill_9(tmp_path: Path) -> None:
    config = {
        "root": str(tmp_path),  # var/ (state file, NLU secret) of its own: nothing to reuse
        "content_dir": str(ROOT / "content"),
        "nlu": {"project_dir": str(ROOT / "nlu"), "rasa_venv": str(ROOT / ".rasa-venv")},
    }
    async with FakeBotAPI(TOKEN) as api:
        bot = BotProcess(
            api, tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", config=config
        )
        await bot.start(timeout=300)
        try:
            assert bot.pid is not None
            servers = [p for p in tree(bot.pid) if b"serve.py" in command(p)]
            assert len(servers) == 1, bot.log_text()[-2000:]
            everything = tree(bot.pid)
            rss = sum(resident_mib(p) for p in everything)
            await bot.kill()
            await until(lambda: all(gone(p) for p in everything), 30)
            print(f"\nkill -9 of the bot: {len(everything)} processes under it ({rss:.0f} MiB), all gone")
        finally:
            await bot.stop()
            await asyncio.sleep(0)
