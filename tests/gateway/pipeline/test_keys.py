"""Every Redis key is built by `Keys`, under its salon's hash tag; data already in Redis under the
untagged names (a client's WhatsApp window, a help desk mapping, who owns a conversation) is
found after an upgrade, once the keys are migrated (tests/gateway/pipeline/test_key_migration.py
covers the renaming itself)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.session import Owner
from gateway.integrations.calcom.bookings import BookingLinks
from gateway.integrations.chatwoot.helpdesk import HelpDeskState
from gateway.integrations.whatsapp.state import WhatsAppState
from gateway.pipeline.conversation import Conversation
from gateway.pipeline.key_migration import migrate_keys
from gateway.pipeline.keys import Keys, RegistryKeys

ROOT = Path(__file__).resolve().parents[3]
HOME = ROOT / "gateway" / "pipeline" / "keys.py"


def test_the_keys_keep_their_names_under_the_salons_tag() -> None:
    keys = Keys("salon", 4)
    assert [
        keys.analytics_writer,
        keys.owner("telegram", "501"),
        keys.helpdesk_client("whatsapp", "447700900777"),
        keys.helpdesk_conversation(12),
        keys.helpdesk_watched,
        keys.helpdesk_echo(12, "open"),
        keys.helpdesk_posting(12, "gw:in:7"),
        keys.helpdesk_seen,
        keys.helpdesk_transcript("telegram", "501"),
        keys.whatsapp_window("4477"),
        keys.whatsapp_parked("4477"),
        keys.whatsapp_parked_ids("4477"),
        keys.whatsapp_notice("4477"),
        keys.whatsapp_sent("wamid.1"),
        keys.whatsapp_status("wamid.1"),
        keys.client_by_phone("+4477"),
        keys.client_by_email("a@b.example"),
        keys.booking("uid1"),
        keys.booking_changing("uid1"),
        keys.calcom_cursor,
    ] == [
        "fd:{salon}:analytics:writer",
        "fd:{salon}:owner:telegram:501",
        "fd:{salon}:cw:client:whatsapp:447700900777",
        "fd:{salon}:cw:conv:12",
        "fd:{salon}:cw:human",
        "fd:{salon}:cw:echo:12:open",
        "fd:{salon}:cw:posting:12:gw:in:7",
        "fd:{salon}:cw:seen",
        "fd:{salon}:cw:transcript:telegram:501",
        "fd:{salon}:wa:window:4477",
        "fd:{salon}:wa:parked:4477",
        "fd:{salon}:wa:parked-ids:4477",
        "fd:{salon}:wa:notice:4477",
        "fd:{salon}:wa:sent:wamid.1",
        "fd:{salon}:wa:status:wamid.1",
        "fd:{salon}:client:phone:+4477",
        "fd:{salon}:client:email:a@b.example",
        "fd:{salon}:booking:uid1",
        "fd:{salon}:booking:uid1:by-chat",
        "fd:{salon}:calcom:cursor",
    ]


def test_the_registry_channel_is_no_salons() -> None:
    # "_" cannot begin a salon id: no salon's `fd:<salon>:` names can meet it.
    assert RegistryKeys().salons_changed == "fd:_registry:salons:changed"


async def test_state_written_under_the_old_names_is_read(redis: Redis, salon_id: str) -> None:
    """Keys as the stores wrote them before `Keys` built them (and before the hash tag), read
    through the stores once the keys are migrated."""
    keys = Keys(salon_id, 4)
    prefix = f"fd:{salon_id}"
    await redis.set(f"{prefix}:owner:telegram:501", "human")
    await redis.set(f"{prefix}:cw:conv:12", "tg:501")
    await redis.set(f"{prefix}:wa:window:4477", "1700000000")
    await redis.set(f"{prefix}:client:email:a@b.example", "wa:4477")
    assert (await migrate_keys(redis)).renamed >= 4
    helpdesk = HelpDeskState(redis, keys)
    assert await helpdesk.human_owns("telegram", "501")
    assert await helpdesk.conversation_of(12) == Conversation("telegram", "501")
    assert await WhatsAppState(redis, keys).window_open("4477", 1700000000 + 3600)
    links = BookingLinks(redis, keys)
    assert await links.find(phone=None, email="A@b.example") == "wa:4477"


async def test_the_owner_key_holds_the_owner_as_ever(redis: Redis, salon_id: str) -> None:
    keys = Keys(salon_id, 4)
    helpdesk = HelpDeskState(redis, keys)
    await helpdesk.set_human("whatsapp", "4477")
    assert await redis.get(f"fd:{{{salon_id}}}:owner:whatsapp:4477") == Owner.HUMAN.value.encode()
    await helpdesk.set_bot("whatsapp", "4477")
    assert not await helpdesk.human_owns("whatsapp", "4477")


# What a Keys holds besides keys: the salon's id also names other things (an analytics fact).
NOT_KEYS = {"salon_id", "shards"}


def _builds_keys(node: ast.AST) -> bool:
    """`keys.<key>` or `<something>.keys.<key>`: a key read from a Keys instance."""
    if not isinstance(node, ast.Attribute) or node.attr in NOT_KEYS:
        return False
    owner = node.value
    return (isinstance(owner, ast.Name) and owner.id == "keys") or (
        isinstance(owner, ast.Attribute) and owner.attr == "keys"
    )


def stray_keys(source: str) -> list[int]:
    """Lines that build a Redis key outside `Keys`: a literal `fd:` key, the salon's prefix
    read from a Keys, or a Keys key extended in an f-string."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.startswith("fd:"):
                found.append(node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr == "prefix" and _builds_keys(node):
            found.append(node.lineno)
        elif isinstance(node, ast.JoinedStr):
            parts = (v for v in node.values if isinstance(v, ast.FormattedValue))
            if any(_builds_keys(part.value) for part in parts):
                found.append(node.lineno)
    return sorted(set(found))


@pytest.mark.parametrize(
    "source",
    [
        'key = "fd:{salon}:owner:telegram:1"',
        'key = ":".join((self.keys.prefix, "cw", "seen"))',
        'key = f"{keys.prefix}:wa:window:{chat}"',
        'lock = f"{keys.analytics}:writer"',
    ],
)
def test_the_guard_sees_a_key_built_elsewhere(source: str) -> None:
    assert stray_keys(source) == [1]


def test_the_guard_lets_a_key_from_keys_pass() -> None:
    source = 'key = self.keys.owner(channel, chat)\nfact = f"{self.keys.salon_id}:{event}"'
    assert stray_keys(source) == []


def test_no_module_builds_a_redis_key_of_its_own() -> None:
    modules = [
        path
        for package in ("bot", "gateway", "handlers")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != HOME
    ]
    assert len(modules) > 50
    stray = {
        str(path.relative_to(ROOT)): lines
        for path in modules
        if (lines := stray_keys(path.read_text(encoding="utf-8")))
    }
    assert stray == {}
