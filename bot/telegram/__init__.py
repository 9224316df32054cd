"""The Telegram front end (python-telegram-bot)."""

from .app import build_application
from .runner import run_bot, serving

__all__ = ["build_application", "run_bot", "serving"]
