"""The registry in a real PostgreSQL: salons written, read, encrypted at rest, rotated."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from gateway.analytics.store import migrate as migrate_analytics
from gateway.pipeline.keys import RegistryKeys
from gateway.salons import (
    NoSuchSalon,
    SalonExists,
    SalonRegistry,
    SecretCipher,
    SecretsKeyError,
)
from gateway.settings import SettingsError
from gateway.sql_migrations import Schema
from tests.analytics_db import analytics_db as analytics_db  # the fixture

TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvw"
KEY = Fernet.generate_key().decode()
NORD = {
    "SALON_NAME": "Studio Nord",
    "SALON_TIMEZONE": "Europe/Moscow",
    "DEFAULT_LOCALE": "ru",
    "TELEGRAM_BOT_TOKEN": TOKEN,
    "TELEGRAM_WEBHOOK_SECRET": "nord-webhook-secret",
    "CALCOM_API_URL": "https://cal.example/v2",
    "CALCOM_API_KEY": "cal_live_nord_0123456789",
}


@pytest.fixture
async def registry(analytics_db: str) -> AsyncIterator[SalonRegistry]:
    registry = await SalonRegistry.open(analytics_db, SecretCipher(KEY))
    yield registry
    await registry.close()


async def raw_rows(url: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        return [str(dict(row)) for row in await connection.fetch("SELECT * FROM salons")]
    finally:
        await connection.close()


async def test_a_salon_is_stored_with_its_secrets_sealed(
    registry: SalonRegistry, analytics_db: str
) -> None:
    added = await registry.add("nord", NORD)
    assert added.enabled
    assert added.name == "Studio Nord"
    assert added.secret_names == {"TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "CALCOM_API_KEY"}
    assert added.secrets == {}  # sealed until asked for
    assert added.services() == ["telegram", "calcom"]

    (row,) = await raw_rows(analytics_db)
    assert "Studio Nord" in row
    for secret in (TOKEN, "nord-webhook-secret", "cal_live_nord_0123456789"):
        assert secret not in row
    # Nor do the secrets show in what a log line or a traceback would print.
    assert TOKEN not in repr(await registry.get("nord", decrypt=True))

    (loaded,) = (await registry.load_all()).values()
    assert loaded.environment() == NORD
    settings = loaded.settings()
    assert settings.profile.id == "nord"
    assert settings.profile.timezone == "Europe/Moscow"
    assert settings.telegram is not None
    assert settings.telegram.bot_token.get_secret_value() == TOKEN


async def test_invalid_values_write_nothing(registry: SalonRegistry) -> None:
    with pytest.raises(SettingsError) as caught:
        await registry.add("nord", {**NORD, "REDIS_URL": "redis://x", "SALON_TIMEZONE": "Nowhere"})
    assert len(caught.value.problems) == 2
    assert await registry.all_salons() == []

    await registry.add("nord", NORD)
    with pytest.raises(SettingsError, match="TELEGRAM_WEBHOOK_SECRET: required"):
        await registry.update("nord", {"TELEGRAM_WEBHOOK_SECRET": ""})
    assert (await registry.get("nord", decrypt=True)).environment() == NORD


async def test_update_changes_and_removes_values_and_bumps_the_version(
    registry: SalonRegistry,
) -> None:
    added = await registry.add("nord", NORD)
    updated = await registry.update(
        "nord", {"SALON_NAME": "Nord", "CALCOM_API_KEY": "", "CALCOM_API_URL": ""}
    )
    assert updated.version > added.version
    assert updated.created_at == added.created_at
    assert updated.updated_at >= added.updated_at
    assert updated.name == "Nord"
    assert updated.secret_names == {"TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET"}
    assert "CALCOM_API_URL" not in updated.values
    with pytest.raises(NoSuchSalon):
        await registry.update("south", {"SALON_NAME": "South"})
    with pytest.raises(SalonExists):
        await registry.add("nord", {"SALON_NAME": "Again"})


async def test_only_enabled_salons_are_loaded(registry: SalonRegistry) -> None:
    await registry.add("nord", NORD)
    await registry.add("south", {"SALON_NAME": "South"}, enabled=False)
    assert list(await registry.load_all()) == ["nord"]
    assert [s.id for s in await registry.all_salons()] == ["nord", "south"]
    await registry.set_enabled("south", True)
    disabled = await registry.set_enabled("nord", False)
    assert not disabled.enabled
    assert list(await registry.load_all()) == ["south"]
    assert await registry.fingerprint() == {
        ("south", (await registry.get("south")).version, True),
        ("nord", disabled.version, False),
    }
    await registry.remove("south")
    assert await registry.load_all() == {}
    for missing in (registry.remove("south"), registry.set_enabled("south", True)):
        with pytest.raises(NoSuchSalon):
            await missing
    with pytest.raises(NoSuchSalon):
        await registry.get("south")


async def test_a_salon_added_again_never_repeats_a_version(registry: SalonRegistry) -> None:
    first = await registry.add("nord", {"SALON_NAME": "Nord"})
    await registry.remove("nord")
    again = await registry.add("nord", {"SALON_NAME": "Nord"})
    assert again.version > first.version


async def test_a_wrong_secrets_key_is_a_clear_error(analytics_db: str) -> None:
    writer = await SalonRegistry.open(analytics_db, SecretCipher(KEY))
    await writer.add("nord", NORD)
    await writer.close()
    reader = await SalonRegistry.open(analytics_db, SecretCipher(Fernet.generate_key().decode()))
    try:
        with pytest.raises(SecretsKeyError, match=r"salon nord: \w+ cannot be decrypted"):
            await reader.load_all()
        with pytest.raises(SecretsKeyError):
            await reader.update("nord", {"SALON_NAME": "Nord"})
        # What needs no secret still works.
        assert [s.id for s in await reader.all_salons()] == ["nord"]
    finally:
        await reader.close()
    keyless = await SalonRegistry.open(analytics_db, None)
    try:
        with pytest.raises(SecretsKeyError, match="SECRETS_KEY is not set"):
            await keyless.add(
                "south", {"CALCOM_API_KEY": "k", "CALCOM_API_URL": "https://c.example"}
            )
        assert (await keyless.add("south", {"SALON_NAME": "South"})).secret_names == set()
    finally:
        await keyless.close()


async def test_rotation_re_encrypts_every_secret_with_the_first_key(analytics_db: str) -> None:
    old = await SalonRegistry.open(analytics_db, SecretCipher(KEY))
    await old.add("nord", NORD)
    await old.add("plain", {"SALON_NAME": "No secrets"})
    before = await old.get("nord")
    await old.close()

    new_key = Fernet.generate_key().decode()
    both = await SalonRegistry.open(analytics_db, SecretCipher(f"{new_key},{KEY}"))
    assert await both.rotate_secrets() == (3, 1)
    assert (await both.get("nord")).version == before.version  # the values did not change
    await both.close()

    new = await SalonRegistry.open(analytics_db, SecretCipher(new_key))
    try:
        assert (await new.get("nord", decrypt=True)).environment() == NORD
    finally:
        await new.close()


async def test_the_registry_shares_a_database_with_the_analytics(analytics_db: str) -> None:
    connection = await asyncpg.connect(analytics_db)
    try:
        assert await migrate_analytics(connection) == [
            "0001_events",
            "0002_previous_booking",
            "0003_owner_reports",
        ]
        registry = await SalonRegistry.open(analytics_db, None)
        await registry.close()
        again = await SalonRegistry.open(analytics_db, None)
        await again.close()
        assert await migrate_analytics(connection) == []
        tables = {
            row["tablename"]
            for row in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        }
        assert {"events", "schema_migrations", "salons", "salon_migrations"} <= tables
        assert await connection.fetchval("SELECT count(*) FROM salon_migrations") == 1
    finally:
        await connection.close()


async def test_every_write_is_announced(analytics_db: str, redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(RegistryKeys().salons_changed)
    registry = await SalonRegistry.open(analytics_db, SecretCipher(KEY), redis)
    try:
        await registry.add("nord", NORD)
        await registry.update("nord", {"SALON_NAME": "Nord"})
        await registry.set_enabled("nord", False)
        await registry.set_enabled("nord", True)
        await registry.rotate_secrets()
        await registry.remove("nord")
        changes = []
        deadline = time.monotonic() + 5
        while len(changes) < 6:
            assert time.monotonic() < deadline, changes
            message = await pubsub.get_message(timeout=1)
            if message is None:  # the subscription's confirmation, or nothing yet
                continue
            notice = json.loads(message["data"])
            if notice.get("salon", "nord") == "nord":  # another test's writes may pass by
                changes.append(notice["change"])
        assert changes == ["added", "updated", "disabled", "enabled", "rotated", "removed"]
    finally:
        await registry.close()
        await pubsub.aclose()
        await redis.aclose()


async def test_a_write_with_redis_down_is_written_all_the_same(analytics_db: str) -> None:
    redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    registry = await SalonRegistry.open(analytics_db, SecretCipher(KEY), redis)
    try:
        await registry.add("nord", {"SALON_NAME": "Nord"})
        assert [s.id for s in await registry.all_salons()] == ["nord"]
    finally:
        await registry.close()
        await redis.aclose()


def test_a_schemas_record_table_is_a_plain_name() -> None:
    with pytest.raises(ValueError, match="not a plain table name"):
        Schema(Path("."), "salons; DROP TABLE events", 1)
