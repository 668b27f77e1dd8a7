"""Reading webhook JSON and signature timestamps: one bounded outcome for hostile input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.pipeline import webhook_json
from gateway.pipeline.conversation import Conversation
from gateway.pipeline.edge import Malformed
from gateway.pipeline.streams import Unreadable


@pytest.mark.parametrize(
    "raw",
    [
        b"1" * 5000,
        b"[" * 1100 + b"]" * 1100,
        b'"\\ud800"',
        b'["\\udc00"]',
        b"NaN",
        b"[Infinity]",
        b"1e999",
        b"\xff",
        b"",
    ],
)
def test_hostile_json_is_malformed(raw: bytes) -> None:
    with pytest.raises(Malformed, match="not JSON"):
        webhook_json.load(raw)


def test_a_paired_surrogate_escape_is_an_emoji_and_big_integers_are_doubles() -> None:
    assert webhook_json.load(b'"\\ud83d\\ude00"') == "😀"
    assert webhook_json.load(b"123456789012345678901234567890") == pytest.approx(1.2345e29, 1e-3)


def test_only_objects_are_webhook_bodies() -> None:
    assert webhook_json.load_object(b'{"a": 1}') == {"a": 1}
    with pytest.raises(Malformed, match="not a JSON object"):
        webhook_json.load_object(b"[1]")


def test_a_queued_body_that_cannot_be_read_is_unreadable_in_the_worker() -> None:
    with pytest.raises(Unreadable):
        webhook_json.entry_object(b"[1]")
    with pytest.raises(Unreadable):
        webhook_json.entry_object(b"NaN")


@pytest.mark.parametrize(
    ("value", "number"), [(7, 7), (-3, -3), (True, None), (7.0, None), ("7", None), (None, None)]
)
def test_whole_numbers(value: object, number: int | None) -> None:
    assert webhook_json.whole_number(value) == number


@pytest.mark.parametrize(
    ("stamp", "number"),
    [
        ("1790000000", 1790000000),
        ("1790000000123", 1790000000123),
        ("²", None),
        ("٣", None),
        ("1" * 400, None),
        ("-1790000000", None),
        ("1790000000.5", None),
        ("1790000000\n", None),
        ("", None),
    ],
)
def test_signature_timestamps_are_ascii_digits(stamp: str, number: int | None) -> None:
    assert webhook_json.stamp_of(stamp) == number


@pytest.mark.parametrize(
    ("key", "conversation"),
    [
        ("tg:42", Conversation("telegram", "42")),
        ("tg:-1001234", Conversation("telegram", "-1001234")),
        ("wa:79161234567", Conversation("whatsapp", "79161234567")),
        ("wa:US.13491208655302741918", Conversation("whatsapp", "US.13491208655302741918")),
        ("tg:abc", None),
        ("tg:", None),
        ("wa:+7 916", None),
        ("wa:" + "1" * 141, None),
        ("cw:7", None),
        ("tg:\udc00", None),
    ],
)
def test_a_conversation_key_from_a_webhook_is_checked(
    key: str, conversation: Conversation | None
) -> None:
    assert Conversation.from_key(key) == conversation


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("2026-06-02T07:00:00Z", datetime(2026, 6, 2, 7, 0, tzinfo=UTC)),
        ("2026-06-02T10:00:00+03:00", datetime(2026, 6, 2, 7, 0, tzinfo=UTC)),
        ("2026-06-02T07:00:00", None),  # naive: no instant
        ("0001-01-01T00:00:00+01:00", None),  # before year 1 in UTC: OverflowError
        ("9999-12-31T23:59:59-01:00", None),
        ("soon", None),
        (20260602, None),
    ],
)
def test_instants_are_utc_or_none(value: object, moment: datetime | None) -> None:
    assert webhook_json.instant(value) == moment
