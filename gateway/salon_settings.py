"""One salon's settings: its profile and its own accounts at each vendor, in typed sections.

What belongs to one salon (and a salon registry would store per salon) is here; what belongs to
the process that serves salons (host, port, Redis, public URL, logs, workers, streams, leases,
dedup, the outbox's retry schedule, the edge's limits, timeouts and circuit breakers, metrics,
the analytics database) is `gateway.settings.Settings`.

The split:

- `profile`: id, name, time zone, default language, address, phone and hours (plain and per
  language), currency; what the bot tells clients about the place.
- one section per integration, `None` when it is off: `telegram` (the salon's bot), `whatsapp`
  (its business number), `calcom`, `chatwoot`, `novu` (its accounts), `metabase` (its site and
  dashboard). A section's fields are required where the integration needs them, so
  "configured" is a type. And `analytics`, always there: the salt its clients are hashed with
  (the database they are written to is the process's), the staff's dashboard token.
  The vendors' rate limits are in the section too: they are limits of the salon's bot, number
  or account (Chatwoot's is per IP of the gateway: with one Chatwoot per salon, per account).
- the conversation's rules: reminder hours before each visit, how long an idle session lasts,
  how long a client's session is kept.

A salon is written as flat names, those of the environment (DESIGN §3): `SalonSettings.
from_values({"SALON_NAME": ..., "TELEGRAM_BOT_TOKEN": ...})`, names in either case. A section's
field is its name without the section's prefix (`TELEGRAM_BOT_TOKEN` → `telegram.bot_token`,
`CHATWOOT_TELEGRAM_INBOX_ID` → `chatwoot.telegram_inbox_id`), so a registry can keep a salon
as the same flat names the environment uses. The flat names are validated together
(`_SalonValues`, one problem per name, every problem at once), then arranged in sections.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
)

from bot.working_hours import WorkingHours
from gateway.handoff_routing import AFTER_HOURS_LABEL, RouteRule
from gateway.owner_settings import OwnerReport, OwnerValues

SUPPORTED_LOCALES = ("ru", "en")
# Bot API: "1-256 characters. Only characters A-Z, a-z, 0-9, _ and - are allowed."
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_BOT_TOKEN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,}$")
TELEGRAM_PUBLIC_API = "https://api.telegram.org"
# The single-salon environment's salon (SALON_ID unset).
DEFAULT_SALON_ID = "main"
# The approved WhatsApp templates' names unless the salon names its own (README, WhatsApp).
TEMPLATE_REPLY_WAITING = "frontdesk_reply_waiting"
TEMPLATE_CONFIRMATION = "frontdesk_booking_confirmed"
TEMPLATE_REMINDER = "frontdesk_reminder"
TEMPLATE_WAITLIST_OFFER = "frontdesk_waitlist_offer"
# Staff's proposal: one template per number of times, this name with `_1`, `_2`, `_3`.
TEMPLATE_PROPOSAL = "frontdesk_proposal"


def http_url(value: str | None) -> str | None:
    """An http(s) base URL without its trailing slash (shared with the process settings)."""
    if value is not None and not re.match(r"^https?://[^\s/]+", value):
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/") if value else value


class _SalonValues(OwnerValues):
    """A salon's flat names, validated together: one problem per name, all reported at once."""

    model_config = ConfigDict(extra="ignore")

    # The salon. Every key, session and fact carries its id.
    salon_id: str = Field(default=DEFAULT_SALON_ID, pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
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
    # When staff answer, in the salon's time ("Mon-Fri 10:00-20:00; Sat 10:00-18:00"): a
    # handoff outside them tells the client when (bot/working_hours.py). Empty: always.
    salon_working_hours: str = ""
    default_locale: str = "en"
    # ISO 4217 code of the prices in the catalogue (Cal.com event-type metadata `price`).
    salon_currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")

    # Telegram: on when the bot token is set.
    telegram_bot_token: SecretStr | None = None
    # Validated even when absent: it is required once the token is set.
    telegram_webhook_secret: SecretStr | None = Field(default=None, validate_default=True)
    telegram_api_url: str = TELEGRAM_PUBLIC_API
    # Telegram's flood limits: about 1 message/s per chat (short bursts tolerated), 30/s per bot.
    telegram_rate_per_chat: float = Field(default=1.0, gt=0)
    telegram_burst_per_chat: int = Field(default=3, ge=1)
    telegram_rate_global: float = Field(default=30.0, gt=0)

    session_idle_minutes: int = Field(default=60 * 24, ge=1)
    # A client's session (language, where they are, the name and phone they gave) is deleted
    # this long after their last message.
    session_retention_days: int = Field(default=180, ge=1, le=3650)

    # WhatsApp Cloud API: on when the access token is set, and then all four are required.
    whatsapp_access_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = Field(default=None, pattern=r"^\d{1,32}$")
    whatsapp_app_secret: SecretStr | None = None
    # Validated even when absent: it reports what a half-configured WhatsApp lacks.
    whatsapp_verify_token: SecretStr | None = Field(default=None, validate_default=True)
    whatsapp_api_url: str = "https://graph.facebook.com/v23.0"
    whatsapp_template_reply_waiting: str = TEMPLATE_REPLY_WAITING
    whatsapp_template_confirmation: str = TEMPLATE_CONFIRMATION
    whatsapp_template_reminder: str = TEMPLATE_REMINDER
    whatsapp_template_waitlist_offer: str = TEMPLATE_WAITLIST_OFFER
    whatsapp_template_proposal: str = TEMPLATE_PROPOSAL
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
    # Routing rules for handoffs, a JSON list tried in order (gateway/handoff_routing.py);
    # none matching: CHATWOOT_TEAM_ID / CHATWOOT_ASSIGNEE_ID.
    chatwoot_routing: tuple[RouteRule, ...] = ()
    # The label that marks a handoff made outside SALON_WORKING_HOURS, for the morning.
    chatwoot_after_hours_label: str = AFTER_HOURS_LABEL
    # How often conversations a person owns are checked for agent replies whose webhook never
    # came (Chatwoot delivers webhooks at most once).
    chatwoot_reconcile_seconds: float = Field(default=60.0, gt=0)
    # Chatwoot's own limit is 3000 requests a minute per IP, for every call we make: 50/s, less
    # a margin (chatwoot config/initializers/rack_attack.rb, RACK_ATTACK_LIMIT's default).
    chatwoot_rate_global: float = Field(default=40.0, gt=0)

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
    # How often the waitlist looks for holds that ended and waits that are over (a freed or
    # declined time is looked at at once in the process that saw it).
    calcom_waitlist_seconds: float = Field(default=5.0, gt=0)
    # How long the free slots read from Cal.com are kept for the next screen and the next
    # client (0: read on every screen); a change made here or told by a webhook drops them.
    calcom_slots_cache_seconds: float = Field(default=20.0, ge=0, le=300)

    # Novu: on when the URL and the API key are set. Novu signs its requests to the gateway
    # with the environment's secret key, the API key, unless NOVU_WEBHOOK_SECRET says otherwise.
    novu_api_key: SecretStr | None = None
    novu_api_url: str | None = Field(default=None, validate_default=True)
    novu_webhook_secret: SecretStr | None = None
    # How long after a messenger notice is due the gateway waits for Novu to post it back
    # before sending it itself (Novu does not retry a failed post), and how often it looks.
    novu_grace_seconds: float = Field(default=300.0, gt=0)
    novu_ledger_seconds: float = Field(default=30.0, gt=0)
    # Novu's smallest plan takes 20 configuration and 60 trigger requests a second (Novu docs,
    # api-reference/rate-limiting): the configuration rate bounds every call.
    novu_rate_global: float = Field(default=20.0, gt=0)
    # Reminders before each visit, in hours (JSON list in the environment: [24, 2]).
    reminder_hours: tuple[float, ...] = (24.0, 2.0)

    # Clients appear in the analytics under a hash salted with ANALYTICS_SALT, which must be
    # set when the process has an analytics database and then kept (a new salt makes everyone
    # a new client).
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

    @field_validator("salon_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("salon_working_hours")
    @classmethod
    def _working_hours(cls, value: str) -> str:
        if value.strip():
            WorkingHours.parse(value)  # its ValueError says what is wrong
        return value

    @field_validator("chatwoot_routing", mode="before")
    @classmethod
    def _routing(cls, value: Any) -> Any:
        # The registry (or a test) may give the JSON text itself, as the environment does.
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else ()
            except ValueError:
                raise ValueError("a JSON list of rules, as in the README (Chatwoot)") from None
        return value

    @field_validator("default_locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        if value not in SUPPORTED_LOCALES:
            raise ValueError(f"must be one of {', '.join(SUPPORTED_LOCALES)}")
        return value

    @field_validator(
        "telegram_api_url", "whatsapp_api_url", "chatwoot_url", "novu_api_url", "metabase_site_url"
    )
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return http_url(value)

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
        # The database is the process's: validated with the environment, `info.data` has it
        # (`gateway.settings` declares it first); a salon of a registry is checked alone.
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


SALON_NAMES = tuple(_SalonValues.model_fields)
# How each flat name is declared (type, default), for those that read a salon's names: the
# registry tells secrets (`SecretStr`) and lists (read as JSON) from it.
SALON_FIELDS = _SalonValues.model_fields
# The names that switch an integration on: the section exists when every one of them is set.
SWITCHES: dict[str, tuple[str, ...]] = {
    "telegram": ("bot_token",),
    "whatsapp": ("access_token",),
    "calcom": ("api_url", "api_key"),
    "chatwoot": ("api_token",),
    "novu": ("api_key", "api_url"),
    "metabase": ("site_url",),
}


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True)


_S = TypeVar("_S", bound=_Section)


class SalonProfile(_Section):
    """What the bot tells clients about the place (SALON_*, DEFAULT_LOCALE)."""

    id: str = "main"
    name: str = "Salon"
    timezone: str = "UTC"
    address: str = ""
    phone: str = ""
    hours: str = ""
    address_ru: str = ""
    address_en: str = ""
    hours_ru: str = ""
    hours_en: str = ""
    working_hours: str = ""
    default_locale: str = "en"
    currency: str | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def addresses(self) -> tuple[tuple[str, str], ...]:
        """(language, address) for each language the salon wrote its address in."""
        given = (("ru", self.address_ru), ("en", self.address_en))
        return tuple((locale, text) for locale, text in given if text)

    @property
    def schedule(self) -> WorkingHours | None:
        """When staff answer (SALON_WORKING_HOURS), None when not given: always."""
        return WorkingHours.parse(self.working_hours) if self.working_hours.strip() else None

    @property
    def opening_hours(self) -> tuple[tuple[str, str], ...]:
        given = (("ru", self.hours_ru), ("en", self.hours_en))
        return tuple((locale, text) for locale, text in given if text)


class TelegramSettings(_Section):
    """The salon's bot (TELEGRAM_*): on when TELEGRAM_BOT_TOKEN is set."""

    bot_token: SecretStr
    webhook_secret: SecretStr
    api_url: str = TELEGRAM_PUBLIC_API
    rate_per_chat: float = 1.0
    burst_per_chat: int = 3
    rate_global: float = 30.0


class WhatsAppSettings(_Section):
    """The salon's business number (WHATSAPP_*): on when WHATSAPP_ACCESS_TOKEN is set."""

    access_token: SecretStr
    phone_number_id: str
    app_secret: SecretStr
    verify_token: SecretStr
    api_url: str
    template_reply_waiting: str
    template_confirmation: str
    template_reminder: str
    template_waitlist_offer: str
    template_proposal: str
    rate_per_chat: float
    burst_per_chat: int
    rate_global: float


class CalcomSettings(_Section):
    """The salon's Cal.com (CALCOM_*): on when CALCOM_API_URL and CALCOM_API_KEY are set."""

    api_url: str
    api_key: SecretStr
    webhook_secret: SecretStr | None
    team_id: int | None
    reconcile_seconds: float
    reconcile_lookback_hours: float
    waitlist_seconds: float
    slots_cache_seconds: float


class ChatwootSettings(_Section):
    """The salon's help desk (CHATWOOT_*): on when CHATWOOT_API_TOKEN is set."""

    api_token: SecretStr
    url: str
    account_id: int
    telegram_inbox_id: int | None
    whatsapp_inbox_id: int | None
    webhook_secret: SecretStr | None
    webhook_token: SecretStr | None
    mirror: str
    bot_token: SecretStr | None
    team_id: int | None
    assignee_id: int | None
    labels: tuple[str, ...]
    routing: tuple[RouteRule, ...]
    after_hours_label: str
    reconcile_seconds: float
    rate_global: float

    def inboxes(self) -> dict[str, int]:
        """The messengers whose conversations go to Chatwoot, and their inboxes there."""
        given = (("telegram", self.telegram_inbox_id), ("whatsapp", self.whatsapp_inbox_id))
        return {channel: inbox for channel, inbox in given if inbox is not None}

    def webhook_secrets(self) -> list[str]:
        secret = self.webhook_secret
        return [s.strip() for s in secret.get_secret_value().split(",")] if secret else []


class NovuSettings(_Section):
    """The salon's Novu environment (NOVU_*): on when NOVU_API_KEY is set."""

    api_key: SecretStr
    api_url: str
    webhook_secret: SecretStr | None
    grace_seconds: float
    ledger_seconds: float
    rate_global: float

    @property
    def signing_key(self) -> str:
        """What Novu's requests to `/webhooks/novu` are signed with."""
        return (self.webhook_secret or self.api_key).get_secret_value()


class MetabaseSettings(_Section):
    """The salon's Metabase (METABASE_*): on when METABASE_SITE_URL is set."""

    site_url: str
    secret_key: SecretStr | None
    api_key: SecretStr | None
    user: str | None
    password: SecretStr | None
    dashboard_id: int | None


class SalonAnalytics(_Section):
    """The salon's side of the analytics (ANALYTICS_SALT, ANALYTICS_EMBED_TOKEN): the salt its
    clients are hashed with, required (and validated so) once the process has an analytics
    database; the token staff open its dashboard with."""

    salt: SecretStr | None = None
    embed_token: SecretStr | None = None


@dataclass(frozen=True)
class DashboardEmbed:
    """GET /analytics/embed: Metabase's site, secret, the dashboard and a staff token."""

    site_url: str
    secret_key: SecretStr
    dashboard_id: int
    token: SecretStr


class SalonSettings(_Section):
    profile: SalonProfile = SalonProfile()
    telegram: TelegramSettings | None = None
    whatsapp: WhatsAppSettings | None = None
    calcom: CalcomSettings | None = None
    chatwoot: ChatwootSettings | None = None
    novu: NovuSettings | None = None
    metabase: MetabaseSettings | None = None
    analytics: SalonAnalytics = SalonAnalytics()
    owner: OwnerReport | None = None
    reminder_hours: tuple[float, ...] = (24.0, 2.0)
    session_idle_minutes: int = 60 * 24
    session_retention_days: int = 180
    # Every secret value the salon's names set, on or off, so that logs can scrub them.
    _secrets: tuple[str, ...] = PrivateAttr(default=())

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> SalonSettings:
        """A salon from its flat names (`SALON_NAME`, `TELEGRAM_BOT_TOKEN`, ..., either case).

        Raises pydantic's `ValidationError`, each error located at its flat name;
        `gateway.settings.salon_from_values` turns them into one line per problem."""
        flat = _SalonValues.model_validate({name.lower(): v for name, v in values.items()})
        return cls.from_flat(flat)

    @classmethod
    def from_flat(cls, flat: BaseModel) -> SalonSettings:
        """Sections from names already validated (by `_SalonValues` or the environment)."""
        data: dict[str, Any] = {name: getattr(flat, name) for name in SALON_NAMES}
        salon = cls(
            profile=SalonProfile.model_validate(_strip(data, "salon_") | _pick(data, "default_")),
            telegram=_section(TelegramSettings, data, "telegram"),
            whatsapp=_section(WhatsAppSettings, data, "whatsapp"),
            calcom=_section(CalcomSettings, data, "calcom"),
            chatwoot=_section(ChatwootSettings, data, "chatwoot"),
            novu=_section(NovuSettings, data, "novu"),
            metabase=_section(MetabaseSettings, data, "metabase"),
            analytics=SalonAnalytics.model_validate(_strip(data, "analytics_")),
            owner=OwnerReport.of(data),
            reminder_hours=data["reminder_hours"],
            session_idle_minutes=data["session_idle_minutes"],
            session_retention_days=data["session_retention_days"],
        )
        salon._secrets = tuple(secret_values(data.values()))
        return salon

    @property
    def embedding(self) -> DashboardEmbed | None:
        metabase, analytics = self.metabase, self.analytics
        if metabase is None or metabase.secret_key is None or metabase.dashboard_id is None:
            return None
        if analytics.embed_token is None:
            return None
        return DashboardEmbed(
            metabase.site_url, metabase.secret_key, metabase.dashboard_id, analytics.embed_token
        )

    def inbox(self, channel: str) -> bool:
        """Whether the channel's conversations go to Chatwoot (it has an inbox there)."""
        return self.chatwoot is not None and channel in self.chatwoot.inboxes()

    def secrets(self) -> list[str]:
        return list(self._secrets)


def _strip(data: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {name.removeprefix(prefix): v for name, v in data.items() if name.startswith(prefix)}


def _pick(data: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {name: v for name, v in data.items() if name.startswith(prefix)}


def _section(kind: type[_S], data: dict[str, Any], name: str) -> _S | None:
    """The section when every one of its switches is set (validated complete above), else off."""
    fields = _strip(data, f"{name}_")
    if any(fields.get(switch) is None for switch in SWITCHES[name]):
        return None
    return kind.model_validate({name: fields[name] for name in kind.model_fields})


def secret_values(values: Any) -> list[str]:
    """The plain text of every `SecretStr` set, and of each part of a comma-separated one."""
    found = []
    for value in values:
        if isinstance(value, SecretStr) and value.get_secret_value():
            found.append(value.get_secret_value())
            # A list of secrets (one per Chatwoot inbox): each is scrubbed on its own too.
            if "," in value.get_secret_value():
                found += [part.strip() for part in value.get_secret_value().split(",")]
    return found
