"""The links between one client's chats, against Redis: who is linked with whom, which chat
names the client, where notices go, and "this is not me"."""

from __future__ import annotations

from redis.asyncio import Redis

from gateway.pipeline import Conversation, Identities
from gateway.pipeline.keys import Keys

NUMBER = "+79160000901"
TG = Conversation("telegram", "901")
WA = Conversation("whatsapp", "79160000901")


def identities(redis: Redis, salon_id: str) -> Identities:
    return Identities(redis, Keys(salon_id, 4))


async def test_two_messengers_on_one_number_are_linked_and_the_first_names_the_client(
    redis: Redis, salon_id: str
) -> None:
    ids = identities(redis, salon_id)
    assert await ids.verify(WA, NUMBER, 100.0) is None  # alone: no link
    linked = await ids.verify(TG, NUMBER, 100.0)  # the same tick of the clock
    assert linked is not None
    assert linked.joined
    assert linked.others == (WA,)
    assert linked.anchor == WA
    assert await ids.anchor(TG) == WA
    assert await ids.anchor(WA) == WA
    # Verified again (each WhatsApp message): still linked, not joined anew.
    again = await ids.verify(WA, NUMBER, 200.0)
    assert again is not None
    assert not again.joined
    assert again.others == (TG,)


async def test_notices_go_to_the_chat_used_last_or_chosen(redis: Redis, salon_id: str) -> None:
    ids = identities(redis, salon_id)
    alone = Conversation("telegram", "42")
    assert await ids.route(alone) == alone
    assert not await ids.choose(alone)
    await ids.verify(WA, NUMBER, 100.0)
    await ids.verify(TG, NUMBER, 100.0)
    assert await ids.route(WA) == TG  # Telegram was used last (within the same tick)
    await ids.used(WA, 100.0)
    assert await ids.route(TG) == WA
    assert await ids.choose(TG)
    await ids.used(WA, 300.0)
    assert await ids.route(WA) == TG  # chosen beats used last


async def test_this_is_not_me_unlinks_for_good(redis: Redis, salon_id: str) -> None:
    ids = identities(redis, salon_id)
    await ids.verify(WA, NUMBER, 100.0)
    await ids.verify(TG, NUMBER, 110.0)
    await ids.choose(TG)
    assert await ids.unlink(TG) == (WA,)
    assert await ids.linked(TG) is None
    assert await ids.linked(WA) is None
    assert await ids.route(WA) == WA
    # Sharing the number again links nothing: the client said it is not them.
    assert await ids.verify(TG, NUMBER, 120.0) is None
    assert await ids.verify(WA, NUMBER, 130.0) is None
    assert await ids.unlink(Conversation("telegram", "7")) == ()
    # Everything expires: a link holds a phone number.
    keys = [key async for key in redis.scan_iter(match=f"{Keys(salon_id, 1).prefix}:ident:*")]
    assert keys
    for key in keys:
        assert await redis.ttl(key) > 300 * 24 * 3600


async def test_a_number_belongs_to_the_newest_account_of_a_messenger_and_moves_with_it(
    redis: Redis, salon_id: str
) -> None:
    ids = identities(redis, salon_id)
    old = Conversation("telegram", "1")
    await ids.verify(WA, NUMBER, 100.0)
    assert await ids.verify(old, NUMBER, 110.0) is not None
    # The number now belongs to another Telegram account (numbers are recycled).
    linked = await ids.verify(TG, NUMBER, 120.0)
    assert linked is not None
    assert linked.others == (WA,)
    assert await ids.linked(old) is None
    # The client's Telegram account changes its number: the old link is left.
    assert await ids.verify(TG, "+79160000999", 130.0) is None
    assert await ids.linked(WA) is None
