"""The help desk's delivery against the Chatwoot sandbox: the mapping, statuses, reports."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.integrations.chatwoot.api import ChatwootClient, ChatwootUnavailable, is_failure
from gateway.integrations.chatwoot.helpdesk import (
    HelpDesk,
    HelpDeskSettings,
    HelpDeskState,
)
from gateway.pipeline.conversation import Conversation
from gateway.pipeline.keys import Keys
from gateway.pipeline.outbox import PermanentFailure
from gateway.pipeline.resilience import CircuitBreaker
from gateway.pipeline.streams import Outgoing
from gateway.sandbox.chatwoot import ChatwootSandbox
from tests.conftest import CONTRACTS

SPEC = CONTRACTS / "chatwoot.openapi.json"
CLIENT = {"name": "Maria", "phone": "+79161234567", "email": None}


class Setup:
    def __init__(self, chatwoot: ChatwootSandbox, desk: HelpDesk, state: HelpDeskState) -> None:
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
    state = HelpDeskState(redis, Keys(salon_id, 4))
    settings = HelpDeskSettings({"telegram": inbox.id}, "all", None, 3, ("handoff", "vip"))
    yield Setup(chatwoot, HelpDesk(client, state, settings), state)
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
    await redis.delete(setup.state.keys.helpdesk_client("telegram", "501"))
    await setup.send("incoming", text="Again")
    assert len(setup.chatwoot.contacts) == 1
    assert len(setup.chatwoot.conversations) == 2  # a fresh conversation for the same contact


async def test_handoff_opens_assigns_labels_and_notes(setup: Setup) -> None:
    setup.chatwoot.account_labels |= {"vip", "allergy"}  # defined in Settings → Labels
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


def desk_with(
    setup: Setup, client: ChatwootClient, *, team: int | None = None, assignee: int | None = None
) -> HelpDesk:
    inbox = next(iter(setup.chatwoot.inboxes))
    settings = HelpDeskSettings({"telegram": inbox}, "all", team, assignee, ())
    return HelpDesk(client, setup.state, settings)


@pytest.fixture
async def clients(setup: Setup) -> AsyncIterator[Callable[..., ChatwootClient]]:
    """More clients of the same sandbox (another token set-up), closed at the end."""
    made: list[ChatwootClient] = []

    def client(bot_token: str | None = None) -> ChatwootClient:
        made.append(
            ChatwootClient(
                setup.desk.client._root,
                1,
                "token",
                CircuitBreaker("cw", is_failure=is_failure),
                bot_token=bot_token,
            )
        )
        return made[-1]

    yield client
    for each in made:
        await each.aclose()


async def handoff(desk: HelpDesk, chat: str = "tg:501") -> None:
    params = {"client": CLIENT, "note": "🙋", "source_id": "gw:handoff:e1"}
    await desk.deliver(Outgoing("chatwoot", chat, "handoff", params, author="desk"))


@pytest.mark.parametrize("team", [None, 2])
async def test_an_agent_token_puts_the_handoff_back_in_staffs_queue(
    setup: Setup, clients: Callable[..., ChatwootClient], team: int | None
) -> None:
    """Chatwoot assigns a conversation an agent opens to that agent: the desk gives it back to
    no one (then the team), so it never waits in the gateway user's "Mine"."""
    setup.chatwoot.inboxes[1].auto_assignee = 3  # overruled by the self-assignment, as in Chatwoot
    desk = desk_with(setup, clients(), team=team)
    await handoff(desk)
    [thread] = setup.chatwoot.conversations.values()
    assert thread.status == "open"
    assert (thread.assignee_id, thread.team_id) == (None, team)
    assert desk.agent_role is True
    await handoff(desk)  # the same handoff again: still nobody's
    assert thread.assignee_id is None
    assert [m["content"] for m in thread.messages] == ["🙋"]  # its note went in once


async def test_an_administrator_token_leaves_chatwoots_auto_assignment_alone(
    setup: Setup, clients: Callable[..., ChatwootClient]
) -> None:
    setup.chatwoot.role = "administrator"
    setup.chatwoot.inboxes[1].auto_assignee = 3
    desk = desk_with(setup, clients())
    await handoff(desk)
    [thread] = setup.chatwoot.conversations.values()
    assert (thread.status, thread.assignee_id) == ("open", 3)
    assert desk.agent_role is False


