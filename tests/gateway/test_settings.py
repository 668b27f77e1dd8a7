"""The operator's contract: settings from the environment, one clear line per problem."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway import cli
from gateway.settings import Settings, SettingsError, load

TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvw"
SECRET = "test-webhook-secret_1"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting from the machine running the tests, and no `.env` but the test's own."""
    fields = set(Settings.model_fields)
    for name in list(os.environ):
        if name.lower() in fields:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def problems(**env: str) -> tuple[str, ...]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        with pytest.raises(SettingsError) as error:
            load()
    return error.value.problems


def test_defaults_have_every_channel_and_service_off() -> None:
    settings = load()
    assert settings.services() == {
        "telegram": False,
        "whatsapp": False,
        "calcom": False,
        "chatwoot": False,
        "novu": False,
        "metabase": False,
        "analytics": False,
    }
    assert not settings.telegram_enabled
    assert settings.secrets() == []
    assert settings.redis_url is None
    assert settings.zone.key == "UTC"


def test_the_address_and_hours_per_language(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALON_ADDRESS", "1 Example Street")
    monkeypatch.setenv("SALON_ADDRESS_RU", "Москва, Примерная ул., 1")
    monkeypatch.setenv("SALON_HOURS_EN", "Mon–Sat 10–20")
    settings = load()
    assert settings.salon_addresses == (("ru", "Москва, Примерная ул., 1"),)
    assert settings.salon_opening_hours == (("en", "Mon–Sat 10–20"),)
    assert load().salon_address == "1 Example Street"


def test_a_complete_telegram_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("SALON_TIMEZONE", "Europe/Moscow")
    monkeypatch.setenv("REDIS_URL", "redis://localhost:6379/0")
    monkeypatch.setenv("TELEGRAM_API_URL", "http://sandbox:8081/")
    settings = load()
    assert settings.telegram_enabled
    assert settings.services()["telegram"]
    assert settings.zone.key == "Europe/Moscow"
    assert settings.telegram_api_url == "http://sandbox:8081"


def test_settings_are_read_from_dotenv_in_the_working_directory(clean_env: Path) -> None:
    (clean_env / ".env").write_text("SALON_NAME=Studio Nord\nDEFAULT_LOCALE=ru\n")
    settings = load()
    assert (settings.salon_name, settings.default_locale) == ("Studio Nord", "ru")


def test_a_token_without_a_webhook_secret_is_an_error() -> None:
    [problem] = problems(TELEGRAM_BOT_TOKEN=TOKEN)
    assert "TELEGRAM_WEBHOOK_SECRET" in problem
    assert "TELEGRAM_BOT_TOKEN" in problem
    assert TOKEN not in problem
    assert "123456" not in problem


@pytest.mark.parametrize(
    ("env", "variable", "secret"),
    [
        ({"SALON_TIMEZONE": "Mars/Olympus"}, "SALON_TIMEZONE", None),
        ({"SALON_TIMEZONE": "../etc/passwd"}, "SALON_TIMEZONE", None),
        ({"DEFAULT_LOCALE": "de"}, "DEFAULT_LOCALE", None),
        ({"REDIS_URL": "http://user:hunter2@cache:6379"}, "REDIS_URL", "hunter2"),
        (
            {"TELEGRAM_BOT_TOKEN": "not-a-token-s3cr3t", "TELEGRAM_WEBHOOK_SECRET": SECRET},
            "TELEGRAM_BOT_TOKEN",
            "not-a-token-s3cr3t",
        ),
        (
            {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": "has spaces s3cr3t!"},
            "TELEGRAM_WEBHOOK_SECRET",
            "has spaces s3cr3t!",
        ),
        ({"PORT": "eighty"}, "PORT", None),
        ({"SALON_ID": "Main Salon"}, "SALON_ID", None),
        ({"OUTBOX_RETRY_SCHEDULE": "30,120,300"}, "OUTBOX_RETRY_SCHEDULE", None),
        ({"NOVU_API_KEY": "nv-s3cr3t"}, "NOVU_API_URL", "nv-s3cr3t"),
        ({"REMINDER_HOURS": "[24, 0]"}, "REMINDER_HOURS", None),
    ],
)
def test_each_problem_is_one_line_naming_the_variable(
    env: dict[str, str], variable: str, secret: str | None
) -> None:
    [problem] = problems(**env)
    assert problem.startswith(f"{variable}: ")
    assert "\n" not in problem
    if secret is not None:
        assert secret not in problem
        assert "s3cr3t" not in problem


def test_every_problem_is_reported_at_once() -> None:
    found = problems(SALON_TIMEZONE="Nowhere/City", DEFAULT_LOCALE="fr", REDIS_URL="localhost")
    assert sorted(p.split(":", 1)[0] for p in found) == [
        "DEFAULT_LOCALE",
        "REDIS_URL",
        "SALON_TIMEZONE",
    ]


def test_the_error_reads_as_its_lines() -> None:
    error = SettingsError(("A: one", "B: two"))
    assert str(error) == "A: one\nB: two"


def test_secrets_lists_every_secret_value_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("CALCOM_API_KEY", "cal_live_abcdef")
    monkeypatch.setenv("NOVU_API_KEY", "")
    monkeypatch.setenv("SALON_PHONE", "+7 495 123-45-67")
    assert sorted(load().secrets()) == sorted([TOKEN, SECRET, "cal_live_abcdef"])
    # One secret per Chatwoot inbox: each is scrubbed alone too.
    monkeypatch.setenv("CHATWOOT_WEBHOOK_SECRET", "inbox-one,inbox-two")
    assert {"inbox-one", "inbox-two"} <= set(load().secrets())


def test_serve_with_a_bad_configuration_exits_2_with_one_line_per_problem(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SALON_TIMEZONE", "Mars/Olympus")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "leaky-token-value")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    assert cli.main(["serve"]) == cli.EXIT_CONFIG == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == "frontdesk: the configuration has problems:"
    assert sorted(line.strip().split(":", 1)[0] for line in lines[1:]) == [
        "SALON_TIMEZONE",
        "TELEGRAM_BOT_TOKEN",
    ]
    assert "Traceback" not in err
    assert "leaky-token-value" not in err
    assert SECRET not in err


def test_serve_with_an_unparsable_value_exits_2_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OUTBOX_RETRY_SCHEDULE", "30,120,300")
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "OUTBOX_RETRY_SCHEDULE" in err
    assert "Traceback" not in err


def test_a_whatsapp_token_without_the_rest_names_what_is_missing() -> None:
    [problem] = problems(WHATSAPP_ACCESS_TOKEN="EAAG-s3cr3t", WHATSAPP_APP_SECRET="app-s3cr3t")
    assert problem.startswith("WHATSAPP_VERIFY_TOKEN:")
    assert "WHATSAPP_PHONE_NUMBER_ID" in problem
    assert "WHATSAPP_APP_SECRET" not in problem
    assert "s3cr3t" not in problem


def test_a_complete_whatsapp_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "WHATSAPP_ACCESS_TOKEN": "EAAG-token",
        "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
        "WHATSAPP_APP_SECRET": "app-secret",
        "WHATSAPP_VERIFY_TOKEN": "verify",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load()
    assert settings.whatsapp_enabled
    assert settings.services()["whatsapp"] is True
    assert "app-secret" in settings.secrets()


def test_a_whatsapp_number_id_is_digits() -> None:
    [problem] = problems(WHATSAPP_PHONE_NUMBER_ID="+7 916")
    assert problem.startswith("WHATSAPP_PHONE_NUMBER_ID:")


def test_a_chatwoot_token_without_the_rest_names_what_is_missing() -> None:
    [problem] = problems(CHATWOOT_API_TOKEN="cw-s3cr3t")
    assert problem.startswith("CHATWOOT_WEBHOOK_TOKEN:")
    for name in ("CHATWOOT_URL", "CHATWOOT_ACCOUNT_ID", "INBOX_ID", "CHATWOOT_WEBHOOK_SECRET"):
        assert name in problem
    assert "s3cr3t" not in problem


def test_a_complete_chatwoot_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "CHATWOOT_API_TOKEN": "cw-token",
        "CHATWOOT_URL": "https://chat.salon.example/",
        "CHATWOOT_ACCOUNT_ID": "1",
        "CHATWOOT_WHATSAPP_INBOX_ID": "7",
        "CHATWOOT_WEBHOOK_TOKEN": "path-token",
        "CHATWOOT_MIRROR": "handoff",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load()
    assert settings.chatwoot_enabled
    assert settings.chatwoot_url == "https://chat.salon.example"
    assert settings.services()["chatwoot"] is True
    [problem] = problems(CHATWOOT_MIRROR="some")
    assert problem.startswith("CHATWOOT_MIRROR:")


def test_novu_signs_with_its_api_key_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVU_API_URL", "https://eu.api.novu.co/")
    monkeypatch.setenv("NOVU_API_KEY", "nv-key")
    monkeypatch.setenv("REMINDER_HOURS", "[2, 24, 2]")
    settings = load()
    assert settings.novu_enabled
    assert settings.novu_api_url == "https://eu.api.novu.co"
    assert settings.novu_signing_key == "nv-key"
    assert settings.reminder_hours == (24.0, 2.0)
    monkeypatch.setenv("NOVU_WEBHOOK_SECRET", "other")
    assert load().novu_signing_key == "other"
