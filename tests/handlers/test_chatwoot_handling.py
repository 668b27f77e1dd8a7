"""The worker's handling of Chatwoot events: echoes of our own changes, late words."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from bot.conversation import FrontDesk
from bot.events import Channel, ClientRef
from bot.i18n import Catalogs
from bot.salon import Salon
from bot.session import Session
from gateway.integrations.chatwoot.api import ChatwootClient, is_failure
from gateway.integrations.chatwoot.helpdesk import HelpDesk, HelpDeskSettings, HelpDeskState
from gateway.pipeline.inbox import Inbox
from gateway.pipeline.keys import Keys
from gateway.pipeline.resilience import CircuitBreaker
from gateway.pipeline.sessions import SessionStore
from gateway.pipeline.streams import Entry, Outgoing
from gateway.sandbox.chatwoot import ChatwootSandbox
from handlers.chatwoot import ChatwootEvents, reconcile

NOW = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)


@pytest.fixture
def parts(redis: Redis, salon_id: str) -> tuple[ChatwootEvents, HelpDeskState, SessionStore]:
    keys = Keys(salon_id, 4)
    catalogs = Catalogs()
    desk = FrontDesk(
        Salon(salon_id, "Studio", "UTC"), catalogs, timedelta(days=1), help_desk_channels=True
    )
    sessions = SessionStore(redis, keys, 3600)
    state = HelpDeskState(redis, keys)
    return ChatwootEvents(desk, catalogs, sessions, state, lambda: NOW), state, sessions


def status(value: str) -> Entry:
    body = {"event": "conversation_status_changed", "id": 42, "status": value}
    return Entry("1-0", "chatwoot", "tg:501", f"s:42:{value}", 0, json.dumps(body).encode())


def reply(conversation_status: str) -> Entry:
    body = {
        "event": "message_created",
        "id": 77,
        "message_type": "outgoing",
        "content": "See you!",
        "sender": {"type": "user"},
        "conversation": {"id": 42, "status": conversation_status},
    }
    return Entry("1-0", "chatwoot", "tg:501", "m:77", 0, json.dumps(body).encode())


CLIENT = ClientRef("x", Channel.TELEGRAM, "501", "501")


async def test_our_own_pending_coming_back_late_does_not_hand_back(
    parts: tuple[ChatwootEvents, HelpDeskState, SessionStore], redis: Redis
) -> None:
    events, state, sessions = parts
    await state.set_human("telegram", "501")
    await state.expect(42, "pending")
    outcome = await events(status("pending"))
    assert outcome.outgoing == ()
    assert await state.human_owns("telegram", "501")
    # Staff setting it to pending themselves do hand it back.
    await redis.set(sessions.key(CLIENT), Session(owner="human").model_dump_json())
    outcome = await events(status("pending"))
    assert not await state.human_owns("telegram", "501")
    assert "Thank you for waiting" in outcome.outgoing[0].params["text"]


async def test_a_word_in_a_resolved_conversation_takes_nothing_over(
    parts: tuple[ChatwootEvents, HelpDeskState, SessionStore],
) -> None:
    events, state, _sessions = parts
    outcome = await events(reply("resolved"))
    assert [o.params.get("text") for o in outcome.outgoing] == ["See you!"]
    assert outcome.outgoing[0].author == "staff"
    assert not await state.human_owns("telegram", "501")
    outcome = await events(reply("pending"))
    assert await state.human_owns("telegram", "501")
    assert await state.seen(42) == 77


async def test_agent_attachments_are_queued_as_references_to_fetch(
    parts: tuple[ChatwootEvents, HelpDeskState, SessionStore],
) -> None:
    """Only a reference is queued (the file is fetched when the message is delivered), one
    message per file; staff's words ride as the first file's caption where they fit."""
    events, _state, _sessions = parts
    body = json.loads(reply("open").body)
    url = "https://cw.example/rails/active_storage/blobs/redirect/abc/nails%20before.jpg"
    body["content"] = "Your nails"
    body["attachments"] = [
        {"file_type": "image", "data_url": url, "file_size": 12 * 1024 * 1024},
        {"file_type": "file", "data_url": "https://cw.example/x/y/price.pdf", "extension": "pdf"},
        {"file_type": "location", "data_url": None, "coordinates_lat": 55.7},
    ]
    entry = Entry("1-0", "chatwoot", "tg:501", "m:78", 0, json.dumps(body).encode())
    photo, document = (await events(entry)).outgoing
    assert photo.method == "sendPhoto"
    assert photo.params["photo"]["_fetch"] == {
        "url": url,
        "name": "nails before.jpg",
        "size": 12 * 1024 * 1024,
        "kind": "image",
        "written": None,
    }
    assert photo.params["caption"] == "Your nails"
    assert photo.params["_fallback"] == (
        "Your nails\n\n📎 The salon sent a file that could not be delivered here: "
        "nails before.jpg (12 MB). The salon has been notified."
    )
    assert (document.method, document.params["document"]["_fetch"]["size"]) == (
        "sendDocument",
        None,  # older Chatwoot versions send no size
    )
    assert "caption" not in document.params
    assert document.params["_fallback"].endswith(
        "delivered here: price.pdf. The salon has been notified."
    )

    # WhatsApp: an audio file takes no caption, so the words go first, on their own; a text
    # too long for a caption does the same.
    body["attachments"] = [{"file_type": "audio", "data_url": "https://cw.example/a/b/hi.ogg"}]
    whatsapp = Entry("1-0", "chatwoot", "wa:79161234567", "m:79", 0, json.dumps(body).encode())
    text, audio = (await events(whatsapp)).outgoing
    assert text.params["content"]["text"]["body"] == "Your nails"
    assert audio.params["content"]["document"] == {
        "_fetch": {
            "url": "https://cw.example/a/b/hi.ogg",
            "name": "hi.ogg",
            "size": None,
            "kind": "audio",
            "written": None,
        }
    }
    body["content"] = "x" * 1025
    body["attachments"][0]["file_type"] = "image"
    long = Entry("1-0", "chatwoot", "tg:501", "m:80", 0, json.dumps(body).encode())
    text, photo = (await events(long)).outgoing
    assert (text.method, "caption" in photo.params) == ("sendMessage", False)


async def test_an_event_for_an_unknown_conversation_is_ignored(
    parts: tuple[ChatwootEvents, HelpDeskState, SessionStore],
) -> None:
    events, _state, _sessions = parts
    body = {"event": "conversation_status_changed", "id": 9, "status": "resolved"}
    entry = Entry("1-0", "chatwoot", "cw:9", "s", 0, json.dumps(body).encode())
    assert (await events(entry)).outgoing == ()


async def test_reconciliation_reads_the_real_list_and_recovers_a_lost_resolve_once(
    redis: Redis, salon_id: str
) -> None:
    """Chatwoot's messages list gives `message_type` 1 and `created_at` in unix seconds
    (_message.json.jbuilder): an agent reply found there is queued as its webhook would be.
    A handed-off conversation Chatwoot has resolved, while Frontdesk still thinks it open, is
    queued as the lost resolve; a conversation Frontdesk did not open, or no longer a person's,
    is left alone."""
    chatwoot = ChatwootSandbox("token", 1)
    inbox_id = chatwoot.add_inbox("Telegram (gateway)").id
    server = TestServer(chatwoot.app())
    await server.start_server()
    client = ChatwootClient(
        str(server.make_url("")).rstrip("/"),
        1,
        "token",
        CircuitBreaker("cw", is_failure=is_failure),
    )
    keys = Keys(salon_id, 4)
    state = HelpDeskState(redis, keys)
    desk = HelpDesk(client, state, HelpDeskSettings({"telegram": inbox_id}, "all", None, None, ()))
    inbox = Inbox(redis, keys, 3600)
    try:
        params = {"client": {"name": "Maria"}, "note": "🙋", "source_id": "gw:handoff:1"}
        await desk.deliver(Outgoing("chatwoot", "tg:501", "handoff", params, author="desk"))
        await state.set_human("telegram", "501")
        [thread] = chatwoot.conversations.values()
        reply = chatwoot.agent_replies(thread.id, "Hello from Olga")
        assert await reconcile(client, state, inbox) == 1
        entries = await redis.xrange(keys.inbound(keys.shard_of("tg:501")))
        queued = json.loads(entries[-1][1][b"body"])
        assert (queued["id"], queued["message_type"]) == (reply["id"], 1)
        assert isinstance(queued["created_at"], int)
        assert await reconcile(client, state, inbox) == 0  # open in Chatwoot: nothing missed
        chatwoot.resolve(thread.id)  # and the webhook never came
        assert await reconcile(client, state, inbox) == 1
        assert await reconcile(client, state, inbox) == 0  # queued once
        await state.set_bot("telegram", "501")  # handed back meanwhile
        chatwoot.agent_note(thread.id, "moves the last message seen on")
        assert await reconcile(client, state, inbox) == 0
        await state.set_human("telegram", "501")
        del chatwoot.conversations[thread.id]  # deleted by staff
        assert await reconcile(client, state, inbox) == 0
        assert await state.watched() == []
    finally:
        await client.aclose()
        await chatwoot.close()
        await server.close()
