"""The WhatsApp delivery: what each Graph answer makes the outbox do, the window and parking."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from redis.asyncio import Redis

from gateway.integrations.chatwoot.files import FALLBACK, FETCH_MARKER, ChatwootFiles
from gateway.integrations.whatsapp.api import (
    WhatsAppClient,
    WhatsAppDelivery,
    WhatsAppUnavailable,
    is_failure,
)
from gateway.integrations.whatsapp.state import WhatsAppState
from gateway.pipeline.keys import Keys
from gateway.pipeline.metrics import Metrics
from gateway.pipeline.outbox import PermanentFailure, RetryLater, Substituted
from gateway.pipeline.resilience import CircuitBreaker, State
from gateway.pipeline.streams import Outgoing

API = "https://graph.example/v23.0"
NUMBER = "106540352242922"
CHAT = "79161234567"
NOW = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
JSON = dict[str, Any]


@pytest.fixture
async def state(redis: Redis, salon_id: str) -> WhatsAppState:
    return WhatsAppState(redis, Keys(salon_id, 4))


@pytest.fixture
async def delivery(state: WhatsAppState) -> AsyncIterator[WhatsAppDelivery]:
    breaker = CircuitBreaker("whatsapp", fail_max=2, is_failure=is_failure)
    client = WhatsAppClient(API, NUMBER, "EAAG-token", breaker)
    yield WhatsAppDelivery(
        client,
        state,
        Metrics(),
        reply_waiting_template="frontdesk_reply_waiting",
        salon_name="Studio Nord",
        clock=lambda: NOW,
    )
    await client.aclose()


def text(body: str = "Hello", locale: str = "ru") -> Outgoing:
    content = {"type": "text", "text": {"body": body, "preview_url": False}}
    return Outgoing("whatsapp", CHAT, "messages", {"content": content, "locale": locale})


def graph_error(code: int, status: int = 400) -> httpx.Response:
    error = {"message": "x", "type": "OAuthException", "code": code, "error_data": {"details": "d"}}
    return httpx.Response(status, json={"error": error})


def accepted(wamid: str = "wamid.out") -> httpx.Response:
    return httpx.Response(200, json={"messaging_product": "whatsapp", "messages": [{"id": wamid}]})


async def open_window(state: WhatsAppState) -> None:
    await state.touch(CHAT, int(NOW.timestamp()) - 60)


@respx.mock
async def test_a_message_in_the_window_is_sent_with_bearer_token_and_remembered(
    delivery: WhatsAppDelivery, state: WhatsAppState
) -> None:
    await open_window(state)
    route = respx.post(f"{API}/{NUMBER}/messages").mock(return_value=accepted("wamid.1"))
    await delivery.deliver(text())
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer EAAG-token"
    assert json.loads(request.content) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CHAT,
        "type": "text",
        "text": {"body": "Hello", "preview_url": False},
    }
    assert (await state.sent("wamid.1")) == {
        "chat": CHAT,
        "message": {"content": text().params["content"], "locale": "ru", "_author": "bot"},
        "at": int(NOW.timestamp()),
    }


@respx.mock
@pytest.mark.parametrize(
    ("code", "waits"),
    [
        (130429, [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]),
        (131057, [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]),
        (131056, [6.0, 12.0, 24.0, 48.0, 96.0, 120.0]),
        (131049, [60.0, 120.0, 240.0, 480.0, 960.0, 1920.0]),
    ],
)
async def test_rate_limits_ask_the_outbox_to_wait_longer_each_time(
    delivery: WhatsAppDelivery, state: WhatsAppState, code: int, waits: list[float]
) -> None:
    await open_window(state)
    route = respx.post(f"{API}/{NUMBER}/messages").mock(return_value=graph_error(code))
    seen = []
    for _ in waits:
        with pytest.raises(RetryLater) as waiting:
            await delivery.deliver(text())
        seen.append(waiting.value.seconds)
    assert seen == waits
    # Once through, the next refusal starts from the first wait again.
    route.mock(return_value=accepted())
    await delivery.deliver(text())
    route.mock(return_value=graph_error(code))
    with pytest.raises(RetryLater) as waiting:
        await delivery.deliver(text())
    assert waiting.value.seconds == waits[0]


@respx.mock
@pytest.mark.parametrize("code", [131026, 131051, 132000, 100, 368])
async def test_permanent_errors_are_not_retried(
    delivery: WhatsAppDelivery, state: WhatsAppState, code: int
) -> None:
    await open_window(state)
    respx.post(f"{API}/{NUMBER}/messages").mock(return_value=graph_error(code))
    with pytest.raises(PermanentFailure, match=str(code)):
        await delivery.deliver(text())
    assert delivery.client.breaker.state is State.CLOSED


@respx.mock
@pytest.mark.parametrize(
    "answer", [httpx.Response(503), graph_error(131000, 500), graph_error(190, 401)]
)
async def test_outages_and_a_bad_token_count_against_the_breaker(
    delivery: WhatsAppDelivery, state: WhatsAppState, answer: httpx.Response
) -> None:
    await open_window(state)
    respx.post(f"{API}/{NUMBER}/messages").mock(return_value=answer)
    for _ in range(2):
        with pytest.raises(WhatsAppUnavailable):
            await delivery.deliver(text())
    assert delivery.client.breaker.state is State.OPEN


@respx.mock
async def test_outside_the_window_the_message_is_parked_and_the_template_sent_once(
    delivery: WhatsAppDelivery, state: WhatsAppState
) -> None:
    route = respx.post(f"{API}/{NUMBER}/messages").mock(return_value=accepted())
    await delivery.deliver(text("First"))
    await delivery.deliver(text("Second"))
    [call] = route.calls
    body = json.loads(call.request.content)
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "frontdesk_reply_waiting",
        "language": {"policy": "deterministic", "code": "ru"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Studio Nord"}]}],
    }
    parked = await state.parked(CHAT)
    assert [p["content"]["text"]["body"] for p in parked] == ["First", "Second"]


@respx.mock
async def test_a_window_whatsapp_says_is_closed_parks_the_message(
    delivery: WhatsAppDelivery, state: WhatsAppState
) -> None:
    await open_window(state)
    route = respx.post(f"{API}/{NUMBER}/messages").mock(
        side_effect=[graph_error(131047), accepted()]
    )
    await delivery.deliver(text("Late"))
    assert json.loads(route.calls[1].request.content)["type"] == "template"
    assert not await state.window_open(CHAT, int(NOW.timestamp()))
    assert [p["content"]["text"]["body"] for p in await state.parked(CHAT)] == ["Late"]


@respx.mock
async def test_a_window_whatsapp_says_is_closed_sends_the_messages_own_template(
    delivery: WhatsAppDelivery, state: WhatsAppState
) -> None:
    """Our clock says open, WhatsApp says 131047: a message with a template of its own (a
    notice, a proposal) goes as that template at once instead of waiting behind "reply
    waiting"."""
    await open_window(state)
    route = respx.post(f"{API}/{NUMBER}/messages").mock(
        side_effect=[graph_error(131047), accepted("wamid.template")]
    )
    fallback = {"type": "template", "template": {"name": "frontdesk_proposal_1"}}
    message = text("Times for you")
    await delivery.deliver(replace(message, params=message.params | {"fallback": fallback}))
    sent = json.loads(route.calls[1].request.content)
    assert sent["template"]["name"] == "frontdesk_proposal_1"
    assert len(route.calls) == 2
    assert not await state.window_open(CHAT, int(NOW.timestamp()))
    assert await state.parked(CHAT) == []


