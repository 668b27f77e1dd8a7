"""`frontdesk setup` against the stand-ins: the plan first, every provider-side step once, a
second run that writes nothing, `--dry-run` that writes nothing, and a refusing provider."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from gateway.cli import main
from gateway.integrations.novu.staff import STAFF_TITLES
from gateway.sandbox.calcom import CalcomSandbox
from gateway.sandbox.chatwoot import ChatwootSandbox
from gateway.sandbox.novu import NovuSandbox
from gateway.sandbox.whatsapp import WhatsAppSandbox
from gateway.wiring.routes import webhook_url
from tests.analytics_db import analytics_db as analytics_db  # the fixture
from tests.conftest import CONTRACTS, SECRET, TOKEN, Sandbox

PUBLIC = "https://desk.salon.example"
URL_TOKEN = "cw-url-token-0123456789"


@dataclass
class Providers:
    telegram: Sandbox
    calcom: CalcomSandbox
    chatwoot: ChatwootSandbox
    novu: NovuSandbox
    whatsapp: WhatsAppSandbox

    def writes(self) -> tuple[int, ...]:
        """How many changing calls each provider has answered."""
        return (
            len([c for c in self.telegram.telegram.sent if c.method == "setWebhook"]),
            len([c for c in self.calcom.calls if c.method != "GET"]),
            len(self.chatwoot.inbox_writes),
            len([c for c in self.novu.calls if c[0] != "GET"]),
        )


@pytest.fixture
async def providers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str, sandbox: Sandbox
) -> AsyncIterator[Providers]:
    """The environment of a new salon: every integration configured, nothing registered yet,
    Chatwoot without inbox ids (setup makes them)."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "SALON_", "PUBLIC_", "CALCOM_", "CHATWOOT_", "NOVU_")):
            monkeypatch.delenv(name)
    calcom = CalcomSandbox("cal_setup_key", CONTRACTS / "calcom-v2.openapi.json")
    chatwoot = ChatwootSandbox(
        "cw-admin", 1, CONTRACTS / "chatwoot.openapi.json", role="administrator"
    )
    novu = NovuSandbox("novu-key")
    whatsapp = WhatsAppSandbox("EAAG-token", "106540352242922", "app-secret")
    servers = [TestServer(s.app()) for s in (calcom, chatwoot, novu, whatsapp)]
    for server in servers:
        await server.start_server()
    cal, cw, nv, wa = (str(s.make_url("")).rstrip("/") for s in servers)
    env = {
        "REDIS_URL": redis_url,
        "PUBLIC_URL": PUBLIC,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_URL": sandbox.url,
        "WHATSAPP_ACCESS_TOKEN": "EAAG-token",
        "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
        "WHATSAPP_APP_SECRET": "app-secret",
        "WHATSAPP_VERIFY_TOKEN": "verify",
        "WHATSAPP_API_URL": f"{wa}/v23.0",
        "CALCOM_API_URL": cal,
        "CALCOM_API_KEY": "cal_setup_key",
        "CALCOM_WEBHOOK_SECRET": "cal-secret",
        "CHATWOOT_URL": cw,
        "CHATWOOT_ACCOUNT_ID": "1",
        "CHATWOOT_API_TOKEN": "cw-admin",
        "CHATWOOT_WEBHOOK_SECRET": "cw-secret",
        "NOVU_API_URL": nv,
        "NOVU_API_KEY": "novu-key",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield Providers(sandbox, calcom, chatwoot, novu, whatsapp)
    for server in servers:
        await server.close()
    for stand_in in (calcom, chatwoot, novu, whatsapp):
        await stand_in.close()


async def run(*argv: str) -> int:
    # The commands run their own event loop, so they run in a thread beside the stand-ins'.
    return await asyncio.to_thread(main, list(argv))


def test_webhook_urls_of_the_environment_and_of_a_registry_salon() -> None:
    assert webhook_url("https://gw.example/", "calcom") == "https://gw.example/webhooks/calcom"
    assert webhook_url("https://gw.example", "novu", "nord") == (
        "https://gw.example/webhooks/novu/nord"
    )


async def test_setup_registers_everything_then_a_second_run_changes_nothing(
    providers: Providers, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Something to book, so that the check that ends setup passes.
    monkeypatch.setenv("CALCOM_TEAM_ID", str(providers.calcom.seed_demo_salon()))
    assert await run("setup") == 0
    out = capsys.readouterr().out
    assert out.index("plan: telegram webhook: setWebhook") < out.index("done: telegram webhook")
    for step in ("telegram webhook", "calcom webhook", "chatwoot telegram inbox"):
        assert f"done: {step}" in out
    assert "done: chatwoot whatsapp inbox: created inbox" in out
    assert "done: novu workflows: workflows: booking-confirmed created" in out
    assert "failed:" not in out
    assert TOKEN not in out

    [hook] = [c.params for c in providers.telegram.telegram.sent if c.method == "setWebhook"]
    assert hook["url"] == f"{PUBLIC}/webhooks/telegram"
    assert hook["secret_token"] == SECRET
    assert hook["allowed_updates"] == ["message", "callback_query"]
    [cal_hook] = providers.calcom.webhooks
    assert (cal_hook["subscriberUrl"], cal_hook["secret"]) == (
        f"{PUBLIC}/webhooks/calcom",
        "cal-secret",
    )
    inboxes = {inbox.name: inbox for inbox in providers.chatwoot.inboxes.values()}
    assert set(inboxes) == {"Telegram (gateway)", "WhatsApp (gateway)"}
    assert {i.webhook_url for i in inboxes.values()} == {f"{PUBLIC}/webhooks/chatwoot"}
    assert inboxes["WhatsApp (gateway)"].attributes == {"agent_reply_time_window": 24}
    assert inboxes["Telegram (gateway)"].attributes == {}
    assert len(providers.novu.workflows) == 7 + len(STAFF_TITLES)
    # The operator is told the variables to set.
    found = dict(re.findall(r"^  (CHATWOOT_\w+_INBOX_ID)=(\d+)$", out, re.MULTILINE))
    assert found == {
        "CHATWOOT_TELEGRAM_INBOX_ID": str(inboxes["Telegram (gateway)"].id),
        "CHATWOOT_WHATSAPP_INBOX_ID": str(inboxes["WhatsApp (gateway)"].id),
    }
    assert out.index("check:") > out.index("CHATWOOT_WHATSAPP_INBOX_ID=")
    assert "[ok  ] chatwoot  telegram → Telegram (gateway); whatsapp → WhatsApp (gateway)" in out

    for name, value in found.items():
        monkeypatch.setenv(name, value)
    before = providers.writes()
    assert await run("setup") == 0
    out = capsys.readouterr().out
    assert providers.writes() == before
    assert "plan:" not in out
    assert "done:" not in out
    for step in ("telegram webhook", "calcom webhook", "chatwoot whatsapp inbox", "novu workflows"):
        assert f"in place: {step}" in out
    assert "everything was in place: nothing changed" in out
    assert "set these in the environment" not in out


async def test_dry_run_prints_the_plan_and_writes_nothing(
    providers: Providers, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("setup", "--dry-run") == 0
    out = capsys.readouterr().out
    assert providers.writes() == (0, 0, 0, 0)
    assert providers.chatwoot.inboxes == {}
    assert "plan: calcom webhook: create the webhook to" in out
    assert "plan: chatwoot telegram inbox: create the API inbox 'Telegram (gateway)'" in out
    assert "plan: novu workflows: workflows: booking-confirmed missing" in out
    assert "dry run: nothing was changed" in out
    assert "check:" not in out


async def test_a_refusing_provider_fails_its_step_and_the_command(
    providers: Providers, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALCOM_API_KEY", "cal_wrong_key")
    assert await run("setup") == 1
    out = capsys.readouterr().out
    assert "failed: calcom webhook: Cal.com refused or unreachable" in out
    assert "done: telegram webhook" in out  # the others still run
    assert providers.calcom.webhooks == []
    assert "cal_wrong_key" not in out


async def test_given_inboxes_are_verified_and_their_webhook_put_right(
    providers: Providers, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    telegram = providers.chatwoot.add_inbox("Salon Telegram", "https://old.example/hook")
    monkeypatch.setenv("CHATWOOT_TELEGRAM_INBOX_ID", str(telegram.id))
    monkeypatch.setenv("CHATWOOT_WHATSAPP_INBOX_ID", "99")
    assert await run("setup") == 1
    out = capsys.readouterr().out
    assert f"plan: chatwoot telegram inbox: inbox {telegram.id}: set webhook_url" in out
    assert telegram.webhook_url == f"{PUBLIC}/webhooks/chatwoot"
    assert "failed: chatwoot whatsapp inbox: inbox 99 (CHATWOOT_WHATSAPP_INBOX_ID)" in out
    assert "CHATWOOT_TELEGRAM_INBOX_ID=" not in out  # the given one is kept


async def test_an_agent_token_cannot_make_inboxes(
    providers: Providers, capsys: pytest.CaptureFixture[str]
) -> None:
    providers.chatwoot.role = "agent"
    assert await run("setup") == 1
    out = capsys.readouterr().out
    assert "failed: chatwoot telegram inbox: Chatwoot refused: HTTP 401" in out
    assert "administrator's token" in out
    assert providers.chatwoot.inboxes == {}


async def test_setup_needs_a_public_url(
    providers: Providers, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PUBLIC_URL")
    assert await run("setup") == 2
    assert "setup needs PUBLIC_URL" in capsys.readouterr().err
    assert providers.writes() == (0, 0, 0, 0)


async def test_a_registry_salon_is_set_up_on_its_own_routes_and_its_inbox_ids_written_back(
    providers: Providers,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    analytics_db: str,
) -> None:
    """`salons setup <id>`: the salon's values come from the registry (the environment has only
    the process's), its webhooks are `/webhooks/<source>/<salon>`, and what setup created is
    written back to its row."""
    from cryptography.fernet import Fernet

    team = providers.calcom.seed_demo_salon()
    telegram_inbox = providers.chatwoot.add_inbox("Nord Telegram", "https://old.example/hook")
    salon = {
        name: os.environ[name]
        for name in os.environ
        if name.startswith(("TELEGRAM_", "WHATSAPP_", "CALCOM_", "CHATWOOT_", "NOVU_"))
    }
    salon |= {
        "SALON_NAME": "Studio Nord",
        "CALCOM_TEAM_ID": str(team),
        "CHATWOOT_TELEGRAM_INBOX_ID": str(telegram_inbox.id),
        # A secret of the salon's own, in a URL setup prints: masked like the environment's.
        "CHATWOOT_WEBHOOK_TOKEN": URL_TOKEN,
    }
    for name in salon:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", analytics_db)
    monkeypatch.setenv("SECRETS_KEY", Fernet.generate_key().decode())
    assert await run("salons", "add", "nord", *(f"--set={n}={v}" for n, v in salon.items())) == 0
    capsys.readouterr()

    assert await run("salons", "setup", "nord", "--dry-run") == 0
    assert providers.writes() == (0, 0, 0, 0)
    out = capsys.readouterr().out
    assert "plan: chatwoot whatsapp inbox: create the API inbox 'WhatsApp (nord)'" in out
    assert f"{PUBLIC}/webhooks/chatwoot/nord/***" in out
    assert URL_TOKEN not in out

    assert await run("salons", "setup", "nord") == 0
    out = capsys.readouterr().out
    [hook] = [c.params for c in providers.telegram.telegram.sent if c.method == "setWebhook"]
    assert hook["url"] == f"{PUBLIC}/webhooks/telegram/nord"
    assert providers.calcom.webhooks[0]["subscriberUrl"] == f"{PUBLIC}/webhooks/calcom/nord"
    steps = providers.novu.workflows["booking-confirmed"]["steps"]
    assert steps[0]["controlValues"]["url"] == f"{PUBLIC}/webhooks/novu/nord"
    whatsapp_inbox = next(
        i for i in providers.chatwoot.inboxes.values() if i.name == "WhatsApp (nord)"
    )
    assert whatsapp_inbox.webhook_url == f"{PUBLIC}/webhooks/chatwoot/nord/{URL_TOKEN}"
    assert telegram_inbox.webhook_url == whatsapp_inbox.webhook_url
    assert URL_TOKEN not in out
    assert f"now has CHATWOOT_WHATSAPP_INBOX_ID={whatsapp_inbox.id}" in out
    assert "[ok  ] telegram  @frontdesk_sandbox_bot; webhook " + PUBLIC in out
    assert "set these in the environment" not in out

    assert await run("salons", "show", "nord") == 0
    assert f"CHATWOOT_WHATSAPP_INBOX_ID = {whatsapp_inbox.id}" in capsys.readouterr().out
    before = providers.writes()
    assert await run("salons", "setup", "nord") == 0
    assert providers.writes() == before
    assert "everything was in place: nothing changed" in capsys.readouterr().out


async def test_the_metabase_dashboard_when_metabase_and_analytics_are_configured(
    providers: Providers,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    analytics_db: str,
) -> None:
    from gateway.sandbox.metabase import MetabaseSandbox

    metabase = MetabaseSandbox(api_key="mb_key", secret="0123456789abcdef" * 4)
    server = TestServer(metabase.app())
    await server.start_server()
    monkeypatch.setenv("CALCOM_TEAM_ID", str(providers.calcom.seed_demo_salon()))
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", analytics_db)
    monkeypatch.setenv("ANALYTICS_SALT", "salt-salt-salt-salt")
    monkeypatch.setenv("METABASE_SITE_URL", str(server.make_url("")).rstrip("/"))
    try:
        assert await run("setup") == 1
        out = capsys.readouterr().out
        assert "plan: analytics schema: migrate: 0001_events" in out
        assert "done: analytics schema: applied 0001_events" in out
        assert "failed: metabase dashboard: needs METABASE_API_KEY" in out
        assert metabase.writes == []

        monkeypatch.setenv("METABASE_API_KEY", "mb_key")
        monkeypatch.setenv("METABASE_SECRET_KEY", "0123456789abcdef" * 4)
        await run("setup")
        out = capsys.readouterr().out
        assert "plan: metabase dashboard: compared and brought up to date when it runs" in out
        assert "done: metabase dashboard: dashboard " in out
        [dashboard] = re.findall(r"^  METABASE_DASHBOARD_ID=(\d+)$", out, re.MULTILINE)

        monkeypatch.setenv("METABASE_DASHBOARD_ID", dashboard)
        for name, value in re.findall(r"^  (CHATWOOT_\w+)=(\d+)$", out, re.MULTILINE):
            monkeypatch.setenv(name, value)
        writes = len(metabase.writes)
        assert await run("setup") == 0
        out = capsys.readouterr().out
        assert "in place: metabase dashboard" in out
        assert "in place: analytics schema" in out
        assert "[ok  ] metabase  reachable; dashboard" in out
        assert len(metabase.writes) == writes
    finally:
        await server.close()
        await metabase.close()


async def test_only_the_messengers_on_get_an_inbox(
    providers: Providers, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALCOM_TEAM_ID", str(providers.calcom.seed_demo_salon()))
    monkeypatch.delenv("WHATSAPP_ACCESS_TOKEN")
    assert await run("setup") == 0
    out = capsys.readouterr().out
    assert [i.name for i in providers.chatwoot.inboxes.values()] == ["Telegram (gateway)"]
    assert "chatwoot whatsapp inbox" not in out
    assert "CHATWOOT_WHATSAPP_INBOX_ID" not in out
    assert "[ok  ] chatwoot  telegram → Telegram (gateway); token role administrator" in out
