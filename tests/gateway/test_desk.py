"""The help desk's delivery against the Chatwoot sandbox: the mapping, statuses, reports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.chatwoot import ChatwootClient, is_failure
from gateway.desk import ChatwootDesk, Conversation, DeskSettings, DeskState
from gateway.keys import Keys
from gateway.outbox import PermanentFailure
from gateway.resilience import CircuitBreaker
from gateway.sandbox.chatwoot import ChatwootSandbox
from gateway.streams import Outgoing
from tests.conftest import CONTRACTS

SPEC = CONTRACTS / "chatwoot.openapi.json"
CLIENT = {"name": "Maria", "phone": "+79161234567", "email": None}


class Setup:
    def __init__(self, chatwoot: ChatwootSandbox, desk: ChatwootDesk, state: DeskState) -> None:
        self.chatwoot = chatwoot
        self.desk = desk
        self.state = state

    async def send(self, method: str, chat: str = "tg:501", **params: Any) -> None:
        message = Outgoing("chatwoot", chat, method, {"client": CLIENT, **params}, author="desk")
        await self.desk.deliver(message)


@pytest.fixture
async def setup(redis: Redis, salon_id: str) -> AsyncIterator[Setup]:
    chatwoot = ChatwootSandbox("token", 1, SPEC if SPEC.exists() else None)
    inbox = chatwoot.add_inbox("Telegram (gateway)")
    server = TestServer(chatwoot.app())
    await server.start_server()
    client = ChatwootClient(
        str(server.make_url("")).rstrip("/"),
        1,
        "token",
        CircuitBreaker("cw", is_failure=is_failure),
    )
    state = DeskState(redis, Keys(salon_id, 4))
    settings = DeskSettings({"telegram": inbox.id}, "all", None, 3, ("handoff", "vip"))
    yield Setup(chatwoot, ChatwootDesk(client, state, settings), state)
    await client.aclose()
    await chatwoot.close()
    await server.close()


async def test_the_conversation_is_made_once_and_kept_by_frontdesk(setup: Setup) -> None:
    await setup.send("incoming", text="Hello", source_id="gw:in:1")
    await setup.send("outgoing", text="Welcome!", source_id="m:1:0")
    [thread] = setup.chatwoot.conversations.values()
    assert thread.status == "pending"
    assert thread.source_id == "tg:501"
    assert thread.custom_attributes == {"channel": "telegram", "chat_id": "501"}
    contact = setup.chatwoot.contacts[thread.contact_id]
    assert (contact.identifier, contact.phone_number) == ("tg:501", "+79161234567")
    first, second = thread.messages
    assert (first["message_type"], first["content"]) == ("incoming", "Hello")
    assert (second["message_type"], second["content"]) == ("outgoing", "🤖 Welcome!")
    assert second["source_id"] == "gw:bot:m:1:0"
    assert await setup.state.conversation_of(thread.id) == Conversation("telegram", "501")


async def test_a_lost_mapping_finds_the_existing_contact(setup: Setup, redis: Redis) -> None:
    await setup.send("incoming", text="Hello")
    await redis.delete(setup.state._key("cw", "client", "telegram", "501"))
    await setup.send("incoming", text="Again")
    assert len(setup.chatwoot.contacts) == 1
    assert len(setup.chatwoot.conversations) == 2  # a fresh conversation for the same contact


async def test_handoff_opens_assigns_labels_and_notes(setup: Setup) -> None:
    await setup.send("handoff", note="🙋 The client asked for a person (menu).")
    [thread] = setup.chatwoot.conversations.values()
    assert thread.status == "open"
    assert thread.assignee_id == 3
    assert thread.labels == ["handoff", "vip"]
    [note] = thread.messages
    assert note["private"] is True
    assert note["content"].startswith("🙋")
    assert await setup.state.watched() == [thread.id]
    assert await setup.state.seen(thread.id) == note["id"]  # reconciliation starts after it
    thread.labels = ["allergy"]  # staff added their own meanwhile
    await setup.send("handoff", note="again")
    assert thread.labels == ["allergy", "handoff", "vip"]


async def test_after_a_resolve_the_bot_conversation_goes_back_to_pending(setup: Setup) -> None:
    await setup.send("handoff", note="note")
    [thread] = setup.chatwoot.conversations.values()
    conv = Conversation("telegram", "501")
    mapping = await setup.state.mapping(conv)
    assert mapping is not None
    await setup.state.save_mapping(conv, mapping | {"status": "resolved"})
    setup.chatwoot.resolve(thread.id)
    await setup.send("incoming", text="Hi again")
    assert thread.status == "pending"
    assert thread.messages[-1]["content"] == "Hi again"


async def test_failed_deliveries_are_reported_as_status_or_as_a_note(setup: Setup) -> None:
    await setup.send("incoming", text="Hello")
    [thread] = setup.chatwoot.conversations.values()
    reply = setup.chatwoot.agent_replies(thread.id, "Hi")
    report = {"conversation": thread.id, "message": reply["id"]}
    await setup.desk.report(thread.id, reply["id"], report | {"status": "sent"})
    assert setup.chatwoot.updates == [(reply["id"], "sent")]
    setup.chatwoot.status_updates = False  # a Chatwoot before message status updates
    await setup.desk.report(
        thread.id, reply["id"], report | {"status": "failed", "error": "403: blocked"}
    )
    assert thread.messages[-1]["private"] is True
    assert "403: blocked" in thread.messages[-1]["content"]
    assert setup.desk.status_updates is False


async def test_what_cannot_be_delivered_is_refused_for_good(setup: Setup) -> None:
    with pytest.raises(PermanentFailure, match="no Chatwoot inbox"):
        await setup.send("incoming", chat="wa:7916", text="x")
    with pytest.raises(PermanentFailure, match="unsupported"):
        await setup.send("dance", text="x")


async def test_a_clients_file_is_attached_or_at_least_named(setup: Setup) -> None:
    async def fetch(media_id: str) -> tuple[bytes, str]:
        if media_id == "gone":
            raise LookupError("expired")
        return b"%PDF-1.7", "application/pdf"

    setup.desk.media["telegram"] = fetch
    media = {"id": "m1", "kind": "document", "filename": "price.pdf"}
    await setup.send("incoming", text="📎 document price.pdf", media=media)
    await setup.send("incoming", text="📎 image", media={"id": "gone", "kind": "image"})
    [thread] = setup.chatwoot.conversations.values()
    first, second = thread.messages
    [attachment] = first["attachments"]
    assert setup.chatwoot.files[attachment["id"]] == ("price.pdf", "application/pdf", b"%PDF-1.7")
    assert "attachments" not in second
    assert second["content"] == "📎 image"
