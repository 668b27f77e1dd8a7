"""The Telegram Bot API client: an aiogram `Bot` pointed at `TELEGRAM_API_URL`, behind a breaker."""

from __future__ import annotations

import asyncio

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    EditMessageText,
    SendMessage,
    TelegramMethod,
)

from gateway.outbox import PermanentFailure, RetryLater
from gateway.resilience import CircuitBreaker
from gateway.streams import Outgoing

# Every call is bounded; Telegram answers in well under a second when healthy.
TIMEOUT_SECONDS = 10.0

METHODS: dict[str, type[TelegramMethod[object]]] = {
    "sendMessage": SendMessage,  # type: ignore[dict-item]
    "answerCallbackQuery": AnswerCallbackQuery,  # type: ignore[dict-item]
    "editMessageText": EditMessageText,  # type: ignore[dict-item]
    "editMessageReplyMarkup": EditMessageReplyMarkup,  # type: ignore[dict-item]
}


def make_bot(token: str, api_url: str) -> Bot:
    server = TelegramAPIServer.from_base(api_url)
    return Bot(token, session=AiohttpSession(api=server, timeout=TIMEOUT_SECONDS))


def is_failure(exc: BaseException) -> bool:
    """What counts against Telegram's breaker: it being down or slow, not our bad requests."""
    return isinstance(
        exc,
        TelegramServerError
        | TelegramNetworkError
        | TelegramUnauthorizedError
        | TimeoutError
        | aiohttp.ClientError,
    )


class TelegramDelivery:
    def __init__(self, bot: Bot, breaker: CircuitBreaker) -> None:
        self.bot = bot
        self.breaker = breaker

    async def deliver(self, message: Outgoing) -> None:
        method_type = METHODS.get(message.method)
        if method_type is None:
            raise PermanentFailure(f"unsupported method {message.method}")
        method = method_type.model_validate(message.params)
        try:
            await self.breaker.call(lambda: asyncio.wait_for(self.bot(method), TIMEOUT_SECONDS))
        except TelegramRetryAfter as exc:
            raise RetryLater(float(exc.retry_after)) from exc
        except (
            TelegramBadRequest,
            TelegramForbiddenError,
            TelegramNotFound,
            TelegramEntityTooLarge,
        ) as exc:
            raise PermanentFailure(exc.message) from exc
