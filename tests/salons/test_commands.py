"""`frontdesk salons ...` as an operator runs it, through `gateway.cli.main`, on a real
PostgreSQL: the secrets never show, bad values write nothing and exit 2."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet

from gateway.cli import main
from tests.analytics_db import analytics_db as analytics_db  # the fixture

TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvw"
CALCOM_KEY = "cal_live_nord_0123456789"
KEY = Fernet.generate_key().decode()
SALON_TOML = """\
# Studio Nord: the environment's names, one a line.
SALON_NAME = "Studio Nord"
SALON_TIMEZONE = "Europe/Moscow"
DEFAULT_LOCALE = "ru"
REMINDER_HOURS = [24, 2]
CALCOM_API_URL = "https://cal.example/v2"
"""


@pytest.fixture
def operator_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, analytics_db: str, redis_url: str
) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "SALON_", "CALCOM_", "DATABASE_", "SECRETS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", analytics_db)
    monkeypatch.setenv("SECRETS_KEY", KEY)
    monkeypatch.setenv("REDIS_URL", redis_url)
    (tmp_path / "nord.toml").write_text(SALON_TOML, encoding="utf-8")
    return tmp_path


async def run(*argv: str, stdin: str = "") -> int:
    # The commands run their own event loop, so they run in a thread; secrets come on stdin.
    def command() -> int:
        saved = sys.stdin
        sys.stdin = io.StringIO(stdin)
        try:
            return main(["salons", *argv])
        finally:
            sys.stdin = saved

    return await asyncio.to_thread(command)


@pytest.mark.usefixtures("operator_env")
async def test_add_show_list_update_disable_enable_remove(
    capsys: pytest.CaptureFixture[str], analytics_db: str
) -> None:
    assert await run("list") == 0
    assert "No salons yet" in capsys.readouterr().out

    assert (
        await run(
            "add",
            "nord",
            "--file",
            "nord.toml",
            "--set",
            "telegram_webhook_secret=nord-hook",
            "--secret",
            "TELEGRAM_BOT_TOKEN",
            "--secret",
            "CALCOM_API_KEY",
            stdin=f"{TOKEN}\n{CALCOM_KEY}\n",
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("added salon nord (version ")

    assert await run("show", "nord") == 0
    shown = capsys.readouterr().out
    assert shown.startswith("salon nord: enabled, version ")
    assert "  SALON_NAME = Studio Nord\n" in shown
    assert "  REMINDER_HOURS = [24, 2]\n" in shown
    assert "  CALCOM_API_KEY = ******** (set)\n" in shown
    assert "  TELEGRAM_BOT_TOKEN = ******** (set)\n" in shown
    assert "  TELEGRAM_WEBHOOK_SECRET = ******** (set)\n" in shown
    for secret in (TOKEN, CALCOM_KEY, "nord-hook", "123456"):
        assert secret not in shown

    connection = await asyncpg.connect(analytics_db)
    row = str(dict(await connection.fetchrow("SELECT * FROM salons WHERE id = 'nord'")))
    await connection.close()
    assert CALCOM_KEY not in row
    assert TOKEN not in row

    assert await run("add", "south", "--set", "SALON_NAME=South", "--disabled") == 0
    assert capsys.readouterr().out.startswith("added salon south (version ")
    assert await run("list") == 0
    assert capsys.readouterr().out.splitlines() == [
        "ID     NAME         ENABLED  SERVICES",
        "nord   Studio Nord  yes      telegram, calcom",
        "south  South        no       none",
    ]

    assert await run("update", "nord", "--set", "SALON_NAME=Nord", "--set", "CALCOM_API_KEY=") == 0
    assert await run("show", "nord") == 0
    shown = capsys.readouterr().out
    assert "  SALON_NAME = Nord\n" in shown
    assert "CALCOM_API_KEY" not in shown

    assert await run("disable", "nord") == 0
    assert await run("enable", "south") == 0
    assert await run("list") == 0
    out = capsys.readouterr().out
    assert "disabled salon nord" in out
    assert "enabled salon south" in out
    assert "nord   Nord   no       telegram" in out

    assert await run("remove", "south") == 2
    assert "add --yes" in capsys.readouterr().err
    assert await run("remove", "south", "--yes") == 0
    assert await run("show", "south") == 1
    captured = capsys.readouterr()
    assert "removed salon south" in captured.out
    assert "no salon south" in captured.err


@pytest.mark.usefixtures("operator_env")
async def test_values_with_problems_write_nothing_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = await run(
        "add",
        "nord",
        "--set",
        "REDIS_URL=redis://elsewhere",
        "--set",
        "SALON_TIMEZONE=Nowhere",
        "--set",
        "TELEGRAM_BOT_TOKEN=" + TOKEN,
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "frontdesk: salon nord was not written; its values have problems:",
        "  REDIS_URL: a process-wide setting, the same for every salon: "
        "set it in the gateway's environment",
        "  SALON_TIMEZONE: unknown IANA time zone 'Nowhere'",
        "  TELEGRAM_WEBHOOK_SECRET: required when TELEGRAM_BOT_TOKEN is set "
        "(every webhook is authenticated)",
    ]
    assert TOKEN not in err
    assert await run("list") == 0
    assert "No salons yet" in capsys.readouterr().out

    # What cannot even be read is refused before the database is asked.
    assert (
        await run(
            "add", "nord", "--set", "SALON_NAME", "--set", "1:s3cr3t", "--secret", "SALON_NAME"
        )
        == 2
    )
    assert capsys.readouterr().err.splitlines()[1:] == [
        "  --set SALON_NAME: write it as NAME=VALUE",
        "  --set: write it as NAME=VALUE",
        "  --secret SALON_NAME: not a secret (a salon's setting: give it with --set)",
    ]
    assert await run("add", "nord", "--secret", "CALCOM_API_KEY", stdin="\n") == 2
    assert capsys.readouterr().err.splitlines()[1:] == [
        "  --secret CALCOM_API_KEY: no value was given",
    ]
    assert await run("add", "nord", "--file", "missing.toml", "--secret", "PORT") == 2
    assert capsys.readouterr().err.splitlines()[1:] == [
        "  missing.toml: cannot be read (No such file or directory)",
        "  --secret PORT: not a secret (unknown)",
    ]
    Path("table.toml").write_text("[salon]\nname = 'x'\n", encoding="utf-8")
    assert await run("add", "nord", "--file", "table.toml") == 2
    assert "table.toml: SALON: a table" in capsys.readouterr().err
    assert await run("add", "Nord!") == 2
    assert "salon id 'Nord!'" in capsys.readouterr().err

    assert await run("add", "nord", "--set", "SALON_NAME=Nord") == 0
    assert await run("add", "nord", "--set", "SALON_NAME=Nord") == 1
    assert "salon nord exists" in capsys.readouterr().err
    assert await run("update", "south", "--set", "SALON_NAME=South") == 1
    assert "no salon south" in capsys.readouterr().err
    assert await run("update", "nord", "--set", "SALON_TIMEZONE=Nowhere") == 2
    assert "SALON_TIMEZONE: unknown IANA time zone" in capsys.readouterr().err


@pytest.mark.usefixtures("operator_env")
async def test_rotate_secrets_then_drop_the_old_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("add", "nord", "--set", f"CALCOM_API_KEY={CALCOM_KEY}") == 0
    new_key = Fernet.generate_key().decode()
    monkeypatch.setenv("SECRETS_KEY", new_key)
    assert await run("update", "nord", "--set", "SALON_NAME=Nord") == 2
    assert "salon nord: CALCOM_API_KEY cannot be decrypted with SECRETS_KEY" in (
        capsys.readouterr().err
    )
    monkeypatch.setenv("SECRETS_KEY", f"{new_key},{KEY}")
    assert await run("rotate-secrets") == 0
    assert capsys.readouterr().out == (
        "re-encrypted 1 secrets of 1 salons with SECRETS_KEY's first key\n"
    )
    monkeypatch.setenv("SECRETS_KEY", new_key)
    assert await run("update", "nord", "--set", "SALON_NAME=Nord") == 0


@pytest.mark.usefixtures("operator_env")
async def test_what_the_commands_need_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SECRETS_KEY", "not-a-fernet-key")
    assert await run("add", "nord") == 2
    err = capsys.readouterr().err
    assert "SECRETS_KEY: key 1 is not a Fernet key" in err
    assert "not-a-fernet-key" not in err
    monkeypatch.delenv("SECRETS_KEY")
    assert await run("rotate-secrets") == 2
    assert "SECRETS_KEY is not set" in capsys.readouterr().err
    assert await run("list") == 0  # listing needs no key
    monkeypatch.delenv("REDIS_URL")  # nor Redis: the watchers' re-read sees the change
    assert await run("list") == 0
    monkeypatch.delenv("DATABASE_URL")
    assert await run("list") == 2
    assert "salons need DATABASE_URL" in capsys.readouterr().err
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    assert await run("list") == 1
    assert "cannot reach the registry's database" in capsys.readouterr().err
    monkeypatch.setenv("DATABASE_URL", "mysql://salons@127.0.0.1/none")
    assert await run("list") == 1
    assert "DATABASE_URL cannot be read" in capsys.readouterr().err
    # A password with a `#` unencoded: asyncpg's words would quote a piece of it.
    monkeypatch.setenv("DATABASE_URL", "postgresql://fd:s3cr#etpass@127.0.0.1/none")
    assert await run("list") == 1
    err = capsys.readouterr().err
    assert "DATABASE_URL cannot be read (a password with @, #, / or : is written URL-encoded" in err
    assert "s3cr" not in err


@pytest.mark.usefixtures("operator_env")
async def test_a_mistyped_name_to_remove_is_refused_and_a_salt_required_with_analytics(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], analytics_db: str
) -> None:
    assert await run("add", "nord", "--set", "SALON_NAME=Nord", "--set", "CALCOM_TEAM_ID=4") == 0
    capsys.readouterr()
    for wrong in ("CALCOM_TEAMID=", "REDIS_URL=", "SALON_ID="):
        assert await run("update", "nord", "--set", wrong) == 2
        assert "updated" not in capsys.readouterr().out
    assert await run("show", "nord") == 0
    assert "CALCOM_TEAM_ID = 4" in capsys.readouterr().out
    # With analytics on, each salon's clients are hashed with its own salt: required.
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", analytics_db)
    monkeypatch.setenv("ANALYTICS_SALT", "the-process-salt-of-at-least-16")
    assert await run("add", "south", "--set", "SALON_NAME=South") == 2
    assert "ANALYTICS_SALT: required" in capsys.readouterr().err
    salted = "ANALYTICS_SALT=south-salt-0123456789abcdef"
    assert await run("add", "south", "--set", "SALON_NAME=South", "--set", salted) == 0


@pytest.mark.usefixtures("operator_env")
async def test_a_secret_from_the_terminal_is_read_without_echo(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts: list[str] = []

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    def getpass(prompt: str) -> str:
        prompts.append(prompt)
        return CALCOM_KEY

    monkeypatch.setattr("getpass.getpass", getpass)
    monkeypatch.setattr("sys.stdin", Terminal())
    code = await asyncio.to_thread(
        main,
        [
            "salons",
            "add",
            "nord",
            "--set",
            "CALCOM_API_URL=https://c.example",
            "--secret",
            "calcom_api_key",
        ],
    )
    assert code == 0
    assert prompts == ["CALCOM_API_KEY: "]
    assert CALCOM_KEY not in capsys.readouterr().out
