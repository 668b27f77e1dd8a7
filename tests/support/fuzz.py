"""Hypothesis strategies for webhook bodies: real-shaped payloads with mutated fields, wrong
types, missing keys, and raw JSON text that no serializer writes (huge numbers, deep nesting,
lone surrogates, NaN), plus random bytes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

NUMBER_ID = "106540352242922"
JSON = dict[str, Any]

# Real-shaped payloads, one per route (fields as each vendor documents them).
TEMPLATES: dict[str, JSON] = {
    "telegram": {
        "update_id": 5001,
        "message": {
            "message_id": 7,
            "date": 1_790_000_000,
            "chat": {"id": 700, "type": "private", "first_name": "Anna"},
            "from": {"id": 700, "is_bot": False, "first_name": "Anna", "language_code": "en"},
            "text": "Hello",
        },
    },
    "whatsapp": {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"phone_number_id": NUMBER_ID},
                            "contacts": [{"profile": {"name": "Maria"}, "wa_id": "79161234567"}],
                            "messages": [
                                {
                                    "from": "79161234567",
                                    "id": "wamid.fuzz",
                                    "timestamp": "1790000000",
                                    "type": "text",
                                    "text": {"body": "Hi"},
                                }
                            ],
                            "statuses": [
                                {
                                    "id": "wamid.out",
                                    "status": "delivered",
                                    "timestamp": "1790000000",
                                    "recipient_id": "79161234567",
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    },
    "chatwoot": {
        "event": "message_created",
        "id": 55,
        "content": "We open at ten",
        "message_type": "outgoing",
        "private": False,
        "created_at": "2026-06-01T10:00:00Z",
        "sender": {"id": 3, "type": "user", "name": "Olga"},
        "attachments": [],
        "conversation": {"id": 12, "status": "open", "contact_inbox": {"source_id": "tg:700"}},
    },
    "calcom": {
        "triggerEvent": "BOOKING_CREATED",
        "createdAt": "2026-06-01T10:00:00.000Z",
        "payload": {
            "uid": "bk-fuzz",
            "startTime": "2026-06-03T07:00:00Z",
            "endTime": "2026-06-03T08:00:00Z",
            "eventTitle": "Haircut",
            "attendees": [{"name": "Anna", "email": "a@example.com", "language": {"locale": "en"}}],
            "metadata": {"frontdesk_channel": "telegram", "frontdesk_chat": "700"},
        },
    },
    "novu": {
        "transaction": "fd-fuzz-1",
        "kind": "confirmed",
        "bookingUid": "bk-fuzz",
        "conversation": "tg:700",
        "start": "2026-06-03T07:00:00Z",
        "messenger": "",
    },
}

# Raw JSON text that `json.dumps` cannot write but a hostile sender can: each stood in for by a
# marker string and put into the bytes after dumping.
HOSTILE = {
    "huge": b"1" * 5000,  # past Python's 4,300-digit limit for int()
    "negative_huge": b"-" + b"9" * 4400,
    "deep": b"[" * 1200 + b"]" * 1200,  # past any JSON parser's nesting limit
    "deep_object": b'{"a":' * 1100 + b"1" + b"}" * 1100,
    "nan": b"NaN",
    "infinity": b"-Infinity",
    "overflow": b"1e999",
    "lone_high": b'"\\ud800"',
    "lone_low": b'"x\\udc00y"',
    "big_int": b"123456789012345678901234567890",
}


def json_values() -> st.SearchStrategy[Any]:
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20)
        | st.sampled_from([f"\x00HOSTILE:{name}" for name in HOSTILE])
    )
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=8), children, max_size=3)
        ),
        max_leaves=8,
    )


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


def dumped(value: Any) -> bytes:
    raw = json.dumps(value, ensure_ascii=False).encode()
    for name, token in HOSTILE.items():
        raw = raw.replace(json.dumps(f"\x00HOSTILE:{name}").encode(), token)
    return raw


@st.composite
def mutated(draw: st.DrawFn, template: JSON) -> bytes:
    """The template with a few of its fields replaced, removed or given hostile values."""
    body: Any = json.loads(json.dumps(template))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        where = draw(st.sampled_from(paths(body)))
        replacement = draw(json_values())
        if not where:
            body = replacement
            continue
        parent = body
        for step in where[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and draw(st.booleans()) and draw(st.booleans()):
            del parent[where[-1]]
        else:
            parent[where[-1]] = replacement
    return dumped(body)


def bodies(route: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        mutated(TEMPLATES[route]),
        json_values().map(dumped),
        st.binary(max_size=64),
        st.sampled_from(list(HOSTILE.values())),
    )
