"""Faults on the real bot process: kill -9 with updates in flight, two workers on one PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.runtime import Services

from .botapi import FakeBotAPI
from .botapi.process import BotProcess

pytestmark = pytest.mark.rasa

TOKEN = "123456:inbox-fault-token"


async def test_the_process_harness_runs_the_real_bot(services: Services, tmp_path: Path) -> None:
    assert services.server is not None
    async with FakeBotAPI(TOKEN) as api:
        bot = BotProcess(
            api,
            tmp_path,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
            nlu_url=services.server.url,
        )
        async with bot:
            await api.user(1001, "Ana", language_code="hr").send("/start")
            call = await api.wait_for("sendMessage", timeout=30)
            assert call.params["chat_id"] == 1001
        assert not bot.running
