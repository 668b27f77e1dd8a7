"""The operator's commands: check, webhooks, dlq, and the demo as a new user starts it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import ClientSession
from redis.asyncio import Redis

from gateway.cli import main
from gateway.pipeline.embedded_redis import free_port
from gateway.pipeline.keys import Keys, RegistryKeys
from handlers.calcom import TRIGGERS as CALCOM_TRIGGERS
from tests.conftest import CONTRACTS, ROOT, SECRET, TOKEN, Sandbox, eventually


@pytest.fixture
def operator_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str, salon_id: str, sandbox: Sandbox
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "SALON_", "PUBLIC_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("SALON_ID", salon_id)
    monkeypatch.setenv("STREAM_SHARDS", "4")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("TELEGRAM_API_URL", sandbox.url)
    monkeypatch.setenv("PUBLIC_URL", "https://salon.example")


async def run(*argv: str) -> int:
    # The commands run their own event loop, so they run in a thread beside the sandbox's.
    return await asyncio.to_thread(main, list(argv))


@pytest.mark.usefixtures("operator_env")
async def test_check_then_webhooks_set(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("check") == 1
    out = capsys.readouterr().out
    assert "[ok  ] redis     reachable" in out
    assert "[FAIL] telegram  @frontdesk_sandbox_bot; webhook not set" in out
    assert "run `frontdesk webhooks set`" in out
    assert "[off ] whatsapp  not configured" in out
    assert TOKEN not in out

    assert await run("webhooks", "set", "--drop-pending-updates") == 0
    assert "https://salon.example/webhooks/telegram" in capsys.readouterr().out
    registered = [c.params for c in sandbox.telegram.sent if c.method == "setWebhook"][-1]
    assert registered["url"] == "https://salon.example/webhooks/telegram"
    assert registered["secret_token"] == SECRET
    assert registered["allowed_updates"] == ["message", "callback_query"]
    assert registered["drop_pending_updates"] is True

    assert await run("check") == 0
    assert await run("webhooks", "info") == 0
    assert "[ok  ] telegram  @frontdesk_sandbox_bot; webhook https://salon.example" in (
        capsys.readouterr().out
    )


@pytest.mark.usefixtures("operator_env")
async def test_webhooks_set_registers_the_calcom_webhook_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cal.com keeps one webhook per user and subscriber URL (user-webhooks.service.ts answers
    409 to a second) and shows its secret when read (outputs/webhook.output.ts): a second run
    finds it by the URL and changes nothing; a new secret is PATCHed alone."""
    from aiohttp.test_utils import TestServer

    from gateway.sandbox.calcom import CalcomSandbox

    monkeypatch.delenv("TELEGRAM_BOT_TOKEN")
    assert await run("webhooks", "set") == 0
    assert "Neither Telegram nor Cal.com is configured" in capsys.readouterr().out
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    calendar = CalcomSandbox("cal_cli_key", CONTRACTS / "calcom-v2.openapi.json")
    server = TestServer(calendar.app())
    await server.start_server()
    monkeypatch.setenv("CALCOM_API_URL", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("CALCOM_API_KEY", "cal_cli_key")
    monkeypatch.delenv("CALCOM_WEBHOOK_SECRET", raising=False)
    triggers = sorted(CALCOM_TRIGGERS)
    try:
        monkeypatch.delenv("PUBLIC_URL")
        assert await run("webhooks", "set") == 2
        assert "PUBLIC_URL is required" in capsys.readouterr().out
        monkeypatch.setenv("PUBLIC_URL", "https://salon.example")
        assert await run("webhooks", "set") == 2
        assert "CALCOM_WEBHOOK_SECRET is required" in capsys.readouterr().out
        assert calendar.webhooks == []

        monkeypatch.setenv("CALCOM_WEBHOOK_SECRET", "cal-secret-1")
        assert await run("webhooks", "set") == 0
        out = capsys.readouterr().out
        assert "Telegram webhook set to https://salon.example/webhooks/telegram" in out
        assert "Cal.com webhook to https://salon.example/webhooks/calcom: created" in out
        [hook] = calendar.webhooks
        assert hook["subscriberUrl"] == "https://salon.example/webhooks/calcom"
        assert sorted(hook["triggers"]) == triggers
        assert (hook["active"], hook["secret"]) == (True, "cal-secret-1")

        writes = len([c for c in calendar.calls if c.method != "GET"])
        assert await run("webhooks", "set") == 0
        assert "webhooks/calcom: unchanged" in capsys.readouterr().out
        assert len([c for c in calendar.calls if c.method != "GET"]) == writes
        assert len(calendar.webhooks) == 1

        monkeypatch.setenv("CALCOM_WEBHOOK_SECRET", "cal-secret-2")
        assert await run("webhooks", "set") == 0
        out = capsys.readouterr().out
        assert "webhooks/calcom: updated: secret" in out
        assert "cal-secret-2" not in out
        [hook] = calendar.webhooks
        assert (hook["secret"], sorted(hook["triggers"])) == ("cal-secret-2", triggers)

        monkeypatch.setenv("CALCOM_API_KEY", "cal_wrong_key")
        assert await run("webhooks", "set") == 1
        assert "Cal.com refused the webhook" in capsys.readouterr().out
    finally:
        await server.close()
        await calendar.close()


@pytest.mark.usefixtures("operator_env")
async def test_check_reports_an_unreachable_bot_api(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TELEGRAM_API_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert await run("check") == 1
    out = capsys.readouterr().out
    assert "[FAIL] redis     unreachable" in out
    assert "[FAIL] telegram  Bot API refused or unreachable" in out
    assert TOKEN not in out


@pytest.mark.usefixtures("operator_env")
async def test_check_never_prints_the_token_of_an_unusable_bot_api_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """aiohttp's InvalidUrlClientError names the whole request URL, /bot<token>/getMe."""
    monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:99999")
    assert await run("check") == 1
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "[FAIL] telegram  Bot API refused or unreachable" in out
    assert "http://127.0.0.1:99999/bot***/getMe" in out
    assert TOKEN not in out
    assert TOKEN.split(":", 1)[1] not in out


@pytest.mark.usefixtures("operator_env")
async def test_dlq_list_masks_clients_and_purge_deletes_old_letters(
    redis: Redis, salon_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dead letters keep whole bodies (a client's name, number, what they wrote) for replay:
    the listing shows none of it, and `purge --older-than` ends them."""
    key = f"fd:{{{salon_id}}}:dlq"
    body = json.dumps({"message": {"chat": {"id": 5550001234}, "text": "+44 7700 900777"}})
    old = await redis.xadd(
        key,
        {
            "kind": "inbound",
            "stream": f"fd:{{{salon_id}}}:in:1",
            "entry": "1-0",
            "error": "ValueError: Recipient 447700900777 is not a WhatsApp user",
            "attempts": 5,
            "src": "whatsapp",
            "conv": "wa:447700900777",
            "id": "m:wamid.X",
            "body": body,
        },
        id="1000000000000-0",
    )
    recent = await redis.xadd(
        key,
        {
            "kind": "outbound",
            "stream": f"fd:{{{salon_id}}}:out:1",
            "entry": "2-0",
            "error": f"rejected: chat {TOKEN}",
            "attempts": 3,
            "channel": "telegram",
            "chat": "5550001234",
            "method": "sendMessage",
            "params": json.dumps({"chat_id": 5550001234, "text": "Hi Zinaida"}),
        },
    )
    assert await run("dlq", "list") == 0
    out = capsys.readouterr().out
    assert "whatsapp event m:wamid.X of wa:4*********77" in out
    assert "Recipient 4*********77 is not a WhatsApp user" in out
    assert "telegram sendMessage to chat 5*******34" in out
    for leak in ("447700900777", "5550001234", TOKEN):
        assert leak not in out

    assert await run("dlq", "purge", "--older-than", "30") == 0
    assert "purged 1 dead letters older than 30 days" in capsys.readouterr().out
    assert [entry_id for entry_id, _ in await redis.xrange(key)] == [recent]
    assert old != recent
    assert await run("dlq", "purge", "--older-than", "0") == 0
    assert "purged 1 dead letters" in capsys.readouterr().out
    assert await redis.xlen(key) == 0


@pytest.mark.usefixtures("operator_env")
@pytest.mark.parametrize("days", ["-1", "nan", "inf", "soon"])
def test_dlq_purge_refuses_a_number_of_days_that_is_not_one(
    days: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["dlq", "purge", "--older-than", days])
    assert exit_.value.code == 2
    assert "--older-than" in capsys.readouterr().err


@pytest.mark.usefixtures("operator_env")
async def test_dlq_list_and_replay(
    redis: Redis, salon_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("dlq", "list") == 0
    assert "No dead letters." in capsys.readouterr().out
    letter = await redis.xadd(
        f"fd:{{{salon_id}}}:dlq",
        {
            "kind": "outbound",
            "stream": f"fd:{{{salon_id}}}:out:2",
            "entry": "1-0",
            "error": "rejected: Forbidden: bot was blocked by the user",
            "attempts": 0,
            "channel": "telegram",
            "chat": "77",
            "method": "sendMessage",
            "params": json.dumps({"chat_id": 77, "text": "Hi"}),
            "ephemeral": "0",
            "failed_at": 1_790_000_000_000,
        },
    )
    assert await run("dlq", "list") == 0
    out = capsys.readouterr().out
    assert f"{letter.decode()}  2026-09-21T" in out
    assert "outbound telegram sendMessage to chat 77" in out
    assert "error: rejected: Forbidden: bot was blocked by the user (attempts: 0)" in out

    assert await run("dlq", "replay", letter.decode(), "9-9") == 1
    captured = capsys.readouterr()
    assert f"replayed {letter.decode()}" in captured.out
    assert "no dead letter 9-9" in captured.err
    assert await redis.xlen(f"fd:{{{salon_id}}}:dlq") == 0
    requeued = await redis.xrange(f"fd:{{{salon_id}}}:out:2")
    assert requeued[0][1][b"method"] == b"sendMessage"
    assert b"kind" not in requeued[0][1]


@pytest.mark.usefixtures("operator_env")
async def test_redis_migrate_keys_renames_and_says_what_it_left(
    redis: Redis, salon_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = f"fd:{salon_id}:booking", Keys(salon_id, 1).booking
    await redis.set(f"{old}:uid1", "tg:1")
    await redis.set(f"{old}:uid2", "tg:2")
    await redis.set(new("uid2"), "tg:2-newer")
    try:
        assert await run("redis", "migrate-keys") == 1
        captured = capsys.readouterr()
        assert "renamed 1 keys" in captured.out
        assert f"left {old}:uid2: its new name exists already" in captured.err
        assert await redis.get(new("uid1")) == b"tg:1"
        assert await redis.get(new("uid2")) == b"tg:2-newer"
        await redis.delete(f"{old}:uid2")
        assert await run("redis", "migrate-keys") == 0
        assert "renamed 0 keys" in capsys.readouterr().out
    finally:
        await redis.delete(f"{old}:uid2")


async def test_redis_migrate_keys_needs_a_redis(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert await run("redis", "migrate-keys") == 2
    assert "REDIS_URL is required" in capsys.readouterr().err


@pytest.mark.usefixtures("operator_env")
async def test_redis_migrate_keys_masks_chat_ids_takes_the_lock_and_sets_the_marker(
    redis: Redis, salon_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    old = f"fd:{salon_id}:session:telegram:123456789"
    new = Keys(salon_id, 1).session("telegram", "123456789")
    registry = RegistryKeys()
    await redis.delete(registry.keys_tagged)
    await redis.set(old, "{}")
    await redis.set(new, '{"newer":1}')
    try:
        await redis.set(registry.key_migration, "a-starting-gateway", px=200)
        assert await run("redis", "migrate-keys") == 1  # waited for the lock, then ran
        err = capsys.readouterr().err
        assert "123456789" not in err
        assert f"left fd:{salon_id}:session:telegram:1******89: its new name" in err
        assert await redis.exists(registry.keys_tagged) == 0
        await redis.delete(old)
        assert await run("redis", "migrate-keys") == 0
        assert await redis.exists(registry.keys_tagged) == 1
    finally:
        await redis.delete(old, new)


def test_serve_refuses_a_bad_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)  # without its secret
    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("SALON_TIMEZONE", "Mars/Olympus")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "SALON_TIMEZONE: unknown IANA time zone 'Mars/Olympus'" in err
    assert "TELEGRAM_WEBHOOK_SECRET: required when TELEGRAM_BOT_TOKEN is set" in err
    assert "Traceback" not in err
    assert TOKEN not in err


@pytest.mark.slow
async def test_demo_as_a_new_user_starts_it(tmp_path: Path) -> None:
    """`frontdesk demo` with nothing configured: the chat page answers, Ctrl+C stops it."""
    port = free_port(consecutive=10)  # the gateway and its stand-ins, Metabase's on port + 9
    prefixes = ("TELEGRAM_", "WHATSAPP_", "CHATWOOT_", "SALON_", "REDIS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    # A salon id of its own: the demo empties its salon's rows in the demo's database at start,
    # and a demo someone is running beside the tests keeps its own ("main").
    env["SALON_ID"] = f"cli-demo-{port}"
    log = tmp_path / "demo.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "demo", "--port", str(port)],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(ROOT)},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:

        def started() -> bool:
            return "Press Ctrl+C to stop." in log.read_text() or process.poll() is not None

        await eventually(started, timeout=60, interval=0.2)
        output = log.read_text()
        assert f"http://127.0.0.1:{port + 1}/" in output, output
        async with ClientSession() as http:
            page = await (await http.get(f"http://127.0.0.1:{port + 1}/")).text()
            assert "<html" in page.lower()
            said = await http.post(
                f"http://127.0.0.1:{port + 1}/_sandbox/say",
                json={"chat_id": 5, "text": "/start", "first_name": "Vera", "language_code": "en"},
            )
            assert (await said.json())["status"] == 200

            async def reply() -> list[dict[str, object]]:
                got = await http.get(f"http://127.0.0.1:{port + 1}/_sandbox/messages?chat_id=5")
                messages: list[dict[str, object]] = (await got.json())["messages"]
                return messages

            messages = await eventually(reply, timeout=10)
            assert str(messages[0]["text"]).startswith("Hello, Vera! Welcome to Frontdesk Demo")

            # The WhatsApp pane beside it: a client writes, the gateway answers through Meta's
            # stand-in (signed webhook in, Cloud API call out).
            state = await (await http.get(f"http://127.0.0.1:{port + 1}/_sandbox/state")).json()
            assert state["beside"][:3] == [
                f"http://127.0.0.1:{port + 3}/",
                f"http://127.0.0.1:{port + 4}/",
                f"http://127.0.0.1:{port + 5}/",
            ]
            if len(state["beside"]) == 4:  # a local PostgreSQL: the analytics pane too
                assert state["beside"][3] == f"http://127.0.0.1:{port + 6}/"
                report = await http.get(f"http://127.0.0.1:{port + 6}/report.json")
                assert report.status == 200
                assert len((await report.json())["answers"]) == 8
            whatsapp = f"http://127.0.0.1:{port + 3}/_sandbox"
            said = await http.post(
                f"{whatsapp}/say", json={"wa_id": "79161234567", "name": "Vera", "text": "Hi"}
            )
            assert said.status == 200

            async def answer() -> list[dict[str, object]]:
                got = await http.get(f"{whatsapp}/messages?client=79161234567")
                found: list[dict[str, object]] = (await got.json())["messages"]
                return [m for m in found if m["from"] == "business"]

            [greeting] = await eventually(answer, timeout=10)
            body = greeting["body"]
            assert isinstance(body, dict)
            assert body["interactive"]["body"]["text"].startswith("Hello, Vera! Welcome")

            # The staff pane: the conversation is mirrored there as it happens.
            async def mirrored() -> list[dict[str, object]]:
                got = await http.get(f"http://127.0.0.1:{port + 4}/_sandbox/conversations")
                found: list[dict[str, object]] = await got.json()
                return found

            conversations = await eventually(mirrored, timeout=10)
            assert {c["status"] for c in conversations} == {"pending"}

            # The notifications pane: Novu's stand-in, with the workflows synced at start-up.
            novu = await (await http.get(f"http://127.0.0.1:{port + 5}/_sandbox/state")).json()
            assert novu["runs"] == []
            assert "booking-reminder" in novu["workflows"]
            advanced = await http.post(
                f"http://127.0.0.1:{port + 5}/_sandbox/advance", json={"hours": 1}
            )
            assert advanced.status == 200
        process.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(process.wait, 20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.usefixtures("operator_env")
async def test_check_reaches_whatsapp_and_chatwoot(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aiohttp.test_utils import TestServer

    from gateway.sandbox.chatwoot import ChatwootSandbox
    from gateway.sandbox.whatsapp import WhatsAppSandbox

    whatsapp = WhatsAppSandbox("EAAG-token", "106540352242922", "app-secret")
    chatwoot = ChatwootSandbox("cw-token", 1)
    inbox = chatwoot.add_inbox("Telegram (gateway)")
    servers = [TestServer(whatsapp.app()), TestServer(chatwoot.app())]
    for server in servers:
        await server.start_server()
    env = {
        "WHATSAPP_ACCESS_TOKEN": "EAAG-token",
        "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
        "WHATSAPP_APP_SECRET": "app-secret",
        "WHATSAPP_VERIFY_TOKEN": "verify",
        "WHATSAPP_API_URL": str(servers[0].make_url("/v23.0")),
        "CHATWOOT_API_TOKEN": "cw-token",
        "CHATWOOT_URL": str(servers[1].make_url("")).rstrip("/"),
        "CHATWOOT_ACCOUNT_ID": "1",
        "CHATWOOT_TELEGRAM_INBOX_ID": str(inbox.id),
        "CHATWOOT_WEBHOOK_SECRET": inbox.secret,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        await run("check")
        out = capsys.readouterr().out
        # Every printed phone number is masked, the business's own included (one rule).
        assert "[ok  ] whatsapp  +1********00 (Frontdesk Demo Salon)" in out
        assert "[ok  ] chatwoot  telegram → Telegram (gateway)" in out
        monkeypatch.setenv("WHATSAPP_ACCESS_TOKEN", "EAAG-wrong")
        monkeypatch.setenv("CHATWOOT_TELEGRAM_INBOX_ID", "99")
        assert await run("check") == 1
        out = capsys.readouterr().out
        assert "[FAIL] whatsapp  Cloud API refused or unreachable: Invalid OAuth" in out
        assert "[FAIL] chatwoot  inbox 99 (telegram): HTTP 404" in out
        assert "EAAG-wrong" not in out
    finally:
        for server in servers:
            await server.close()
        await whatsapp.close()
        await chatwoot.close()


@pytest.mark.usefixtures("operator_env")
async def test_check_says_whether_the_chatwoot_token_would_keep_handoffs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Chatwoot assigns what an agent-role user opens to that user (toggle_status): `check`
    reads the token's role from its profile and says what Frontdesk does about it; an agent
    bot's token must reach the account."""
    from aiohttp.test_utils import TestServer

    from gateway.ops.check import _chatwoot_handoff
    from gateway.sandbox.chatwoot import ChatwootSandbox
    from gateway.settings import load

    chatwoot = ChatwootSandbox("cw-token", 1, bot_token="cw-bot")
    inbox = chatwoot.add_inbox("Telegram (gateway)")
    server = TestServer(chatwoot.app())
    await server.start_server()
    env = {
        "CHATWOOT_API_TOKEN": "cw-token",
        "CHATWOOT_URL": str(server.make_url("")).rstrip("/"),
        "CHATWOOT_ACCOUNT_ID": "1",
        "CHATWOOT_TELEGRAM_INBOX_ID": str(inbox.id),
        "CHATWOOT_WEBHOOK_SECRET": inbox.secret,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        await run("check")
        out = capsys.readouterr().out
        assert "[ok  ] chatwoot  telegram → Telegram (gateway); token role agent: " in out
        assert "Frontdesk puts each handoff back in staff's queue" in out
        chatwoot.role = "administrator"
        await run("check")
        assert (
            "token role administrator: handoffs are not assigned to it" in capsys.readouterr().out
        )
        monkeypatch.setenv("CHATWOOT_BOT_TOKEN", "cw-bot")
        await run("check")
        out = capsys.readouterr().out
        assert "handoffs by the agent bot (Chatwoot's bot handoff)" in out
        monkeypatch.setenv("CHATWOOT_BOT_TOKEN", "cw-bot-revoked")
        assert await run("check") == 1
        out = capsys.readouterr().out
        assert "[FAIL] chatwoot  CHATWOOT_BOT_TOKEN refused for the account: HTTP 401" in out
        assert "cw-bot-revoked" not in out
        # A token whose user is not in the account, or that the profile refuses.
        monkeypatch.delenv("CHATWOOT_BOT_TOKEN")
        settings = load(chatwoot_account_id=7).salon.chatwoot
        assert settings is not None
        headers = {"api_access_token": "cw-token"}
        assert await _chatwoot_handoff(settings, headers) is None
        assert "the API token's profile: not a member of the account" in capsys.readouterr().out
        assert await _chatwoot_handoff(settings, {"api_access_token": "nope"}) is None
        assert "the API token's profile: HTTP 401" in capsys.readouterr().out
    finally:
        await server.close()
        await chatwoot.close()


async def test_novu_sync_puts_the_workflows_in_place_and_check_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aiohttp.test_utils import TestServer

    from gateway.sandbox.novu import NovuSandbox

    novu = NovuSandbox("novu-key")
    server = TestServer(novu.app())
    await server.start_server()
    monkeypatch.setenv("NOVU_API_URL", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("NOVU_API_KEY", "novu-key")
    monkeypatch.setenv("NOVU_WEBHOOK_SECRET", "novu-secret")
    try:
        monkeypatch.delenv("PUBLIC_URL", raising=False)
        assert await run("novu", "sync") == 2
        assert "needs NOVU_API_URL, NOVU_API_KEY and PUBLIC_URL" in capsys.readouterr().err
        monkeypatch.setenv("PUBLIC_URL", "https://desk.salon.example")
        assert await run("check") == 1
        assert "booking-confirmed missing" in capsys.readouterr().out
        assert await run("novu", "sync") == 0
        out = capsys.readouterr().out
        assert "booking-reminder       created" in out
        assert await run("novu", "sync") == 0
        assert out.count("created") == 12  # 6 for clients, 1 for the owner, 5 for staff
        assert "staff-handoff          created" in out
        assert capsys.readouterr().out.count("unchanged") == 12
        steps = novu.workflows["booking-confirmed"]["steps"]
        assert steps[0]["controlValues"]["url"] == "https://desk.salon.example/webhooks/novu"
        await run("check")
        assert "[ok  ] novu      12 workflows in place" in capsys.readouterr().out
        monkeypatch.setenv("NOVU_API_KEY", "wrong")
        assert await run("novu", "sync") == 1
        assert "Novu refused the workflows: HTTP 401" in capsys.readouterr().err
        await server.close()  # Novu down: no answer at all
        assert await run("novu", "sync") == 1
        err = capsys.readouterr().err
        assert "cannot reach Novu" in err
        assert "refused" not in err
    finally:
        await server.close()
        await novu.close()


@pytest.mark.usefixtures("operator_env")
def test_dashboard_app_prints_the_url_to_add_in_chatwoot(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], salon_id: str
) -> None:
    from gateway.dashboard_app import tokens

    assert main(["dashboard-app"]) == 2  # no Chatwoot or Cal.com yet
    assert "needs Chatwoot" in capsys.readouterr().err
    env = {
        "CHATWOOT_API_TOKEN": "cw-token",
        "CHATWOOT_URL": "http://127.0.0.1:9",
        "CHATWOOT_ACCOUNT_ID": "1",
        "CHATWOOT_TELEGRAM_INBOX_ID": "1",
        "CHATWOOT_WEBHOOK_SECRET": "cw-secret",
        "CALCOM_API_URL": "http://127.0.0.1:9",
        "CALCOM_API_KEY": "cal_test",
        "PUBLIC_URL": "https://desk.example/",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["dashboard-app"]) == 0
    key = tokens.link_key(tokens.secret_for(salon_id, "cw-token"))
    assert capsys.readouterr().out.strip() == (
        f"Bookings  https://desk.example/dashboard-app/{salon_id}?key={key}"
    )
    # With Novu, the second app too: the staff member's in-app feed, with the same key.
    monkeypatch.setenv("NOVU_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("NOVU_API_KEY", "novu-key")
    assert main(["dashboard-app"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        f"Notices   https://desk.example/dashboard-app/{salon_id}/notices?key={key}"
    )
    # The operator rotates the key: a new one.
    monkeypatch.setenv("DASHBOARD_APP_KEY_VERSION", "1")
    assert main(["dashboard-app"]) == 0
    rotated = tokens.link_key(tokens.secret_for(salon_id, "cw-token", 1))
    assert rotated != key
    assert capsys.readouterr().out.strip().endswith(f"?key={rotated}")
