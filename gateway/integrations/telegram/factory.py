"""Telegram's clients from the salon's Telegram settings, for the gateway and the commands."""

from __future__ import annotations

from aiogram import Bot

from gateway.integrations.chatwoot.files import ChatwootFiles
from gateway.integrations.telegram.api import TelegramDelivery, is_failure, make_bot
from gateway.pipeline.resilience import BreakerFor
from gateway.salon_settings import TelegramSettings


def telegram_bot(settings: TelegramSettings, timeout: float) -> Bot:
    """aiogram's Bot: reads updates, and answers the operator's commands (getMe, setWebhook)."""
    return make_bot(settings.bot_token.get_secret_value(), settings.api_url, timeout)


def telegram_delivery(
    settings: TelegramSettings,
    breaker_for: BreakerFor,
    timeout: float,
    files: ChatwootFiles | None = None,
) -> TelegramDelivery:
    """The outbox's sender for Telegram, behind Telegram's breaker."""
    return TelegramDelivery(
        settings.bot_token.get_secret_value(),
        settings.api_url,
        breaker_for("telegram", is_failure),
        files=files,
        timeout=timeout,
    )
