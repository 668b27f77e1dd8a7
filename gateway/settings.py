"""The operator's contract: every setting comes from the environment (or `.env`), validated once.

The names are those of DESIGN §3. A channel or service whose variables are all absent is *off*;
one that is half configured is an error, reported with one line per problem (see `load`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

SUPPORTED_LOCALES = ("ru", "en")
# Bot API: "1-256 characters. Only characters A-Z, a-z, 0-9, _ and - are allowed."
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_BOT_TOKEN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,}$")
TELEGRAM_PUBLIC_API = "https://api.telegram.org"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        # `WHATSAPP_ACCESS_TOKEN=` (a template line left blank) means "not set", not "set to ''".
        env_ignore_empty=True,
    )

    # Process
    host: str = "0.0.0.0"  # noqa: S104 - a container listens on all interfaces
    port: int = Field(default=8080, ge=1, le=65535)
    redis_url: str | None = None
    public_url: str | None = None
    log_format: str = Field(default="json", pattern="^(json|text)$")
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")

    # The salon. One salon per deployment today; every key still carries its id.
    salon_id: str = Field(default="main", pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    salon_name: str = "Salon"
    salon_timezone: str = "UTC"
    salon_address: str = ""
    salon_phone: str = ""
    salon_hours: str = ""
    # The address and hours in each language the bot speaks; the plain ones for the others.
    salon_address_ru: str = ""
    salon_address_en: str = ""
    salon_hours_ru: str = ""
    salon_hours_en: str = ""
    default_locale: str = "en"
    # ISO 4217 code of the prices in the catalogue (Cal.com event-type metadata `price`).
    salon_currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")

    # Telegram
    telegram_bot_token: SecretStr | None = None
    # Validated even when absent: it is required once the token is set.
    telegram_webhook_secret: SecretStr | None = Field(default=None, validate_default=True)
    telegram_api_url: str = TELEGRAM_PUBLIC_API
    # Telegram's flood limits: about 1 message/s per chat (short bursts tolerated), 30/s per bot.
    telegram_rate_per_chat: float = Field(default=1.0, gt=0)
    telegram_burst_per_chat: int = Field(default=3, ge=1)
    telegram_rate_global: float = Field(default=30.0, gt=0)

    # Workers and queues
    # Off: this process only takes webhooks, other replicas do the work.
    run_workers: bool = True
    stream_shards: int = Field(default=8, ge=1, le=256)
    max_attempts: int = Field(default=5, ge=1, le=100)
    lease_seconds: float = Field(default=15.0, gt=0)
    # Longer than any provider redelivers: Meta retries a webhook for up to 7 days.
    dedup_ttl_seconds: int = Field(default=8 * 24 * 3600, ge=60)
    # Outbox retries: 30 s -> 2 min -> 5 min, then the dead-letter stream.
    outbox_retry_schedule: tuple[float, ...] = (30.0, 120.0, 300.0)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # The edge's bounds on hostile traffic (README, "Hostile traffic"): bodies read at once
    # before their signature could be checked, seconds for a body to arrive, and seconds a
    # connection may wait for a complete request head (idle keep-alive or a dribbled head).
    edge_max_pending_reads: int = Field(default=32, ge=1, le=10_000)
    edge_read_timeout_seconds: float = Field(default=10.0, gt=0)
    keepalive_seconds: float = Field(default=15.0, gt=0)
    session_idle_minutes: int = Field(default=60 * 24, ge=1)
    # A client's session (language, where they are, the name and phone they gave) is deleted
    # this long after their last message.
    session_retention_days: int = Field(default=180, ge=1, le=3650)
    # Calls to an external service (Cal.com) give up after this long; that many failures in a
    # row open its circuit breaker, which lets a trial call through after the reset time.
    service_timeout_seconds: float = Field(default=10.0, gt=0)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=30.0, gt=0)

    # WhatsApp Cloud API: on when the access token is set, and then all four are required.
    whatsapp_access_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = Field(default=None, pattern=r"^\d{1,32}$")
    whatsapp_app_secret: SecretStr | None = None
    # Validated even when absent: it reports what a half-configured WhatsApp lacks.
    whatsapp_verify_token: SecretStr | None = Field(default=None, validate_default=True)
    whatsapp_api_url: str = "https://graph.facebook.com/v23.0"
    whatsapp_template_reply_waiting: str = "frontdesk_reply_waiting"
    whatsapp_template_confirmation: str = "frontdesk_booking_confirmed"
    whatsapp_template_reminder: str = "frontdesk_reminder"
    # WhatsApp's limits: 80 messages/s per business number; one message per 6 s to the same
    # client, with bursts of up to 45 borrowed from later (beyond: error 131056).
    whatsapp_rate_per_chat: float = Field(default=0.17, gt=0)
    whatsapp_burst_per_chat: int = Field(default=20, ge=1)
    whatsapp_rate_global: float = Field(default=80.0, gt=0)

    # Chatwoot: on when the API token is set. One API-channel inbox per messenger.
    chatwoot_api_token: SecretStr | None = None
    chatwoot_url: str | None = None
    chatwoot_account_id: int | None = None
    chatwoot_telegram_inbox_id: int | None = None
    chatwoot_whatsapp_inbox_id: int | None = None
    # The inboxes' webhook secrets (Chatwoot 4.13+), comma-separated when they differ.
    chatwoot_webhook_secret: SecretStr | None = None
    # For Chatwoot before 4.13 (unsigned webhooks): a random token the inbox's webhook URL ends
    # with, /webhooks/chatwoot/<token>.
    chatwoot_webhook_token: SecretStr | None = Field(default=None, validate_default=True)
    # "all": every bot conversation appears in Chatwoot as it happens; "handoff": only from
    # the handoff on, with the recent transcript first.
    chatwoot_mirror: str = Field(default="all", pattern="^(all|handoff)$")
    # An agent bot's access token (optional): the handoff's pending → open is then Chatwoot's
    # own bot handoff, and the inbox's auto-assignment applies, instead of Chatwoot assigning
    # the conversation to the API token's user when that user is an agent.
    chatwoot_bot_token: SecretStr | None = None
    chatwoot_team_id: int | None = None
    chatwoot_assignee_id: int | None = None
    chatwoot_labels: tuple[str, ...] = ("handoff",)
    # How often conversations a person owns are checked for agent replies whose webhook never
    # came (Chatwoot delivers webhooks at most once).
    chatwoot_reconcile_seconds: float = Field(default=60.0, gt=0)

    # Cal.com: on when the URL and the API key are set.
    calcom_api_url: str | None = None
    calcom_api_key: SecretStr | None = None
    calcom_webhook_secret: SecretStr | None = None
    calcom_team_id: int | None = None
    # How often Cal.com's recently updated bookings are read for changes whose webhook never
    # came (Cal.com's retries depend on the deployment).
    calcom_reconcile_seconds: float = Field(default=300.0, gt=0)
    # How far back the very first reconciliation reads (0: from its own start).
    calcom_reconcile_lookback_hours: float = Field(default=24.0, ge=0)

    # Novu: on when the URL and the API key are set. Novu signs its requests to the gateway
    # with the environment's secret key, the API key, unless NOVU_WEBHOOK_SECRET says otherwise.
    novu_api_key: SecretStr | None = None
    novu_api_url: str | None = Field(default=None, validate_default=True)
    novu_webhook_secret: SecretStr | None = None
    # How long after a messenger notice is due the gateway waits for Novu to post it back
    # before sending it itself (Novu does not retry a failed post), and how often it looks.
    novu_grace_seconds: float = Field(default=300.0, gt=0)
    novu_ledger_seconds: float = Field(default=30.0, gt=0)
    # Reminders before each visit, in hours (JSON list in the environment: [24, 2]).
    reminder_hours: tuple[float, ...] = (24.0, 2.0)

    # Analytics: on when the database URL is set (postgresql://user:password@host:5432/db).
    # Clients appear in it under a hash salted with ANALYTICS_SALT, which must then be set and
    # kept (a new salt makes everyone a new client).
    analytics_database_url: SecretStr | None = None
    analytics_salt: SecretStr | None = Field(default=None, validate_default=True)
    # Metabase: the site, its embedding secret, and an API key (or a user and password) for
    # `frontdesk metabase sync`; the dashboard it made, for GET /analytics/embed.
    metabase_site_url: str | None = None
    metabase_secret_key: SecretStr | None = None
    metabase_api_key: SecretStr | None = None
    metabase_user: str | None = None
    metabase_password: SecretStr | None = None
    metabase_dashboard_id: int | None = None
    # Staff open the dashboard through GET /analytics/embed with this token.
    analytics_embed_token: SecretStr | None = None
    # The salon registry (gateway/salons): its PostgreSQL (may be the analytics database) and
    # the Fernet keys its secrets are encrypted with, comma-separated, the first one encrypting.
    database_url: SecretStr | None = None
    secrets_key: SecretStr | None = None

    # GET /metrics: with a token set, only `Authorization: Bearer <token>` is answered. Queue
    # depths and lags are read from Redis in the background this often, never per scrape.
    metrics_token: SecretStr | None = None
    metrics_refresh_seconds: float = Field(default=5.0, gt=0)

    @field_validator("salon_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("default_locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        if value not in SUPPORTED_LOCALES:
            raise ValueError(f"must be one of {', '.join(SUPPORTED_LOCALES)}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(redis|rediss|unix)://", value):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator(
        "public_url",
        "telegram_api_url",
        "whatsapp_api_url",
        "chatwoot_url",
        "novu_api_url",
        "metabase_site_url",
    )
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/") if value else value

    @field_validator("telegram_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        # The message never repeats the value: it is a secret.
        if value is not None and not _BOT_TOKEN.match(value.get_secret_value()):
            raise ValueError("does not look like a bot token from @BotFather (<id>:<secret>)")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # A field validator rather than a model one, so that this problem is reported together
        # with every other (model validators only run once all fields are valid).
        if value is None:
            if info.data.get("telegram_bot_token") is not None:
                raise ValueError(
                    "required when TELEGRAM_BOT_TOKEN is set (every webhook is authenticated)"
                )
            return value
        if not _SECRET_TOKEN.match(value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("whatsapp_verify_token")
    @classmethod
    def _whatsapp_complete(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("whatsapp_access_token") is None:
            return value
        missing = [
            name.upper()
            for name in ("whatsapp_phone_number_id", "whatsapp_app_secret")
            if info.data.get(name) is None
        ]
        if value is None:
            missing.append("WHATSAPP_VERIFY_TOKEN")
        if missing:
            # Reported on this field, together with every other problem of the configuration.
            raise ValueError(
                f"WhatsApp needs {', '.join(missing)} when WHATSAPP_ACCESS_TOKEN is set"
            )
        return value

    @field_validator("chatwoot_webhook_token")
    @classmethod
    def _chatwoot_complete(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("chatwoot_api_token") is None:
            return value
        missing = [
            name.upper()
            for name in ("chatwoot_url", "chatwoot_account_id")
            if info.data.get(name) is None
        ]
        inboxes = ("chatwoot_telegram_inbox_id", "chatwoot_whatsapp_inbox_id")
        if all(info.data.get(name) is None for name in inboxes):
            missing.append("CHATWOOT_TELEGRAM_INBOX_ID or CHATWOOT_WHATSAPP_INBOX_ID")
        if value is None and info.data.get("chatwoot_webhook_secret") is None:
            missing.append("CHATWOOT_WEBHOOK_SECRET (or, before Chatwoot 4.13, a token)")
        if missing:
            raise ValueError(f"Chatwoot needs {', '.join(missing)} when CHATWOOT_API_TOKEN is set")
        return value

    @field_validator("novu_api_url")
    @classmethod
    def _novu_complete(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("novu_api_key") is not None:
            raise ValueError("required when NOVU_API_KEY is set")
        return value

    @field_validator("analytics_salt")
    @classmethod
    def _salted(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None and info.data.get("analytics_database_url") is not None:
            raise ValueError("required when ANALYTICS_DATABASE_URL is set (a long random text)")
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("reminder_hours")
    @classmethod
    def _hours(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(hours <= 0 for hours in value):
            raise ValueError("every reminder is a number of hours before the visit, above 0")
        return tuple(sorted(set(value), reverse=True))

    @property
    def embedding_enabled(self) -> bool:
        """GET /analytics/embed: Metabase's site, secret, the dashboard and a staff token."""
        return None not in (
            self.metabase_site_url,
            self.metabase_secret_key,
            self.metabase_dashboard_id,
            self.analytics_embed_token,
        )

    @property
    def novu_enabled(self) -> bool:
        return self.novu_api_key is not None and self.novu_api_url is not None

    @property
    def novu_signing_key(self) -> str | None:
        """What Novu's requests to `/webhooks/novu` are signed with."""
        key = self.novu_webhook_secret or self.novu_api_key
        return key.get_secret_value() if key is not None else None

    @property
    def chatwoot_enabled(self) -> bool:
        return self.chatwoot_api_token is not None

    @property
    def whatsapp_enabled(self) -> bool:
        return self.whatsapp_access_token is not None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.salon_timezone)

    @property
    def salon_addresses(self) -> tuple[tuple[str, str], ...]:
        """(language, address) for each language the salon wrote its address in."""
        given = (("ru", self.salon_address_ru), ("en", self.salon_address_en))
        return tuple((locale, text) for locale, text in given if text)

    @property
    def salon_opening_hours(self) -> tuple[tuple[str, str], ...]:
        given = (("ru", self.salon_hours_ru), ("en", self.salon_hours_en))
        return tuple((locale, text) for locale, text in given if text)

    @property
    def telegram_enabled(self) -> bool:
        return self.telegram_bot_token is not None

    def services(self) -> dict[str, bool]:
        """Which channels and services are configured (on) for `/readyz` and `check`."""
        return {
            "telegram": self.telegram_enabled,
            "whatsapp": self.whatsapp_enabled,
            "calcom": self.calcom_api_key is not None and self.calcom_api_url is not None,
            "chatwoot": self.chatwoot_enabled,
            "novu": self.novu_enabled,
            "metabase": self.metabase_site_url is not None,
            "analytics": self.analytics_database_url is not None,
        }

    def secrets(self) -> list[str]:
        """Every secret value set, so that logs can scrub them wherever they appear."""
        values = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                values.append(value.get_secret_value())
                # A list of secrets (one per Chatwoot inbox): each is scrubbed on its own too.
                if "," in value.get_secret_value():
                    values += [part.strip() for part in value.get_secret_value().split(",")]
        return values


@dataclass(frozen=True)
class SettingsError(Exception):
    """Raised by `load` with one human line per problem; the CLI prints them and exits 2."""

    problems: tuple[str, ...]

    def __str__(self) -> str:
        return "\n".join(self.problems)


def load(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except SourceError as exc:
        # A value the environment source cannot even decode, e.g. a list that is not JSON.
        found = re.search(r'field "(\w+)"', str(exc))
        name = found.group(1).upper() if found else "configuration"
        raise SettingsError(
            (f"{name}: cannot be read (a list is written as JSON: [30, 120])",)
        ) from None
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            name = "_".join(str(part) for part in error["loc"]).upper()
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}" if name else message)
        raise SettingsError(tuple(problems)) from None