async def test_an_agent_bot_token_hands_off_through_chatwoots_bot_handoff(
    setup: Setup, clients: Callable[..., ChatwootClient]
) -> None:
    setup.chatwoot.bot_token = "bot-token"
    setup.chatwoot.inboxes[1].auto_assignee = 3
    desk = desk_with(setup, clients("bot-token"))
    await handoff(desk)
    [thread] = setup.chatwoot.conversations.values()
    assert setup.chatwoot.bot_handoffs == [thread.id]
    assert (thread.status, thread.assignee_id) == ("open", 3)
    assert desk.agent_role is None  # the role did not matter: nothing to put back


async def test_an_unreadable_profile_counts_as_an_agent(
    setup: Setup, clients: Callable[..., ChatwootClient]
) -> None:
    client = clients()
    desk = desk_with(setup, client)
    client._http.headers["api_access_token"] = "revoked"
    assert await desk._agent_role() is True
    assert desk.agent_role is None  # asked again next time


async def test_a_post_whose_answer_was_lost_goes_in_once(setup: Setup) -> None:
    """Chatwoot may store a message and its answer never reach us (a proxy's 502): the retry
    finds our source id among the conversation's messages and does not post it again."""
    await setup.send("incoming", text="Hello", source_id="gw:in:1", written=time.time())
    [thread] = setup.chatwoot.conversations.values()
    for method, params in (
        ("incoming", {"text": "Is 14:30 free?", "source_id": "gw:in:2"}),
        ("outgoing", {"text": "Let me see", "source_id": "m:2:0"}),
        ("note", {"text": "✅ coming", "source_id": "gw:attending:m:3"}),
    ):
        setup.chatwoot.lose_answers()
        with pytest.raises(ChatwootUnavailable):
            await setup.send(method, **params)
        await setup.send(method, **params)  # the outbox's retry
    assert [m["content"] for m in thread.messages] == [
        "Hello",
        "Is 14:30 free?",
        "🤖 Let me see",
        "✅ coming",
    ]
    # A first try that never reached Chatwoot: the retry finds nothing and posts.
    assert await setup.state.first_try(thread.id, "gw:in:4")
    await setup.send("incoming", text="And 15:00?", source_id="gw:in:4")
    assert thread.messages[-1]["content"] == "And 15:00?"


async def test_a_late_line_never_reopens_a_resolved_conversation(setup: Setup) -> None:
    """A line the client wrote before staff resolved (delivered after) goes in as a private
    note: as incoming, Chatwoot would reopen the conversation (Message#reopen_conversation).
    A line written after the resolve is the bot's: pending first, then incoming."""
    await setup.send("handoff", note="🙋", source_id="gw:handoff:1")
    [thread] = setup.chatwoot.conversations.values()
    written = time.time()
    setup.chatwoot.resolve(thread.id)
    conv = Conversation("telegram", "501")
    mapping = await setup.state.mapping(conv)
    assert mapping is not None
    await setup.state.save_mapping(
        conv, mapping | {"status": "resolved", "resolved_at": written + 1}
    )
    await setup.send("incoming", text="One more thing", source_id="gw:in:7", written=written)
    assert thread.status == "resolved"
    late = thread.messages[-1]
    assert (late["private"], late["message_type"]) == (True, "outgoing")
    assert late["content"] == "👤 (written before the conversation was resolved) One more thing"
    await setup.send("incoming", text="Hi again", source_id="gw:in:8", written=written + 2)
    assert thread.status == "pending"
    assert (thread.messages[-1]["content"], thread.messages[-1]["message_type"]) == (
        "Hi again",
        "incoming",
    )


async def test_a_label_the_account_lacks_is_dropped_by_chatwoot(setup: Setup) -> None:
    """Chatwoot keeps only labels defined in the account (LabelConcern#valid_labels): the
    handoff goes through, without the unknown one."""
    await setup.send("handoff", note="🙋")
    [thread] = setup.chatwoot.conversations.values()
    assert thread.status == "open"
    assert thread.labels == ["handoff"]
    assert setup.chatwoot.errors == []
