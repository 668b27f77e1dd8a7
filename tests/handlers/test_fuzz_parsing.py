"""Every webhook parser, fuzzed with a fixed seed: a body is either read into events or refused
as Malformed (the edge's 400), never another exception (a 500); and what the Telegram parser
accepts, the worker either handles or knows it can never handle (Unreadable, dropped)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiogram import Bot, Dispatcher
from aiogram.types import Update
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.pipeline.edge import Malformed
from handlers.calcom import CalcomWebhook
from handlers.chatwoot import ChatwootWebhook
from handlers.novu import NovuWebhook
from handlers.telegram import TelegramWebhook, build_router, handled_kind
from handlers.whatsapp import WhatsAppWebhook
from tests.support.fuzz import NUMBER_ID, TEMPLATES, bodies

TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvw"
PARSERS: dict[str, Any] = {
    "telegram": TelegramWebhook("s"),
    "whatsapp": WhatsAppWebhook("s", NUMBER_ID),
    "chatwoot": ChatwootWebhook(["s"]),
    "calcom": CalcomWebhook("s"),
    "novu": NovuWebhook("s"),
}
FUZZ = settings(
    derandomize=True,
    deadline=None,
    max_examples=300,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("route", sorted(PARSERS))
@FUZZ
@given(data=st.data())
def test_a_parser_reads_a_body_or_refuses_it_as_malformed(route: str, data: st.DataObject) -> None:
    raw = data.draw(bodies(route))
    try:
        events = PARSERS[route].parse({}, raw)
    except Malformed:
        return
    for event in events:
        # What is queued can be written to Redis and read back by the worker.
        event.conversation.encode()
        event.event_id.encode()
        assert isinstance(orjson.loads(event.body), dict)


@pytest.fixture
async def dispatch() -> AsyncIterator[Any]:
    bot = Bot(TOKEN)
    dispatcher = Dispatcher()
    dispatcher.include_router(build_router("fuzz"))

    async def feed(data: dict[str, Any]) -> Any:
        update = Update.model_validate(data, context={"bot": bot})
        return await dispatcher.feed_update(bot, update)

    yield feed
    await bot.session.close()


@FUZZ
@given(data=st.data())
async def test_an_accepted_telegram_update_is_handled_or_known_unreadable(
    dispatch: Any, data: st.DataObject
) -> None:
    """The worker's two outcomes for an update the edge queued: handled (an event, or nothing
    to do), or a ValidationError of aiogram's models, which the worker drops as Unreadable.
    Any other exception would be retried into the dead letters."""
    raw = data.draw(bodies("telegram"))
    try:
        events = PARSERS["telegram"].parse({}, raw)
    except Malformed:
        return
    if not events:
        return
    update = orjson.loads(events[0].body)
    assert handled_kind(update)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # aiogram's "unknown update type" among them
        with contextlib.suppress(ValidationError):
            await dispatch(update)


def test_the_templates_are_read_as_events() -> None:
    """The fuzz starts from bodies each parser reads: else it would test only refusals."""
    for route, parser in PARSERS.items():
        assert parser.parse({}, orjson.dumps(TEMPLATES[route])), route
