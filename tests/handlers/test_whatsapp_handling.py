"""The worker's handling of queued WhatsApp events: what each one commits, retries included."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.conversation import FrontDesk
from bot.i18n import Catalogs
from bot.salon import Salon
from bot.session import Owner
from gateway.integrations.chatwoot.helpdesk import HelpDeskState
from gateway.integrations.whatsapp.state import WhatsAppState
from gateway.pipeline.keys import Keys
from gateway.pipeline.metrics import Metrics
from gateway.pipeline.sessions import SessionStore
from gateway.pipeline.streams import Entry, Outcome
from handlers.mirror import Mirror
from handlers.whatsapp import WhatsAppConversations

CHAT = "79161234567"
NOW = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
JSON = dict[str, Any]


@pytest.fixture
def state(redis: Redis, salon_id: str) -> WhatsAppState:
    return WhatsAppState(redis, Keys(salon_id, 4))


@pytest.fixture
def handler(redis: Redis, salon_id: str, state: WhatsAppState) -> WhatsAppConversations:
    catalogs = Catalogs()
    desk = FrontDesk(Salon(salon_id, "Studio Nord", "Europe/Moscow"), catalogs, timedelta(days=1))
    sessions = SessionStore(redis, Keys(salon_id, 4), 3600)
    return WhatsAppConversations(desk, catalogs, sessions, state, Metrics(), lambda: NOW)


def entry(body: JSON, event_id: str = "e") -> Entry:
    raw = json.dumps(body).encode()
    return Entry("1-0", "whatsapp", f"wa:{CHAT}", event_id, 0, raw)


def message(kind: str, content: Any, at: datetime = NOW, wamid: str = "wamid.in") -> Entry:
    item = {"from": CHAT, "id": wamid, "timestamp": str(int(at.timestamp())), "type": kind}
    item[kind] = content
    contact = {"profile": {"name": "Maria"}, "wa_id": CHAT}
    return entry({"kind": "message", "message": item, "contact": contact})


def failed(wamid: str, code: int = 131047) -> Entry:
    status = {
        "id": wamid,
        "status": "failed",
        "timestamp": "1",
        "recipient_id": CHAT,
        "errors": [{"code": code, "title": "x", "error_data": {"details": "window"}}],
    }
    return entry({"kind": "status", "status": status})


def bodies(outcome: Outcome) -> list[str]:
    found = []
    for out in outcome.outgoing:
        content = out.params.get("content") or {}
        text = (content.get("text") or {}).get("body") or (
            (content.get("interactive") or {}).get("body") or {}
        ).get("text")
        found.append(f"{out.method}:{text}")
    return found


PARKED = {"content": {"type": "text", "text": {"body": "Staff: 10:30 works"}}, "locale": "en"}


async def test_a_retried_failed_status_comes_to_the_same_outcome(
    handler: WhatsAppConversations, state: WhatsAppState
) -> None:
    await state.remember("wamid.out", CHAT, PARKED, int(NOW.timestamp()) - 5)
    first = await handler(failed("wamid.out"))
    # The worker died before committing: the same entry is handled again.
    second = await handler(failed("wamid.out"))
    assert bodies(first) == bodies(second) == ["messages:Staff: 10:30 works"]


async def test_a_failure_after_the_client_wrote_keeps_the_window_open(
    handler: WhatsAppConversations, state: WhatsAppState
) -> None:
    stamp = int(NOW.timestamp())
    await state.remember("wamid.out", CHAT, PARKED, stamp - 60)
    await state.touch(CHAT, stamp - 10)
    outcome = await handler(failed("wamid.out"))
    assert bodies(outcome) == ["messages:Staff: 10:30 works"]  # sent again, not parked
    assert await state.window_open(CHAT, stamp)


async def test_other_failures_and_unknown_messages_are_only_logged(
    handler: WhatsAppConversations, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await handler(failed("wamid.x", code=131026))).outgoing == ()
    assert (await handler(failed("wamid.unknown"))).outgoing == ()
    assert "not known any more" in caplog.text


async def test_parked_messages_come_first_and_are_cleared_in_the_same_commit(
    handler: WhatsAppConversations, state: WhatsAppState
) -> None:
    await state.park(CHAT, PARKED, int(NOW.timestamp()))
    outcome = await handler(message("text", {"body": "Hello"}))
    assert bodies(outcome)[:2] == ["read:None", "messages:Staff: 10:30 works"]
    assert "Welcome" in bodies(outcome)[2]
    assert outcome.clear == state.parked_keys(CHAT)


async def test_the_reply_waiting_button_delivers_what_waits_and_nothing_else(
    handler: WhatsAppConversations, state: WhatsAppState
) -> None:
    await state.park(CHAT, PARKED, int(NOW.timestamp()))
    outcome = await handler(message("button", {"payload": "Continue", "text": "Continue"}))
    assert bodies(outcome) == ["messages:Staff: 10:30 works"]
    assert outcome.session is None


async def test_a_reminder_button_with_a_choice_is_answered_after_what_waits(
    handler: WhatsAppConversations, state: WhatsAppState
) -> None:
    await state.park(CHAT, PARKED, int(NOW.timestamp()))
    outcome = await handler(message("button", {"payload": "m:info", "text": "Address"}))
    assert bodies(outcome)[1] == "messages:Staff: 10:30 works"
    assert len(outcome.outgoing) == 3  # read, what waited, the answer to the tap


async def test_a_message_delivered_days_late_opens_no_window_and_drains_nothing(
    handler: WhatsAppConversations, state: WhatsAppState
) -> None:
    await state.park(CHAT, PARKED, int(NOW.timestamp()))
    old = message("text", {"body": "Hello"}, at=NOW - timedelta(days=3))
    outcome = await handler(old)
    assert "messages:Staff: 10:30 works" not in bodies(outcome)
    assert outcome.clear == ()
    assert len(await state.parked(CHAT)) == 1


async def test_a_typed_number_picks_a_numbered_choice_only_after_numbered_text(
    handler: WhatsAppConversations, redis: Redis, salon_id: str
) -> None:
    greeting = await handler(message("text", {"body": "Hello"}, wamid="wamid.1"))
    assert greeting.session is not None
    session = json.loads(greeting.session)
    assert session["numbered"] is False
    # A list was shown: "3" is text, not the third row.
    await redis.set(greeting.session_key or "", greeting.session)
    answer = await handler(message("text", {"body": "3"}, wamid="wamid.2"))
    assert "did not understand" in bodies(answer)[1]
    # Numbered text was shown: "3" picks the third choice (Services & prices).
    session["numbered"] = True
    session["misunderstood"] = 0
    await redis.set(greeting.session_key or "", json.dumps(session))
    picked = await handler(message("text", {"body": "3."}, wamid="wamid.3"))
    assert "tell you about our services and prices" in bodies(picked)[1]


async def test_a_number_typed_to_staff_is_their_words_not_the_bots_last_numbered_choice(
    redis: Redis, salon_id: str, state: WhatsAppState
) -> None:
    """The bot's last reply was numbered text, then staff took the chat over (no reply of the
    bot since): "2" is the client's answer to staff (or to a proposal), relayed as typed, not
    the second row of the bot's stale list."""
    catalogs = Catalogs()
    desk = FrontDesk(Salon(salon_id, "Studio Nord", "Europe/Moscow"), catalogs, timedelta(days=1))
    keys = Keys(salon_id, 4)
    sessions = SessionStore(redis, keys, 3600)
    mirror = Mirror(HelpDeskState(redis, keys), "all")
    handler = WhatsAppConversations(
        desk, catalogs, sessions, state, Metrics(), lambda: NOW, mirror=mirror
    )
    greeting = await handler(message("text", {"body": "Hello"}, wamid="wamid.1"))
    session = json.loads(greeting.session or "{}")
    session.update(numbered=True, owner=Owner.HUMAN.value)
    await redis.set(greeting.session_key or "", json.dumps(session))
    answer = await handler(message("text", {"body": "2"}, wamid="wamid.2"))
    relayed = [out.params["text"] for out in answer.outgoing if out.method == "incoming"]
    assert relayed == ["2"]
    assert not [out for out in answer.outgoing if out.channel == "whatsapp"]
