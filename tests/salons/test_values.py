"""A salon's values: the environment's names, which are secret, validation, the TOML file."""

from __future__ import annotations

import pytest

from gateway.salon_settings import SalonSettings
from gateway.salons.values import (
    SALON_NAMES,
    SECRET_NAMES,
    check_id,
    from_toml,
    name_problems,
    services_of,
    validate_salon,
)
from gateway.settings import Settings, SettingsError

TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvw"


def test_a_salon_holds_its_own_names_and_none_of_the_process() -> None:
    for name in (
        "SALON_NAME",
        "SALON_TIMEZONE",
        "DEFAULT_LOCALE",
        "SALON_ADDRESS_RU",
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_WEBHOOK_SECRET",
        "WHATSAPP_PHONE_NUMBER_ID",
        "CALCOM_API_URL",
        "CALCOM_API_KEY",
        "CHATWOOT_API_TOKEN",
        "NOVU_API_KEY",
        "METABASE_DASHBOARD_ID",
        "ANALYTICS_EMBED_TOKEN",
        "REMINDER_HOURS",
    ):
        assert name in SALON_NAMES, name
    for name in ("REDIS_URL", "PORT", "STREAM_SHARDS", "SALON_ID", "DATABASE_URL", "SECRETS_KEY"):
        assert name not in SALON_NAMES, name
    assert {name.upper() for name in Settings.names()} >= SALON_NAMES


def test_the_secrets_are_the_settings_typed_secretstr() -> None:
    assert {"TELEGRAM_BOT_TOKEN", "CALCOM_API_KEY", "ANALYTICS_EMBED_TOKEN"} <= SECRET_NAMES
    assert SECRET_NAMES <= SALON_NAMES
    assert "SALON_NAME" not in SECRET_NAMES
    assert "CALCOM_API_URL" not in SECRET_NAMES


def test_names_that_are_not_a_salons_are_refused_one_line_each() -> None:
    assert name_problems(["SALON_NAME", "REDIS_URL", "SALON_ID", "FAVOURITE_COLOUR"]) == [
        "FAVOURITE_COLOUR: not a setting of Frontdesk",
        "REDIS_URL: a process-wide setting, the same for every salon: "
        "set it in the gateway's environment",
        "SALON_ID: the salon's id is the command's argument, not a value",
    ]


def test_ids_follow_salon_id() -> None:
    assert check_id("studio-nord_2") is None
    assert check_id("Nord") is not None
    assert check_id("_registry") is not None
    assert check_id("a" * 33) is not None


def test_validation_reads_the_values_and_never_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SALON_NAME", "From the environment")
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / ".env").write_text("SALON_TIMEZONE=Europe/Moscow\n")  # type: ignore[operator]
    settings = validate_salon({"SALON_NAME": "Studio Nord", "REMINDER_HOURS": "[2, 24]"})
    assert settings.profile.name == "Studio Nord"
    assert settings.telegram is None
    assert settings.profile.timezone == "UTC"
    assert settings.reminder_hours == (24.0, 2.0)
    assert isinstance(settings, SalonSettings)


def test_validation_reports_every_problem_without_repeating_a_secret() -> None:
    with pytest.raises(SettingsError) as caught:
        validate_salon(
            {
                "TELEGRAM_BOT_TOKEN": "not-a-token-at-all",
                "SALON_TIMEZONE": "Mars/Olympus",
                "REMINDER_HOURS": "24, 2",
                "PORT": "80",
                "CHATWOOT_ACCOUNT_ID": "three",
                "CHATWOOT_TEAM_ID": "",  # empty: not set, as in the environment
            }
        )
    problems = caught.value.problems
    assert problems == (
        "PORT: a process-wide setting, the same for every salon: "
        "set it in the gateway's environment",
        "REMINDER_HOURS: cannot be read (a list is written as JSON: [24, 2])",
        "SALON_TIMEZONE: unknown IANA time zone 'Mars/Olympus'",
        "TELEGRAM_BOT_TOKEN: does not look like a bot token from @BotFather (<id>:<secret>)",
        "CHATWOOT_ACCOUNT_ID: Input should be a valid integer, unable to parse string as an "
        "integer",
    )
    assert "not-a-token-at-all" not in str(caught.value)
    with pytest.raises(SettingsError) as caught:
        validate_salon({"TELEGRAM_BOT_TOKEN": TOKEN})
    assert caught.value.problems == (
        "TELEGRAM_WEBHOOK_SECRET: required when TELEGRAM_BOT_TOKEN is set "
        "(every webhook is authenticated)",
    )


def test_a_name_problem_alone_is_reported_too() -> None:
    with pytest.raises(SettingsError) as caught:
        validate_salon({"STREAM_SHARDS": "4"})
    assert caught.value.problems[0].startswith("STREAM_SHARDS: a process-wide setting")


def test_services_are_told_from_the_names_alone() -> None:
    assert services_of([]) == []
    assert services_of(["SALON_NAME", "TELEGRAM_BOT_TOKEN", "CALCOM_API_URL"]) == ["telegram"]
    assert services_of(["CALCOM_API_URL", "CALCOM_API_KEY", "NOVU_API_KEY", "NOVU_API_URL"]) == [
        "calcom",
        "novu",
    ]
    assert services_of(["REDIS_URL"]) == []


def test_a_toml_file_holds_the_environments_names_at_the_top_level() -> None:
    values = from_toml(
        """
        salon_name = "Studio Nord"
        SALON_TIMEZONE = "Europe/Moscow"
        CHATWOOT_ACCOUNT_ID = 3
        REMINDER_HOURS = [24, 2]
        TELEGRAM_RATE_PER_CHAT = 0.5
        CHATWOOT_LABELS = ["handoff", "vip"]
        """
    )
    assert values == {
        "SALON_NAME": "Studio Nord",
        "SALON_TIMEZONE": "Europe/Moscow",
        "CHATWOOT_ACCOUNT_ID": "3",
        "REMINDER_HOURS": "[24, 2]",
        "TELEGRAM_RATE_PER_CHAT": "0.5",
        "CHATWOOT_LABELS": '["handoff", "vip"]',
    }
    chatwoot = {
        "CHATWOOT_API_TOKEN": "t0ken",
        "CHATWOOT_URL": "https://desk.example",
        "CHATWOOT_WEBHOOK_SECRET": "whsec",
    }
    settings = validate_salon(values | chatwoot | {"CHATWOOT_TELEGRAM_INBOX_ID": "4"})
    assert settings.chatwoot is not None
    assert settings.chatwoot.labels == ("handoff", "vip")
    assert from_toml("X = true\nY = false") == {"X": "true", "Y": "false"}


def test_a_toml_file_with_a_table_or_broken_is_refused() -> None:
    with pytest.raises(SettingsError) as caught:
        from_toml('[salon]\nname = "Nord"\n')
    assert caught.value.problems == (
        "SALON: a table; write each value as NAME = value at the top level",
    )
    with pytest.raises(SettingsError, match="not TOML"):
        from_toml("SALON_NAME = ")