@respx.mock
async def test_a_refused_template_still_keeps_the_message_for_the_client(
    delivery: WhatsAppDelivery, state: WhatsAppState, caplog: pytest.LogCaptureFixture
) -> None:
    respx.post(f"{API}/{NUMBER}/messages").mock(return_value=graph_error(132001))
    await delivery.deliver(text("Kept"))
    assert "reply-waiting template was refused" in caplog.text
    assert len(await state.parked(CHAT)) == 1


@respx.mock
async def test_a_file_is_uploaded_then_sent_by_media_id(
    delivery: WhatsAppDelivery, state: WhatsAppState
) -> None:
    await open_window(state)
    upload = respx.post(f"{API}/{NUMBER}/media").mock(
        return_value=httpx.Response(200, json={"id": "4490709327"})
    )
    send = respx.post(f"{API}/{NUMBER}/messages").mock(return_value=accepted())
    document = {
        "_upload": {
            "filename": "visit.ics",
            "mime_type": "text/plain",
            "base64": base64.b64encode(b"BEGIN:VCALENDAR").decode(),
        },
        "filename": "visit.ics",
        "caption": "Your visit",
    }
    params = {"content": {"type": "document", "document": document}, "locale": "en"}
    await delivery.deliver(Outgoing("whatsapp", CHAT, "messages", params))
    form = upload.calls.last.request.content
    assert b'name="messaging_product"' in form
    assert b"BEGIN:VCALENDAR" in form
    assert json.loads(send.calls.last.request.content)["document"] == {
        "filename": "visit.ics",
        "caption": "Your visit",
        "id": "4490709327",
    }


