"""The Telegram front end (python-telegram-bot)."""

from .app import build_application, run_bot

__all__ = ["build_application", "run_bot"]
