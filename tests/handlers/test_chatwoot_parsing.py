"""Chatwoot's edge: signatures over `timestamp.body`, and only what concerns clients queued."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from gateway.pipeline.edge import Malformed
from handlers.chatwoot import ChatwootWebhook, conversation_key, is_agent_reply

NOW = 1_780_000_000
JSON = dict[str, Any]


def webhook(*secrets: str) -> ChatwootWebhook:
    return ChatwootWebhook(list(secrets or ("inbox-secret",)), clock=lambda: NOW)


def signed(raw: bytes, secret: str = "inbox-secret", stamp: int = NOW) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return {"X-Chatwoot-Signature": f"sha256={digest}", "X-Chatwoot-Timestamp": str(stamp)}


def message(**fields: Any) -> JSON:
    body: JSON = {
        "event": "message_created",
        "id": 9876,
        "message_type": "outgoing",
        "private": False,
        "content": "Суббота 15:00 свободно",
        "source_id": None,
        "sender": {"id": 3, "name": "Anna", "type": "user"},
        "conversation": {"id": 42, "contact_inbox": {"source_id": "tg:123456789"}},
    }
    return body | fields


def test_the_signature_covers_the_timestamp_and_the_exact_body() -> None:
    raw = json.dumps(message()).encode()
    source = webhook("other-inbox", "inbox-secret")
    assert source.authenticate(signed(raw))
    assert source.verify(signed(raw), raw)
    assert not source.verify(signed(raw), raw + b" ")
    assert not source.verify(signed(raw, "wrong"), raw)
    # The body alone (without the timestamp) is not what Chatwoot signs.
    body_only = hmac.new(b"inbox-secret", raw, hashlib.sha256).hexdigest()
    headers = {"X-Chatwoot-Signature": f"sha256={body_only}", "X-Chatwoot-Timestamp": str(NOW)}
    assert not source.verify(headers, raw)


@pytest.mark.parametrize("age", [-301, 301, 3600])
def test_an_old_or_future_timestamp_is_refused(age: int) -> None:
    raw = b"{}"
    assert not webhook().verify(signed(raw, stamp=NOW - age), raw)
    assert webhook().verify(signed(raw, stamp=NOW - 30), raw)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Chatwoot-Signature": "sha256=ab"},
        {"X-Chatwoot-Timestamp": "1"},
        {"X-Chatwoot-Signature": "md5=ab", "X-Chatwoot-Timestamp": "1"},
        {"X-Chatwoot-Signature": "sha256=ab", "X-Chatwoot-Timestamp": "soon"},
    ],
)
def test_missing_headers_are_refused_before_reading(headers: dict[str, str]) -> None:
    assert not webhook().authenticate(headers)


def test_an_unsigned_source_trusts_its_route() -> None:
    source = ChatwootWebhook([], signed=False)
    assert source.authenticate({})
    assert source.verify({}, b"{}")


def test_an_agent_reply_is_queued_under_the_clients_conversation() -> None:
    [event] = webhook().parse({}, json.dumps(message()).encode())
    assert (event.source, event.event_id, event.conversation) == (
        "chatwoot",
        "m:9876",
        "tg:123456789",
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"private": True},  # a private note
        {"message_type": "incoming"},  # the client's message, mirrored by us
        {"message_type": "activity"},
        {"sender": {"id": 5, "type": "agent_bot"}},
        {"sender": {"id": 17, "type": "contact"}},
        {"source_id": "gw:bot:m:1:0"},  # our own mirror coming back
    ],
)
def test_notes_echoes_and_others_messages_are_not_queued(fields: JSON) -> None:
    assert webhook().parse({}, json.dumps(message(**fields)).encode()) == []
    assert not is_agent_reply(message(**fields))


def test_status_changes_are_queued_with_their_time_and_others_are_ignored() -> None:
    body = {
        "event": "conversation_status_changed",
        "id": 42,
        "status": "resolved",
        "contact_inbox": {"source_id": "wa:79161234567"},
        "timestamp": 1780000001.5,
    }
    [event] = webhook().parse({}, json.dumps(body).encode())
    assert event.event_id == "s:42:resolved:1780000001.5"
    assert event.conversation == "wa:79161234567"
    typing = {"event": "conversation_typing_on", "conversation": {"id": 42}}
    assert webhook().parse({}, json.dumps(typing).encode()) == []


def test_a_conversation_not_made_by_frontdesk_is_keyed_by_its_id() -> None:
    assert conversation_key({"id": 7, "contact_inbox": {"source_id": "5b1c-uuid"}}) == "cw:7"
    assert conversation_key({"id": 8}) == "cw:8"


@pytest.mark.parametrize("raw", [b"{not json", b"[1]", b'{"event": 3}', b"\xff"])
def test_malformed_bodies_are_refused(raw: bytes) -> None:
    with pytest.raises(Malformed):
        webhook().parse({}, raw)


@pytest.mark.parametrize(
    "fields",
    [
        {"id": "9876"},  # Chatwoot's ids are integers (Message#webhook_data)
        {"id": True},
        {"conversation": None},
        {"conversation": {"id": "42"}},
        {"attachments": {"data_url": "https://x"}},
        {"attachments": ["https://x"]},
    ],
)
def test_an_agent_reply_the_worker_could_not_read_is_refused(fields: JSON) -> None:
    with pytest.raises(Malformed):
        webhook().parse({}, json.dumps(message(**fields)).encode())


def test_a_status_change_needs_an_integer_conversation_id() -> None:
    change = {"event": "conversation_status_changed", "id": "42", "status": "resolved"}
    with pytest.raises(Malformed):
        webhook().parse({}, json.dumps(change).encode())


@pytest.mark.parametrize(
    "source_id",
    ["tg:abc", "tg:", "wa:+7 916", "tg:1" + "0" * 30, ["tg:1"], None],
)
def test_a_source_id_that_is_not_one_of_ours_is_looked_up_by_the_conversation(
    source_id: Any,
) -> None:
    assert conversation_key({"id": 9, "contact_inbox": {"source_id": source_id}}) == "cw:9"
    assert conversation_key({"id": 9, "contact_inbox": "tg:1"}) == "cw:9"


def test_a_sender_that_is_not_an_object_is_not_an_agent() -> None:
    assert not is_agent_reply(message(sender="user"))
