"""Wiring: one place builds the Telegram application, its handlers and its services."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import httpx
from telegram import BotCommand, BotCommandScopeChat, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from ..clock import Clock, utcnow
from ..runtime import Services
from ..settings import Settings
from ..storage import Storage
from . import buttons, callbacks, edits, handlers, handoff
from .context import BotContext, BotData
from .delivery import Delivery, RateLimiter, chat_member_changed
from .replay import ReplayingRequest

__all__ = ["build_application", "webhook_options"]

logger = logging.getLogger(__name__)

BotApplication = Application[Any, BotContext, Any, Any, BotData, Any]


def build_application(
    settings: Settings,
    services: Services | None = None,
    storage: Storage | None = None,
    clock: Clock | None = None,
) -> BotApplication:
    """The bot with all handlers. Services and storage are opened in ``post_init`` unless given.

    ``settings`` is the handlers' one source of settings (``context.settings``). The one clock is the
    storage's (``context.clock``): give ``clock`` only when the application builds its own storage.
    """
    if settings.telegram_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    if storage is not None and clock is not None:
        raise ValueError("the storage brings its own clock: pass clock= to Storage instead")
    owned_services = services is None
    owned_storage = storage is None

    async def post_init(application: BotApplication) -> None:
        data = application.bot_data
        data.services = services or await Services(settings).__aenter__()
        data.storage = storage or Storage.from_settings(settings, clock=clock or utcnow)
        if owned_storage:
            await data.storage.open()
        assert data.delivery is not None
        await data.delivery.open(data.storage)
        await set_commands(application)

    async def post_shutdown(application: BotApplication) -> None:
        data = application.bot_data
        if data.delivery is not None:
            await data.delivery.aclose()
        if owned_storage and data.storage is not None:
            await data.storage.aclose()
        if owned_services and data.services is not None:
            await data.services.aclose()

    limiter = RateLimiter()
    builder = (
        Application.builder()
        .token(settings.telegram_token.get_secret_value())
        .context_types(ContextTypes(context=BotContext, bot_data=BotData))
        # Updates come through the durable inbox (bot/telegram/runner.py), not PTB's Updater.
        .updater(None)
        # Records what is sent for each update, so that a replayed update does not send it again.
        .request(ReplayingRequest())
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .rate_limiter(limiter)
    )
    if settings.telegram_api_base_url:
        base = settings.telegram_api_base_url.rstrip("/")
        builder = builder.base_url(base).base_file_url(base.removesuffix("/bot") + "/file/bot")
    application: BotApplication = builder.build()
    application.bot_data.settings = settings
    delivery = application.bot_data.delivery = limiter.delivery = Delivery(application.bot)

    async def person_blocked(chat_id: int) -> None:
        await handoff.close_for_blocked(BotContext(application), chat_id)

    delivery.on_blocked = person_blocked

    private = filters.ChatType.PRIVATE
    # An edited message is never handled as a new one (edits.py says what happens instead).
    application.add_handler(TypeHandler(Update, edits.edited), group=-3)
    application.add_handler(TypeHandler(Update, handlers.require_consent), group=-2)
    application.add_handler(
        MessageHandler(private & ~filters.COMMAND & ~filters.StatusUpdate.ALL, handoff.relay_from_person),
        group=-1,
    )
    application.add_handler(CommandHandler("start", handlers.start, filters=private))
    application.add_handler(CommandHandler("language", handlers.change_language, filters=private))
    application.add_handler(CommandHandler("city", handlers.change_city, filters=private))
    application.add_handler(CommandHandler("help", handlers.help_command, filters=private))
    application.add_handler(CommandHandler("menu", handlers.menu, filters=private))
    application.add_handler(CommandHandler("human", handlers.ask_human, filters=private))
    application.add_handler(CommandHandler("forget", handlers.forget, filters=private))
    groups = sorted({partner.chat_id for _city, partner in settings.all_partners()})
    if groups:
        staff = filters.Chat(chat_id=groups)
        for name, callback in (
            ("note", handoff.note),
            ("send", handoff.send_answer),
            ("quick", handoff.quick),
            ("transfer", handoff.transfer),
            ("refer", handoff.refer),
            ("close", handoff.close_command),
            ("help", handoff.staff_help),
        ):
            application.add_handler(CommandHandler(name, callback, filters=staff))
        application.add_handler(
            MessageHandler(staff & ~filters.COMMAND & ~filters.StatusUpdate.ALL, handoff.staff_message)
        )
        application.add_handler(CallbackQueryHandler(handoff.case_button, callbacks.CaseAction.pattern()))
        application.add_handler(CallbackQueryHandler(handoff.quick_button, callbacks.QuickReply.pattern()))
    for kind, button in (
        (callbacks.Rating, handoff.rate),
        (callbacks.ShareConversation, handoff.share_button),
        (callbacks.Languages, buttons.languages_button),
        (callbacks.ChooseLanguage, buttons.language_button),
        (callbacks.Consent, buttons.consent_button),
        (callbacks.ChooseCity, buttons.city_button),
        (callbacks.Menu, buttons.menu_button),
        (callbacks.ShowTopic, buttons.topic_button),
        (callbacks.ShowKey, buttons.key_button),
        (callbacks.Feedback, buttons.feedback_button),
        (callbacks.Human, buttons.human_button),
        (callbacks.Forget, buttons.forget_button),
    ):
        application.add_handler(CallbackQueryHandler(button, kind.pattern()))
    # Forged or stale data (no pattern matches): answered, nothing else.
    application.add_handler(CallbackQueryHandler(callbacks.ignore))
    application.add_handler(MessageHandler(private & filters.TEXT & ~filters.COMMAND, handlers.question))
    application.add_handler(
        MessageHandler(private & ~filters.TEXT & ~filters.StatusUpdate.ALL, handlers.media)
    )
    application.add_handler(MessageHandler(private & filters.COMMAND, handlers.help_command))
    # A person blocks or unblocks the bot (Telegram's my_chat_member update).
    application.add_handler(
        ChatMemberHandler(chat_member_changed, ChatMemberHandler.MY_CHAT_MEMBER), group=-4
    )
    application.add_error_handler(handlers.error_handler)
    if application.job_queue is not None:
        application.job_queue.run_repeating(purge_expired, interval=dt.timedelta(hours=24), first=60)
        if groups:
            interval = settings.handoff.check_interval_seconds
            application.job_queue.run_repeating(handoff.remind_unclaimed, interval=interval, first=interval)
            # Cases a crash left half-opened or half-transferred: at start-up, then now and then.
            application.job_queue.run_repeating(handoff.reconcile, interval=interval, first=0)
            application.job_queue.run_repeating(handoff.remind_referrals, interval=interval, first=interval)
    return application


async def purge_expired(context: BotContext) -> None:
    """Apply the retention limits from config.yml (daily)."""
    privacy = context.settings.privacy
    days = dt.timedelta(days=privacy.retention_days)
    deleted = await context.storage.purge(
        now=context.clock(),
        turns_older_than=days,
        inactive_people_older_than=days,
        unanswered_older_than=dt.timedelta(days=privacy.unanswered_retention_days),
        audit_older_than=dt.timedelta(days=privacy.audit_retention_days),
    )
    # The usage counts of the insights report are kept as long as the audit log.
    audit_days = dt.timedelta(days=privacy.audit_retention_days)
    deleted["usage"] = await context.storage.usage.purge(context.clock() - audit_days)
    logger.info("retention purge: %s", deleted)


async def set_commands(application: BotApplication) -> None:
    """Register the command menu, localised for every supported language."""
    data = application.bot_data
    assert data.services is not None
    fake_context = BotContext(application)
    settings = fake_context.settings
    for lang in (None, *settings.languages):
        code = lang or settings.default_language
        commands = [BotCommand(n, d) for n, d in handlers.command_descriptions(code, fake_context)]
        await application.bot.set_my_commands(commands, language_code=lang)
    for group in {partner.chat_id: partner for _city, partner in settings.all_partners()}.values():
        staff = [BotCommand(n, d) for n, d in handoff.command_descriptions(group.language, fake_context)]
        await application.bot.set_my_commands(staff, scope=BotCommandScopeChat(group.chat_id))


def webhook_options(settings: Settings) -> dict[str, Any]:
    """The webhook's listen address, port, path, URL and secret token (mandatory), as the webhook
    server (bot/telegram/intake.py) uses them."""
    telegram = settings.telegram
    if not telegram.webhook_url or telegram.webhook_secret is None:
        raise ValueError("webhook mode needs TELEGRAM_WEBHOOK_URL and TELEGRAM_WEBHOOK_SECRET")
    return {
        "listen": telegram.listen,
        "port": telegram.port,
        "url_path": httpx.URL(telegram.webhook_url).path.lstrip("/"),
        "webhook_url": telegram.webhook_url,
        "secret_token": telegram.webhook_secret.get_secret_value(),
        "allowed_updates": Update.ALL_TYPES,
    }
