"""`frontdesk check --salon` and `frontdesk dlq ... --salon`: a registry salon's own settings,
webhook URLs and dead letters."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from gateway.salons import SalonRegistry, SecretCipher
from tests.analytics_db import analytics_db as analytics_db  # the fixture
from tests.conftest import TOKEN, Sandbox
from tests.gateway.test_cli import operator_env as operator_env  # the fixture
from tests.gateway.test_cli import run

SECRETS_KEY = Fernet.generate_key().decode()
SALON_SECRET = "registry-salon-secret"


@pytest.fixture
async def registry(
    analytics_db: str, monkeypatch: pytest.MonkeyPatch, operator_env: None
) -> AsyncIterator[SalonRegistry]:
    monkeypatch.setenv("DATABASE_URL", analytics_db)
    monkeypatch.setenv("SECRETS_KEY", SECRETS_KEY)
    registry = await SalonRegistry.open(analytics_db, SecretCipher(SECRETS_KEY))
    yield registry
    await registry.close()


@pytest.fixture
async def other_salon(salon_id: str, redis: Redis) -> AsyncIterator[str]:
    other = f"{salon_id}x"
    yield other
    keys = [key async for key in redis.scan_iter(match=f"fd:{{{other}}}:*")]
    if keys:
        await redis.delete(*keys)


async def test_check_a_registry_salon_with_its_own_settings_and_urls(
    registry: SalonRegistry,
    monkeypatch: pytest.MonkeyPatch,
    sandbox: Sandbox,
    other_salon: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await registry.add(
        other_salon,
        {
            "SALON_NAME": "Studio Süd",
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_WEBHOOK_SECRET": SALON_SECRET,
            "TELEGRAM_API_URL": sandbox.url,
        },
    )
    assert await run("check", "--salon", other_salon) == 1
    out = capsys.readouterr().out
    expected = f"https://salon.example/webhooks/telegram/{other_salon}"
    assert f"webhook not set (expected {expected}" in out
    assert "[off ] calcom" in out
    async with ClientSession() as http:
        await http.post(
            f"{sandbox.url}/bot{TOKEN}/setWebhook",
            json={"url": expected, "secret_token": SALON_SECRET},
        )
    assert await run("check", "--salon", other_salon) == 0
    out = capsys.readouterr().out
    assert f"[ok  ] telegram  @frontdesk_sandbox_bot; webhook {expected}" in out
    assert TOKEN not in out
    await registry.set_enabled(other_salon, False)
    assert await run("check", "--salon", other_salon) == 0
    assert f"salon {other_salon} is disabled" in capsys.readouterr().out

    assert await run("check", "--salon", "nobody") == 1
    assert "no salon nobody" in capsys.readouterr().err
    monkeypatch.setenv("SECRETS_KEY", Fernet.generate_key().decode())  # not the salon's
    assert await run("check", "--salon", other_salon) == 2
    assert f"salon {other_salon}: TELEGRAM_" in capsys.readouterr().err
    monkeypatch.setenv("SECRETS_KEY", "not-a-key")
    assert await run("check", "--salon", other_salon) == 2
    assert await run("check", "--salon", "Not An Id") == 2
    assert "salon id 'Not An Id'" in capsys.readouterr().err


async def test_check_a_registry_salon_needs_the_registry_and_its_key(
    operator_env: None,
    monkeypatch: pytest.MonkeyPatch,
    salon_id: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await run("check", "--salon", "nord") == 2
    assert "need DATABASE_URL" in capsys.readouterr().err
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nowhere")
    assert await run("check", "--salon", "nord") == 2
    assert "SECRETS_KEY is not set" in capsys.readouterr().err
    monkeypatch.setenv("SECRETS_KEY", SECRETS_KEY)
    assert await run("check", "--salon", "nord") == 1
    assert "cannot reach the registry's database" in capsys.readouterr().err
    # The environment's own id needs no registry.
    assert await run("dlq", "list", "--salon", salon_id) == 0
    assert "No dead letters." in capsys.readouterr().out


async def test_check_a_registry_salon_whose_values_have_problems(
    registry: SalonRegistry, other_salon: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await registry.add(other_salon, {"SALON_NAME": "Studio Süd"})
    # A value written by an older version, which this one refuses.
    await registry.pool.execute(
        "UPDATE salons SET settings = $2::jsonb WHERE id = $1",
        other_salon,
        json.dumps({"SALON_TIMEZONE": "Mars/Olympus"}),
    )
    assert await run("check", "--salon", other_salon) == 2
    assert f"salon {other_salon}'s values have problems" in capsys.readouterr().err


def letter(salon: str, chat: str) -> dict[str, str | int]:
    return {
        "kind": "outbound",
        "stream": f"fd:{{{salon}}}:out:1",
        "error": f"rejected by {salon}'s bot",
        "attempts": 0,
        "channel": "telegram",
        "chat": chat,
        "method": "sendMessage",
        "params": json.dumps({"chat_id": int(chat), "text": "Hi"}),
        "failed_at": 1_790_000_000_000,
    }


async def test_dlq_of_a_registry_salon_reads_its_own_keys(
    registry: SalonRegistry,
    redis: Redis,
    salon_id: str,
    other_salon: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await registry.add(other_salon, {"SALON_NAME": "Studio Süd"})
    mine = await redis.xadd(f"fd:{{{salon_id}}}:dlq", letter(salon_id, "4401"))  # type: ignore[arg-type]
    theirs = await redis.xadd(f"fd:{{{other_salon}}}:dlq", letter(other_salon, "4402"))  # type: ignore[arg-type]

    assert await run("dlq", "list", "--salon", other_salon) == 0
    out = capsys.readouterr().out
    assert f"{theirs.decode()}  2026-09-21T" in out
    assert f"rejected by {other_salon}'s bot" in out
    assert f"rejected by {salon_id}'s bot" not in out
    assert await run("dlq", "list") == 0
    out = capsys.readouterr().out
    assert f"{mine.decode()}  2026-09-21T" in out
    assert f"rejected by {salon_id}'s bot" in out
    assert f"rejected by {other_salon}'s bot" not in out

    # Replayed onto the salon's own stream; disabled, it waits there for the salon.
    await registry.set_enabled(other_salon, False)
    assert await run("dlq", "replay", "--salon", other_salon, "all") == 0
    out = capsys.readouterr().out
    assert f"replayed {theirs.decode()}" in out
    assert "is disabled: replayed letters wait until it is enabled" in out
    assert await redis.xlen(f"fd:{{{other_salon}}}:out:1") == 1
    assert await redis.xlen(f"fd:{{{salon_id}}}:dlq") == 1

    # Removed, its letters can still be seen and purged, not replayed.
    await redis.xadd(f"fd:{{{other_salon}}}:dlq", letter(other_salon, "4403"))  # type: ignore[arg-type]
    await registry.remove(other_salon)
    assert await run("dlq", "replay", "--salon", other_salon, "all") == 1
    assert "nothing would handle its letters" in capsys.readouterr().err
    assert await run("dlq", "purge", "--salon", other_salon, "--older-than", "0") == 0
    captured = capsys.readouterr()
    assert "purged 1 dead letters" in captured.out
    assert f"no salon {other_salon} in the registry (removed?)" in captured.err
    assert await redis.xlen(f"fd:{{{salon_id}}}:dlq") == 1
