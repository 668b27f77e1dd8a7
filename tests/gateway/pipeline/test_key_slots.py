"""On a Redis Cluster every Lua script and every multi-key command must keep to one slot: each
key is built by `Keys` under its salon's hash tag, so a salon's keys share its slot.

The slot is redis-py's own `key_slot` (CRC16 of the hash tag, mod 16384), as the cluster
client routes by it; tests/cluster/ runs the same steps on a real cluster."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest
from redis.crc import key_slot

from gateway.pipeline.keys import Keys, RegistryKeys

# Ids as clients and providers send them, braces included: only the first {…} of a key is its
# tag, and that is the salon's.
AWKWARD = ["501", "{x}", "}{", "wamid.HBgL{1}==", "a@b.example", "+7 (495) 123", "гость"]


def built(keys: Keys) -> Iterator[tuple[str, str]]:
    """(builder, key) for every key `Keys` builds, its methods called with awkward ids."""
    for name, member in inspect.getmembers(type(keys)):
        if name.startswith("_") or name in ("shard_of", "pattern"):
            continue
        if isinstance(member, property):
            yield name, getattr(keys, name)
            continue
        if not callable(member):
            continue
        parameters = list(inspect.signature(member).parameters.values())[1:]
        for value in AWKWARD:
            args = [7 if p.annotation in (int, "int") else value for p in parameters]
            yield name, getattr(keys, name)(*args)


@pytest.mark.parametrize("salon", ["main", "t0a1b2c3d4", "salon_9-x"])
def test_every_key_of_a_salon_is_in_its_slot(salon: str) -> None:
    keys = Keys(salon, 16)
    found = list(built(keys))
    # Every builder was reached (a new one is picked up by itself).
    assert {name for name, _ in found} >= {"inbound", "session", "dead_letters", "analytics"}
    assert len({name for name, _ in found}) >= 33
    slots = {key: key_slot(key.encode()) for _, key in found}
    assert set(slots.values()) == {key_slot(salon.encode())}, slots


def test_salons_spread_over_the_cluster() -> None:
    """Distinct salons land in distinct slots (the cluster spreads them)."""
    slots = {key_slot(Keys(f"salon-{n}", 8).inbound(0).encode()) for n in range(1000)}
    assert len(slots) > 900


def one_slot(keys: list[str]) -> bool:
    return len({key_slot(key.encode()) for key in keys}) == 1


def test_each_scripts_keys_share_one_slot() -> None:
    """The KEYS of each Lua script and the keys of each transaction, as their callers build
    them (gateway/pipeline/{inbox,workers,outbox,metrics,dlq}.py, the integrations)."""
    keys = Keys("main", 8)
    events = [("telegram", f"u{n}", f"tg:{n}") for n in range(40)]
    ingest = [
        k
        for source, event, conversation in events
        for k in (keys.dedup(source, event), keys.inbound(keys.shard_of(conversation)))
    ]
    assert len({keys.shard_of(c) for _, _, c in events}) == 8  # one call, every shard
    scripts = {
        "inbox ingest": ingest,
        "workers commit": [
            keys.lease(3),
            keys.inbound(3),
            keys.attempts(3),
            keys.outbound(3),
            keys.session("whatsapp", "4477"),
            keys.analytics,
            # `Outcome.clear`: WhatsApp's parked messages, delivered (WhatsAppState.parked_keys)
            keys.whatsapp_parked("4477"),
            keys.whatsapp_parked_ids("4477"),
            keys.whatsapp_notice("4477"),
        ],
        "workers bury": [
            keys.lease(3),
            keys.inbound(3),
            keys.attempts(3),
            keys.dead_letters,
            keys.analytics,
        ],
        "outbox bury": [
            keys.lease(5),
            keys.outbound(5),
            keys.send_attempts(5),
            keys.dead_letters,
            keys.analytics,
        ],
        "outbox done": [keys.lease(5), keys.outbound(5), keys.send_attempts(5)],
        "queue stats": [*map(keys.inbound, range(8)), *map(keys.outbound, range(8))],
        "dlq replay": [keys.outbound(2), keys.dead_letters],
        "novu record and sent": [keys.notices_due, keys.notice("booking-1:reminder")],
        "helpdesk mapping": [
            keys.helpdesk_client("telegram", "501"),
            keys.helpdesk_conversation(12),
        ],
        "whatsapp park": [
            keys.whatsapp_window("4477"),
            keys.whatsapp_parked("4477"),
            keys.whatsapp_parked_ids("4477"),
            keys.whatsapp_notice("4477"),
        ],
        "analytics writer": [keys.analytics_writer, keys.analytics],
        "worker members": [keys.members],
    }
    assert {name: one_slot(names) for name, names in scripts.items()} == dict.fromkeys(
        scripts, True
    )


def test_the_registry_channel_needs_no_slot() -> None:
    """The registry's names are a pub/sub channel (any node hears a PUBLISH to any other) and
    a lock and a marker used only on a single node (gateway/pipeline/key_migration.py)."""
    registry = RegistryKeys()
    assert registry.salons_changed.startswith("fd:_registry:")
    assert "{" not in registry.key_migration + registry.keys_tagged