@respx.mock
async def test_read_receipts_show_typing_and_unknown_calls_are_refused(
    delivery: WhatsAppDelivery,
) -> None:
    route = respx.post(f"{API}/{NUMBER}/messages").mock(
        return_value=httpx.Response(200, json={"success": True})
    )
    await delivery.deliver(Outgoing("whatsapp", CHAT, "read", {"message_id": "wamid.in"}))
    assert json.loads(route.calls.last.request.content) == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.in",
        "typing_indicator": {"type": "text"},
    }
    with pytest.raises(PermanentFailure, match="unsupported"):
        await delivery.deliver(Outgoing("whatsapp", CHAT, "sendMessage", {"text": "x"}))


async def test_a_client_known_only_by_a_business_scoped_id_is_addressed_as_recipient() -> None:
    from gateway.integrations.whatsapp.api import address

    assert address("79161234567") == {"to": "79161234567"}
    assert address("US.13491208655302741918") == {"recipient": "US.13491208655302741918"}


async def test_the_window_follows_the_latest_message_and_never_moves_back(
    state: WhatsAppState,
) -> None:
    now = int(NOW.timestamp())
    await state.touch(CHAT, now - 23 * 3600)
    assert await state.window_open(CHAT, now)
    await state.touch(CHAT, now - 30 * 3600)  # an older message delivered late
    assert await state.window_open(CHAT, now)
    assert not await state.window_open(CHAT, now + 3600)
    assert not await state.window_open("70000000000", now)


async def test_statuses_only_move_forward(state: WhatsAppState) -> None:
    assert await state.record_status("wamid.1", "delivered")
    assert await state.record_status("wamid.1", "read")
    assert not await state.record_status("wamid.1", "delivered")
    assert not await state.record_status("wamid.1", "deleted")
    assert await state.status("wamid.1") == "read"
    assert await state.status("wamid.unknown") is None


async def test_parking_checks_the_window_in_the_same_step_and_keeps_one_copy(
    state: WhatsAppState,
) -> None:
    now = int(NOW.timestamp())
    message = text("Late").params
    assert await state.park(CHAT, message, now) == "owed"
    # A retried delivery of the same message: still one copy, the notice still owed.
    assert await state.park(CHAT, message, now) == "owed"
    await state.told(CHAT)
    assert await state.park(CHAT, text("Later").params, now) == "told"
    assert [p["content"]["text"]["body"] for p in await state.parked(CHAT)] == ["Late", "Later"]
    # Once the client writes, nothing more is parked: it is sent.
    await state.touch(CHAT, now)
    assert await state.park(CHAT, text("Now").params, now) == "open"
    assert len(await state.parked(CHAT)) == 2


async def test_a_late_failure_does_not_close_a_window_the_client_reopened(
    state: WhatsAppState,
) -> None:
    now = int(NOW.timestamp())
    await state.touch(CHAT, now - 100)
    # A message sent 50 s ago fails as outside the window, but the client wrote 10 s ago.
    await state.touch(CHAT, now - 10)
    assert not await state.close_window(CHAT, now - 50)
    assert await state.window_open(CHAT, now)
    # Had they not written since, the window is closed.
    assert await state.close_window(CHAT, now)
    assert not await state.window_open(CHAT, now)


