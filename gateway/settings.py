"""The operator's contract: every setting comes from the environment (or `.env`), validated once.

The names are those of DESIGN §3. A channel or service whose variables are all absent is *off*;
one that is half configured is an error, reported with one line per problem (see `load`).

`Settings` holds what belongs to the process (host, port, Redis, public URL, logs, workers,
streams, leases, dedup, the outbox's schedule, the edge's limits, timeouts and breakers for
every service, metrics, the analytics database) and `settings.salon`, the one salon the
environment describes (`gateway.salon_settings`: its profile and integrations, in sections).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from gateway.salon_settings import (
    SUPPORTED_LOCALES,
    SalonSettings,
    _SalonValues,
    http_url,
    secret_values,
)

__all__ = [
    "SUPPORTED_LOCALES",
    "AnalyticsSettings",
    "Environment",
    "Settings",
    "SettingsError",
    "load",
]


class _ProcessFields(BaseModel):
    """The process's names as `Settings` holds them; `_ProcessValues` adds the one that
    `Settings` holds as a section (the analytics database)."""

    host: str = "0.0.0.0"  # noqa: S104 - a container listens on all interfaces
    port: int = Field(default=8080, ge=1, le=65535)
    redis_url: str | None = None
    # REDIS_URL names one node of a Redis Cluster (the same as a `redis+cluster://` URL).
    redis_cluster: bool = False
    public_url: str | None = None
    # Raised to give the Dashboard App a new link key (`?key=`): the old URL stops working.
    dashboard_app_key_version: int = Field(default=0, ge=0)
    log_format: str = Field(default="json", pattern="^(json|text)$")
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")

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
    # Calls to every external service (Telegram, WhatsApp, Cal.com, Chatwoot, Novu) give up
    # after this long; that many failures in a row open the service's circuit breaker, which
    # lets a trial call through after the reset time.
    service_timeout_seconds: float = Field(default=10.0, gt=0)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=30.0, gt=0)

    # The salon registry (gateway/salons): its PostgreSQL (may be the analytics database) and
    # the Fernet keys its secrets are encrypted with, comma-separated, the first one encrypting.
    database_url: SecretStr | None = None
    secrets_key: SecretStr | None = None

    # GET /metrics: with a token set, only `Authorization: Bearer <token>` is answered. Queue
    # depths and lags are read from Redis in the background this often, never per scrape.
    metrics_token: SecretStr | None = None
    metrics_refresh_seconds: float = Field(default=5.0, gt=0)
    # With a salon registry, every series carries a `salon` label: the environment's salon
    # and this many of the busiest registry salons get their own, the rest `other` (README,
    # "Watching it": why the label is bounded).
    metrics_salons: int = Field(default=20, ge=0, le=1000)

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value is not None and not re.match(
            r"^(redis|rediss|unix|redis\+cluster|rediss\+cluster)://", value
        ):
            raise ValueError(
                "must start with redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://"
            )
        if (
            value is not None
            and "+cluster://" in value
            and urlsplit(value).path not in ("", "/", "/0")
        ):
            # "Redis Cluster does not support multiple databases like the standalone version"
            # (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/).
            raise ValueError("a Redis Cluster has database 0 only: drop the /<db>")
        return value

    # Named apart from the salon's `_url`: `Environment` inherits both, and a validator of the
    # same name would replace this one (PUBLIC_URL would then go unchecked, its trailing slash
    # kept, and every webhook URL built from it would get a `//`).
    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return http_url(value)


class _ProcessValues(_ProcessFields):
    """The process's names; declared before the salon's, so that the salon's validators see
    them (ANALYTICS_SALT is required when ANALYTICS_DATABASE_URL is set)."""

    # Analytics: on when the database URL is set (postgresql://user:password@host:5432/db).
    analytics_database_url: SecretStr | None = None


PROCESS_NAMES = tuple(_ProcessValues.model_fields)


class Environment(BaseSettings, _SalonValues, _ProcessValues):
    """Every name, flat, as the environment and `.env` spell them; validated together. `load`
    arranges it as `Settings`; the operator's documentation (.env.example) lists its fields."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        # `WHATSAPP_ACCESS_TOKEN=` (a template line left blank) means "not set", not "set to ''".
        env_ignore_empty=True,
    )


class AnalyticsSettings(BaseModel):
    """The analytics database (ANALYTICS_DATABASE_URL): on when it is set."""

    model_config = ConfigDict(frozen=True)

    database_url: SecretStr


