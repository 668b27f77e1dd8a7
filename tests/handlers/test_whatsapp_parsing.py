"""WhatsApp's edge: signatures on the raw bytes, and a notification split into queued events."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from gateway.pipeline.edge import Malformed
from handlers.whatsapp import WhatsAppWebhook, language_of, verify_challenge
from handlers.whatsapp_payloads import Message

SECRET = "app-secret"
NUMBER = "106540352242922"
JSON = dict[str, Any]


def webhook() -> WhatsAppWebhook:
    return WhatsAppWebhook(SECRET, NUMBER)


def notification(*values: JSON, number: str = NUMBER, field: str = "messages") -> bytes:
    changes = [
        {
            "field": field,
            "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550100200", "phone_number_id": number},
            }
            | value,
        }
        for value in values
    ]
    body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": changes}]}
    return json.dumps(body, ensure_ascii=False).encode()


def text(wamid: str, sender: str | None = "79161234567", **extra: Any) -> JSON:
    message: JSON = {"id": wamid, "timestamp": "1780000000", "type": "text"}
    message["text"] = {"body": "Привет"}
    if sender:
        message["from"] = sender
    return message | extra


def contact(wa_id: str | None = "79161234567", user_id: str | None = None) -> JSON:
    found: JSON = {"profile": {"name": "Мария"}}
    if wa_id:
        found["wa_id"] = wa_id
    if user_id:
        found["user_id"] = user_id
    return found


def signature(raw: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def test_the_signature_covers_the_exact_bytes_received() -> None:
    # Meta escapes non-ASCII; re-serialising would change the bytes and break the signature.
    raw = notification({"contacts": [contact()], "messages": [text("wamid.1")]})
    escaped = json.dumps(json.loads(raw)).encode()
    source = webhook()
    assert source.verify({"X-Hub-Signature-256": signature(escaped)}, escaped)
    assert not source.verify({"X-Hub-Signature-256": signature(raw)}, escaped)
    assert not source.verify({"X-Hub-Signature-256": signature(raw, "other")}, raw)
    upper = "sha256=" + signature(raw).removeprefix("sha256=").upper()
    assert source.verify({"X-Hub-Signature-256": upper}, raw)


@pytest.mark.parametrize(
    "header", [None, "", "sha1=abc", "sha256=xyz", "sha256=" + "0" * 63, "md5=" + "0" * 64]
)
def test_a_missing_or_misshapen_signature_is_refused_before_the_body_is_read(
    header: str | None,
) -> None:
    headers = {} if header is None else {"X-Hub-Signature-256": header}
    assert not webhook().authenticate(headers)


def test_each_message_and_status_of_a_delivery_is_its_own_event_in_order() -> None:
    raw = notification(
        {
            "contacts": [contact()],
            "messages": [text("wamid.1"), text("wamid.2"), text("wamid.3")],
        },
        {
            "statuses": [
                {"id": "wamid.out", "status": "delivered", "timestamp": "1", "recipient_id": "7"},
                {"id": "wamid.out", "status": "read", "timestamp": "2", "recipient_id": "7"},
            ]
        },
    )
    events = webhook().parse({}, raw)
    assert [e.event_id for e in events] == [
        "m:wamid.1",
        "m:wamid.2",
        "m:wamid.3",
        "s:wamid.out:delivered",
        "s:wamid.out:read",
    ]
    assert {e.conversation for e in events[:3]} == {"wa:79161234567"}
    assert events[3].conversation == "wa:7"
    first = json.loads(events[0].body)
    assert first["kind"] == "message"
    assert first["message"]["text"]["body"] == "Привет"
    assert first["contact"]["profile"]["name"] == "Мария"


def test_a_client_without_a_phone_number_is_keyed_by_the_business_scoped_id() -> None:
    bsuid = "US.13491208655302741918"
    message = text("wamid.b", sender=None, from_user_id=bsuid)
    raw = notification({"contacts": [contact(None, bsuid)], "messages": [message]})
    [event] = webhook().parse({}, raw)
    assert event.conversation == f"wa:{bsuid}"


def test_a_message_with_no_sender_at_all_is_skipped() -> None:
    raw = notification({"contacts": [], "messages": [text("wamid.x", sender=None)]})
    assert webhook().parse({}, raw) == []


def test_unknown_fields_and_other_changes_are_tolerated() -> None:
    message = text("wamid.1", brand_new_field={"x": 1})
    raw = notification(
        {"contacts": [contact()], "messages": [message], "new_top_level": True},
        {"event": "APPROVED"},
    )
    assert [e.event_id for e in webhook().parse({}, raw)] == ["m:wamid.1"]
    other = notification({"event": "APPROVED"}, field="message_template_status_update")
    assert webhook().parse({}, other) == []


def test_another_business_numbers_messages_are_not_ours() -> None:
    raw = notification({"contacts": [contact()], "messages": [text("wamid.1")]}, number="999")
    assert webhook().parse({}, raw) == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'{"object": "page", "entry": []}', "not a WhatsApp Business Account notification"),
        (b'{"object": "whatsapp_business_account", "entry": {"a": 1}}', "no entry list"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"object": "whatsapp_business_account", "entry": [], "n": NaN}', "not JSON"),
        (b'{"object": "whatsapp_business_account", "entry": [], "n": "\\udc00"}', "not JSON"),
        (
            b'{"object": "whatsapp_business_account", "entry": [], "n": 1' + b"0" * 5000 + b"}",
            "not JSON",
        ),
        (
            b'{"object": "whatsapp_business_account", "entry": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            "not JSON",
        ),
    ],
)
def test_malformed_deliveries_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(Malformed, match=reason):
        webhook().parse({}, raw)


def test_the_verification_handshake_needs_the_mode_and_the_token() -> None:
    good = {"hub.mode": "subscribe", "hub.verify_token": "v", "hub.challenge": "42"}
    assert verify_challenge(good, "v") == "42"
    assert verify_challenge(good | {"hub.verify_token": "w"}, "v") is None
    assert verify_challenge(good | {"hub.mode": "unsubscribe"}, "v") is None
    assert verify_challenge({"hub.challenge": "42"}, "v") is None


@pytest.mark.parametrize(
    ("words", "language"),
    [("Здравствуйте", "ru"), ("Hello", "en"), ("Hi, Анна", "ru"), ("👍 123", None), ("", None)],
)
def test_the_language_comes_from_the_clients_own_words(words: str, language: str | None) -> None:
    assert language_of(words) == language


@pytest.mark.parametrize(
    "bad",
    [
        {"id": 12345, "type": "text"},  # a wamid is a string
        {"id": "wamid.b", "from": ["7916"], "type": "text"},
        {"id": "wamid.b", "from": "+7 (916) 123", "type": "text"},  # neither a number nor a BSUID
        {"id": "wamid.b", "from": "79161234567", "text": {"body": 5}},
        "wamid.b",
    ],
)
def test_one_unreadable_message_is_dropped_and_its_neighbours_are_queued(bad: Any) -> None:
    raw = notification(
        {"contacts": [contact()], "messages": [text("wamid.1"), bad, text("wamid.2")]},
        {"statuses": [{"id": "wamid.out", "status": 7}, {"id": "wamid.o", "status": "read"}]},
    )
    events = webhook().parse({}, raw)
    assert [e.event_id for e in events] == ["m:wamid.1", "m:wamid.2", "s:wamid.o:read"]


def test_unreadable_entries_changes_and_contacts_are_dropped_not_refused() -> None:
    good = json.loads(notification({"contacts": [contact()], "messages": [text("wamid.1")]}))
    change = good["entry"][0]["changes"][0]
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            "not an entry",
            {"id": "2", "changes": {"field": "messages"}},
            {"id": "3", "changes": [5, {"field": "messages", "value": []}]},
            {"id": "4", "changes": [change | {"value": change["value"] | {"metadata": "x"}}]},
            {"id": "5", "changes": [change | {"value": change["value"] | {"errors": [1, {}]}}]},
        ],
    }
    events = webhook().parse({}, json.dumps(body).encode())
    assert [e.event_id for e in events] == ["m:wamid.1"]
    # A contact that cannot be read is left out; the message still has its sender.
    value = change["value"] | {"contacts": [{"wa_id": 7}, contact()]}
    body["entry"] = [{"id": "6", "changes": [change | {"value": value}]}]
    [event] = webhook().parse({}, json.dumps(body).encode())
    assert json.loads(event.body)["contact"]["wa_id"] == "79161234567"


def test_a_message_or_status_whose_id_no_key_can_carry_is_dropped_alone() -> None:
    """The edge refuses a whole delivery for one event id it cannot queue (Meta would send it
    again for 7 days, good messages and all): the parser leaves that one event out first."""
    raw = notification(
        {"contacts": [contact()], "messages": [text("x" * 300), text("wamid.1")]},
        {
            "statuses": [
                {"id": "wamid.\u0007", "status": "read"},
                {"id": "wamid.o", "status": "read"},
            ]
        },
    )
    events = webhook().parse({}, raw)
    assert [e.event_id for e in events] == ["m:wamid.1", "s:wamid.o:read"]


def test_a_message_nested_deeper_than_is_written_back_is_dropped() -> None:
    deep = text("wamid.d") | {"extra": json.loads("[" * 300 + "]" * 300)}
    raw = notification({"contacts": [contact()], "messages": [deep, text("wamid.1")]})
    assert [e.event_id for e in webhook().parse({}, raw)] == ["m:wamid.1"]


@pytest.mark.parametrize(
    ("stamp", "seconds"), [("1780000000", 1780000000), ("²", 0), ("٣", 0), ("1" * 5000, 0)]
)
def test_only_ascii_digit_timestamps_are_read(stamp: str, seconds: int) -> None:
    assert Message(id="wamid.t", timestamp=stamp).sent_at == seconds
