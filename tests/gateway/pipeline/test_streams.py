"""What travels through the streams keeps its shape on the wire: `Author` is an enum in code
and the same bare string in Redis, so messages queued before the enum are read as ever."""

from __future__ import annotations

from redis.asyncio import Redis

from gateway.pipeline.keys import Keys
from gateway.pipeline.streams import Author, Outgoing

FIELDS = ("channel", "chat", "method", "params", "ephemeral", "origin", "author", "failure")


async def test_messages_queued_before_the_enum_are_read_with_their_author(
    redis: Redis, salon_id: str
) -> None:
    stream = Keys(salon_id, 1).outbound(0)
    for author in ("bot", "handoff", "staff", "desk", "notice"):
        await redis.xadd(
            stream,
            {
                "channel": "telegram",
                "chat": "5",
                "method": "sendMessage",
                "params": "{}",
                "author": author,
            },
        )
    # The oldest entries carry no author at all: they were the bot's.
    await redis.xadd(
        stream, {"channel": "telegram", "chat": "5", "method": "sendMessage", "params": "{}"}
    )
    read = [Outgoing.from_fields(fields) for _, fields in await redis.xrange(stream)]
    assert [message.author for message in read] == [
        Author.BOT,
        Author.HANDOFF,
        Author.STAFF,
        Author.HELP_DESK,
        Author.NOTICE,
        Author.BOT,
    ]
    assert all(type(message.author) is Author for message in read)


async def test_an_author_is_written_as_the_string_it_always_was(
    redis: Redis, salon_id: str
) -> None:
    stream = Keys(salon_id, 1).outbound(0)
    for author in Author:
        message = Outgoing("telegram", "5", "sendMessage", {}, author=author)
        await redis.xadd(stream, dict(zip(FIELDS, message.to_fields("1-0"), strict=True)))
    written = [fields[b"author"] for _, fields in await redis.xrange(stream)]
    assert written == [b"bot", b"handoff", b"staff", b"desk", b"notice"]


def test_params_are_written_as_the_stdlib_writes_them() -> None:
    """orjson writes a message's parameters; the text is the stdlib's compact, UTF-8 JSON, and
    what orjson refuses is written by the stdlib as before (read back the same)."""
    import json

    common = {
        "chat_id": 5,
        "text": "Привет, Anna! 💇\n\t\x00 \u2028 </b>",
        "reply_markup": {"inline_keyboard": [[{"text": "Записаться", "callback_data": "m:book"}]]},
        "disable_notification": True,
        "reply_to": None,
        "ratio": 0.1,
    }
    refused = ({1: "a non-string key"}, {"huge": 2**70}, {"text": "lone \ud800"})
    for params in (common, *refused):
        fields = Outgoing("telegram", "5", "sendMessage", params).to_fields("1-0")
        assert fields[3] == json.dumps(params, ensure_ascii=False, separators=(",", ":"))