class Settings(_ProcessFields):
    """The process's settings (declared once, in `_ProcessFields`) and its sections: the
    analytics database and the salon the environment describes; made by `load`."""

    model_config = ConfigDict(frozen=True)

    analytics: AnalyticsSettings | None
    salon: SalonSettings

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every name the environment is read for (lower case)."""
        return tuple(Environment.model_fields)

    def services(self) -> dict[str, bool]:
        """Which channels and services are configured (on) for `/readyz` and `check`."""
        salon = self.salon
        return {
            "telegram": salon.telegram is not None,
            "whatsapp": salon.whatsapp is not None,
            "calcom": salon.calcom is not None,
            "chatwoot": salon.chatwoot is not None,
            "novu": salon.novu is not None,
            "metabase": salon.metabase is not None,
            "analytics": self.analytics is not None,
        }

    def secrets(self) -> list[str]:
        """Every secret value set, so that logs can scrub them wherever they appear."""
        databases = [self.analytics and self.analytics.database_url, self.database_url]
        process = [self.metrics_token, self.secrets_key, *databases]
        return [
            *secret_values(value for value in process if value),
            # A password can show on its own (an error about the URL quotes a part of it).
            *(password for url in databases if url and (password := _password(url))),
            *self.salon.secrets(),
        ]

    def with_salon(self, **values: Any) -> Settings:
        """The same process with some of the salon's flat names changed (validated again)."""
        return self.model_copy(update={"salon": salon_from_values(_flat(self.salon) | values)})


class SettingsError(Exception):
    """Raised by `load` with one human line per problem; the CLI prints them and exits 2.

    A plain exception, not a frozen dataclass: raising sets `__traceback__` on it, which a
    frozen instance refuses inside a `with` block."""

    def __init__(self, problems: tuple[str, ...]) -> None:
        super().__init__(problems)
        self.problems = problems

    def __str__(self) -> str:
        return "\n".join(self.problems)


def load(**overrides: object) -> Settings:
    """The settings from the environment and `.env`; `overrides` are flat names, lower case,
    and win over both (`_env_file=None` reads no `.env`)."""
    try:
        environment = Environment(**overrides)  # type: ignore[arg-type]
    except SourceError as exc:
        # A value the environment source cannot even decode, e.g. a list that is not JSON.
        found = re.search(r'field "(\w+)"', str(exc))
        name = found.group(1).upper() if found else "configuration"
        raise SettingsError(
            (f"{name}: cannot be read (a list is written as JSON: [30, 120])",)
        ) from None
    except ValidationError as exc:
        raise SettingsError(_problems(exc)) from None
    process = {name: getattr(environment, name) for name in PROCESS_NAMES}
    process["redis_url"] = _cluster_url(process["redis_url"], process["redis_cluster"])
    process["redis_cluster"] = (
        process["redis_url"] is not None and "+cluster://" in process["redis_url"]
    )
    database = process.pop("analytics_database_url")
    return Settings(
        **process,
        analytics=AnalyticsSettings(database_url=database) if database is not None else None,
        salon=SalonSettings.from_flat(environment),
    )


def _cluster_url(url: str | None, cluster: bool) -> str | None:
    """REDIS_CLUSTER=true turns REDIS_URL into the cluster URL that says the same thing."""
    if url is None or not cluster or "+cluster://" in url:
        return url
    scheme, _, rest = url.partition("://")
    if scheme == "unix":
        raise SettingsError(("REDIS_CLUSTER: a cluster is reached over TCP, not a unix socket",))
    if urlsplit(url).path not in ("", "/", "/0"):
        raise SettingsError(("REDIS_URL: a Redis Cluster has database 0 only: drop the /<db>",))
    return f"{scheme}+cluster://{rest}"


def salon_from_values(values: dict[str, object]) -> SalonSettings:
    """`SalonSettings.from_values`, its problems as a `SettingsError` (one line each)."""
    try:
        return SalonSettings.from_values(values)
    except ValidationError as exc:
        raise SettingsError(_problems(exc)) from None


def _password(url: SecretStr) -> str | None:
    try:
        return urlsplit(url.get_secret_value()).password or None
    except ValueError:  # a URL that cannot be split: the whole of it is scrubbed still
        return None


def _problems(exc: ValidationError) -> tuple[str, ...]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = error["loc"]
        name = "_".join(str(part) for part in loc).upper()
        if loc[:1] == ("chatwoot_routing",) and len(loc) > 2 and isinstance(loc[1], int):
            # A rule's problem by its place in the list: "CHATWOOT_ROUTING rule 2, reason".
            name = f"CHATWOOT_ROUTING rule {loc[1] + 1}, {loc[2]}"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{name}: {message}" if name else message)
    return tuple(problems)


def _flat(salon: SalonSettings) -> dict[str, object]:
    """A salon back as its flat names (the inverse of `SalonSettings.from_values`)."""
    flat: dict[str, object] = {f"salon_{k}": v for k, v in salon.profile.model_dump().items()}
    flat["default_locale"] = flat.pop("salon_default_locale")
    for prefix in ("telegram", "whatsapp", "calcom", "chatwoot", "novu", "metabase", "analytics"):
        section = getattr(salon, prefix)
        if section is not None:
            flat |= {f"{prefix}_{k}": v for k, v in dict(section).items()}
    for name in ("reminder_hours", "session_idle_minutes", "session_retention_days"):
        flat[name] = getattr(salon, name)
    return flat
