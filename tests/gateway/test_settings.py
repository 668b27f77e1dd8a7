"""The operator's contract: settings from the environment, one clear line per problem."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway import cli
from gateway.salon_settings import SalonSettings
from gateway.settings import Settings, SettingsError, load, salon_from_values

TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvw"
SECRET = "test-webhook-secret_1"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting from the machine running the tests, and no `.env` but the test's own."""
    fields = set(Settings.names())
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
    assert settings.salon.telegram is None
    assert settings.secrets() == []
    assert settings.redis_url is None
    assert settings.salon.profile.zone.key == "UTC"


def test_the_address_and_hours_per_language(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALON_ADDRESS", "1 Example Street")
    monkeypatch.setenv("SALON_ADDRESS_RU", "Москва, Примерная ул., 1")
    monkeypatch.setenv("SALON_HOURS_EN", "Mon–Sat 10–20")
    settings = load()
    assert settings.salon.profile.addresses == (("ru", "Москва, Примерная ул., 1"),)
    assert settings.salon.profile.opening_hours == (("en", "Mon–Sat 10–20"),)
    assert load().salon.profile.address == "1 Example Street"


def test_a_complete_telegram_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("SALON_TIMEZONE", "Europe/Moscow")
    monkeypatch.setenv("REDIS_URL", "redis://localhost:6379/0")
    monkeypatch.setenv("TELEGRAM_API_URL", "http://sandbox:8081/")
    settings = load()
    assert settings.salon.telegram is not None
    assert settings.services()["telegram"]
    assert settings.salon.profile.zone.key == "Europe/Moscow"
    assert settings.salon.telegram.api_url == "http://sandbox:8081"


def test_settings_are_read_from_dotenv_in_the_working_directory(clean_env: Path) -> None:
    (clean_env / ".env").write_text("SALON_NAME=Studio Nord\nDEFAULT_LOCALE=ru\n")
    settings = load()
    profile = settings.salon.profile
    assert (profile.name, profile.default_locale) == ("Studio Nord", "ru")


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


def test_secrets_hold_each_key_and_each_database_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SECRETS_KEY", "first-fernet-key,older-fernet-key")
    monkeypatch.setenv("DATABASE_URL", "postgresql://fd:registry-pass@db/salons")
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", "postgresql://fd:analytics-pass@db/facts")
    monkeypatch.setenv("ANALYTICS_SALT", "a-salt-of-sixteen-or-more")
    found = set(load().secrets())
    assert {"first-fernet-key", "older-fernet-key", "registry-pass", "analytics-pass"} <= found


def test_the_public_url_loses_its_trailing_slash_and_must_be_http() -> None:
    assert load(public_url="https://desk.example/").public_url == "https://desk.example"
    assert problems(PUBLIC_URL="ftp://desk.example")[0].startswith("PUBLIC_URL: ")


def test_the_environment_keeps_every_validator_of_the_process_and_the_salon() -> None:
    # `Environment` inherits both: a validator named like one of the other's would replace it.
    from gateway.salon_settings import _SalonValues
    from gateway.settings import Environment, _ProcessValues

    def checked(model: type) -> set[str]:
        return {
            field
            for decorator in model.__pydantic_decorators__.field_validators.values()
            for field in decorator.info.fields
        }

    assert checked(Environment) == checked(_ProcessValues) | checked(_SalonValues)


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
    assert settings.salon.whatsapp is not None
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
    assert settings.salon.chatwoot is not None
    assert settings.salon.chatwoot.url == "https://chat.salon.example"
    assert settings.services()["chatwoot"] is True
    [problem] = problems(CHATWOOT_MIRROR="some")
    assert problem.startswith("CHATWOOT_MIRROR:")


def test_novu_signs_with_its_api_key_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVU_API_URL", "https://eu.api.novu.co/")
    monkeypatch.setenv("NOVU_API_KEY", "nv-key")
    monkeypatch.setenv("REMINDER_HOURS", "[2, 24, 2]")
    settings = load()
    assert settings.salon.novu is not None
    assert settings.salon.novu.api_url == "https://eu.api.novu.co"
    assert settings.salon.novu.signing_key == "nv-key"
    assert settings.salon.reminder_hours == (24.0, 2.0)
    monkeypatch.setenv("NOVU_WEBHOOK_SECRET", "other")
    assert (novu := load().salon.novu) is not None
    assert novu.signing_key == "other"


def test_a_salon_is_validated_from_the_environments_flat_names() -> None:
    salon = SalonSettings.from_values(
        {
            "SALON_ID": "nord",
            "salon_name": "Studio Nord",
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "CHATWOOT_API_TOKEN": "cw-token",
            "CHATWOOT_URL": "https://chat.salon.example/",
            "CHATWOOT_ACCOUNT_ID": "3",
            "CHATWOOT_TELEGRAM_INBOX_ID": "7",
            "CHATWOOT_WEBHOOK_SECRET": "one, two",
        }
    )
    assert (salon.profile.id, salon.profile.name) == ("nord", "Studio Nord")
    assert salon.telegram is not None
    assert salon.telegram.bot_token.get_secret_value() == TOKEN
    assert salon.chatwoot is not None
    assert salon.chatwoot.telegram_inbox_id == 7
    assert salon.chatwoot.inboxes() == {"telegram": 7}
    assert salon.chatwoot.webhook_secrets() == ["one", "two"]
    assert salon.chatwoot.rate_global == 40.0
    assert salon.inbox("telegram")
    assert not salon.inbox("whatsapp")
    assert (salon.whatsapp, salon.calcom, salon.novu, salon.metabase) == (None, None, None, None)
    assert {"one", "two", TOKEN} <= set(salon.secrets())


def test_a_salons_problems_are_one_line_each_naming_the_variable() -> None:
    with pytest.raises(SettingsError) as error:
        salon_from_values({"TELEGRAM_BOT_TOKEN": TOKEN, "SALON_TIMEZONE": "Mars/Olympus"})
    assert sorted(p.split(":", 1)[0] for p in error.value.problems) == [
        "SALON_TIMEZONE",
        "TELEGRAM_WEBHOOK_SECRET",
    ]


def test_the_pace_of_chatwoot_and_novu_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVU_API_URL", "https://eu.api.novu.co")
    monkeypatch.setenv("NOVU_API_KEY", "nv-key")
    monkeypatch.setenv("NOVU_RATE_GLOBAL", "5")
    novu = load().salon.novu
    assert novu is not None
    assert novu.rate_global == 5.0
    [problem] = problems(CHATWOOT_RATE_GLOBAL="0")
    assert problem.startswith("CHATWOOT_RATE_GLOBAL:")


def test_the_dashboard_embeds_only_with_site_secret_dashboard_and_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("METABASE_SITE_URL", "https://metabase.salon.example/")
    assert load().salon.embedding is None
    monkeypatch.setenv("METABASE_SECRET_KEY", "mb-secret")
    monkeypatch.setenv("METABASE_DASHBOARD_ID", "4")
    assert load().salon.embedding is None
    monkeypatch.setenv("ANALYTICS_EMBED_TOKEN", "staff-token")
    embed = load().salon.embedding
    assert embed is not None
    assert (embed.site_url, embed.dashboard_id) == ("https://metabase.salon.example", 4)


def test_the_analytics_database_is_the_processs_and_the_salt_the_salons(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", "postgresql://db/frontdesk")
    [problem] = problems(ANALYTICS_SALT="short")
    assert problem.startswith("ANALYTICS_SALT: must be at least 16")
    monkeypatch.setenv("ANALYTICS_SALT", "a-long-random-salt-value")
    settings = load()
    assert settings.analytics is not None
    assert settings.salon.analytics.salt is not None
    assert "postgresql://db/frontdesk" in settings.secrets()


def test_a_salon_changed_on_a_copy_is_validated_again() -> None:
    settings = load(telegram_bot_token=TOKEN, telegram_webhook_secret=SECRET)
    changed = settings.with_salon(salon_name="Studio Sud", calcom_team_id=5)
    assert changed.salon.profile.name == "Studio Sud"
    assert changed.salon.telegram == settings.salon.telegram
    assert settings.salon.profile.name == "Salon"
    with pytest.raises(SettingsError):
        settings.with_salon(telegram_webhook_secret=None)


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({"REDIS_URL": "redis://cache:6379/0"}, "redis://cache:6379/0"),
        ({"REDIS_URL": "redis+cluster://node-1:7000"}, "redis+cluster://node-1:7000"),
        ({"REDIS_URL": "rediss+cluster://u:p@node-1:7000/0"}, "rediss+cluster://u:p@node-1:7000/0"),
        (
            {"REDIS_URL": "redis://node-1:7000", "REDIS_CLUSTER": "true"},
            "redis+cluster://node-1:7000",
        ),
        (
            {"REDIS_URL": "rediss://node-1:7000/", "REDIS_CLUSTER": "1"},
            "rediss+cluster://node-1:7000/",
        ),
        ({"REDIS_URL": "redis://cache:6379/3", "REDIS_CLUSTER": "false"}, "redis://cache:6379/3"),
    ],
)
def test_a_cluster_is_named_by_its_url_or_redis_cluster(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load()
    assert settings.redis_url == url
    assert settings.redis_cluster == ("+cluster://" in url)


@pytest.mark.parametrize(
    "env",
    [
        {"REDIS_URL": "redis+cluster://node-1:7000/3"},
        {"REDIS_URL": "redis://node-1:7000/3", "REDIS_CLUSTER": "true"},
        {"REDIS_URL": "unix:///run/redis.sock", "REDIS_CLUSTER": "true"},
        {"REDIS_URL": "redis+sentinel://node-1:7000"},
    ],
)
def test_what_no_cluster_can_be_is_refused(env: dict[str, str]) -> None:
    [problem] = problems(**env)
    assert problem.startswith(("REDIS_URL", "REDIS_CLUSTER"))