@respx.mock
async def test_a_throttled_notice_is_retried_without_parking_twice(
    delivery: WhatsAppDelivery, state: WhatsAppState
) -> None:
    route = respx.post(f"{API}/{NUMBER}/messages").mock(return_value=graph_error(130429))
    with pytest.raises(RetryLater):
        await delivery.deliver(text("Waits"))
    route.mock(return_value=accepted())
    await delivery.deliver(text("Waits"))
    assert [p["content"]["text"]["body"] for p in await state.parked(CHAT)] == ["Waits"]
    assert [json.loads(c.request.content)["type"] for c in route.calls] == ["template", "template"]
    # Told once: the next parked message sends no second template.
    await delivery.deliver(text("More"))
    assert len(route.calls) == 2


@respx.mock
async def test_a_staff_file_whatsapp_refuses_is_replaced_by_its_text(
    delivery: WhatsAppDelivery, state: WhatsAppState
) -> None:
    """Meta, "Upload media": an upload WhatsApp refuses (a 4xx) cannot be retried into success:
    the client gets the text prepared for it, and the delivery says it was substituted."""
    await open_window(state)
    delivery.files = ChatwootFiles(CircuitBreaker("chatwoot"))
    respx.get("https://cw.example/blob/voice.ogg").mock(
        return_value=httpx.Response(200, content=b"OggS", headers={"Content-Type": "audio/ogg"})
    )
    upload = respx.post(f"{API}/{NUMBER}/media").mock(return_value=graph_error(131053))
    send = respx.post(f"{API}/{NUMBER}/messages").mock(return_value=accepted())
    ref = {"url": "https://cw.example/blob/voice.ogg", "name": "voice.ogg", "size": 4}
    content = {"type": "document", "document": {FETCH_MARKER: ref | {"kind": "audio"}}}
    params = {"content": content, "locale": "en", FALLBACK: "The file could not be delivered"}
    with pytest.raises(Substituted, match=r"WhatsApp refused voice\.ogg"):
        await delivery.deliver(Outgoing("whatsapp", CHAT, "messages", params, author="staff"))
    assert json.loads(send.calls.last.request.content)["text"]["body"] == (
        "The file could not be delivered"
    )
    # Throttled instead: the file is tried again later, and nothing is sent meanwhile.
    upload.mock(return_value=graph_error(130429))
    with pytest.raises(RetryLater):
        await delivery.deliver(Outgoing("whatsapp", CHAT, "messages", params, author="staff"))
    assert send.call_count == 1
    await delivery.files.aclose()


@respx.mock
async def test_the_numbers_pause_grows_with_its_own_refusals_not_a_clients(
    delivery: WhatsAppDelivery, state: WhatsAppState
) -> None:
    await open_window(state)
    other = "79160000000"
    await state.touch(other, int(NOW.timestamp()) - 60)
    route = respx.post(f"{API}/{NUMBER}/messages").mock(return_value=graph_error(131056))

    async def refused(chat: str = CHAT) -> tuple[float, bool | None]:
        message = text()
        with pytest.raises(RetryLater) as waiting:
            await delivery.deliver(Outgoing("whatsapp", chat, message.method, message.params))
        return waiting.value.seconds, waiting.value.sender_wide

    # Three pair-rate refusals for one client: its own waits grow.
    assert [await refused() for _ in range(3)] == [(6.0, False), (12.0, False), (24.0, False)]
    # The number's throughput is reached: its first pause, not the client's fourth doubling.
    route.mock(return_value=graph_error(130429))
    assert await refused() == (2.0, True)
    # Met again through another client's send: the number's second refusal in a row.
    assert await refused(other) == (4.0, True)
    # The first client's pair rate keeps its own count.
    route.mock(return_value=graph_error(131056))
    assert await refused() == (48.0, False)
    assert await refused(other) == (6.0, False)
