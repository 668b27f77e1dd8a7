"""A salon's values: which of the environment's names belong to a salon, which are secrets, how
they are checked, and how a salon's TOML file reads.

A salon is stored as the same flat names the operator writes in the environment (`SALON_NAME`,
`TELEGRAM_BOT_TOKEN`, `REMINDER_HOURS`, ...), each value the text the environment would hold.
One vocabulary serves the single-salon environment, the registry, a salon's TOML file and the
validation, so a salon moves between them without translation.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any, get_args, get_origin

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from gateway.settings import Settings, SettingsError

# A salon's values are the settings of these families (every integration is the salon's own:
# its bot, its WhatsApp number, its Cal.com, help desk and Novu environment) ...
_FAMILIES = ("salon_", "telegram_", "whatsapp_", "chatwoot_", "calcom_", "novu_")
# ... and these, each of one salon too: its clients' default language, its reminders, its
# dashboard and the staff token that opens it (one Metabase serves every salon, locked per salon).
_ALSO = ("default_locale", "reminder_hours", "metabase_dashboard_id", "analytics_embed_token")
# The salon's id names its row (and every Redis key): it is the commands' argument, not a value.
_NOT = ("salon_id",)

SALON_NAMES: frozenset[str] = frozenset(
    name.upper()
    for name in Settings.model_fields
    if (name.startswith(_FAMILIES) or name in _ALSO) and name not in _NOT
)


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


# The secrets are the settings typed `SecretStr`: encrypted at rest, never shown.
SECRET_NAMES: frozenset[str] = frozenset(
    name for name in SALON_NAMES if _is_secret(Settings.model_fields[name.lower()].annotation)
)
# Read as JSON, as the environment reads them (REMINDER_HOURS=[24, 2]).
_LISTS: frozenset[str] = frozenset(
    name
    for name in SALON_NAMES
    if get_origin(Settings.model_fields[name.lower()].annotation) is tuple
)
SALON_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def check_id(salon_id: str) -> str | None:
    """What is wrong with a salon id, or None."""
    if SALON_ID.match(salon_id):
        return None
    return f"salon id {salon_id!r}: 1-32 of a-z, 0-9, - and _, starting with a letter or digit"


def name_problems(names: Iterable[str]) -> list[str]:
    """One line per name that is not a salon's value (values are never repeated: secrets)."""
    problems = []
    for name in sorted(names):
        if name in SALON_NAMES:
            continue
        if name == "SALON_ID":
            problems.append("SALON_ID: the salon's id is the command's argument, not a value")
        elif name.lower() in Settings.model_fields:
            problems.append(
                f"{name}: a process-wide setting, the same for every salon: "
                "set it in the gateway's environment"
            )
        else:
            problems.append(f"{name}: not a setting of Frontdesk")
    return problems


class _SalonOnly(Settings):
    """The settings of one salon read from its values alone: no environment, no `.env`."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The gateway's own environment must not fill in what the salon left out.
        return (init_settings,)


def validate_salon(values: Mapping[str, str]) -> Settings:
    """A salon's values checked as the environment's are, or `SettingsError`, one line a problem.

    Today the check is `Settings`' own, fed the salon's values only; the sectioned settings
    will bring a `SalonSettings` that validates exactly such a flat mapping, and take this
    function's place.
    """
    problems = name_problems(values)
    fields: dict[str, Any] = {}
    for name, value in values.items():
        if name not in SALON_NAMES or value == "":  # empty means not set, as in the environment
            continue
        if name in _LISTS:
            try:
                fields[name.lower()] = json.loads(value)
            except ValueError:
                problems.append(f"{name}: cannot be read (a list is written as JSON: [24, 2])")
            continue
        fields[name.lower()] = value
    try:
        settings = _SalonOnly(**fields)
    except ValidationError as exc:
        # As `gateway.settings.load` words them.
        for error in exc.errors(include_input=False, include_url=False):
            name = "_".join(str(part) for part in error["loc"]).upper()
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}" if name else message)
        raise SettingsError(tuple(problems)) from None
    if problems:
        raise SettingsError(tuple(problems))
    return settings


def services_of(names: Iterable[str]) -> list[str]:
    """Which channels and services a salon with values for these names has on, without reading
    them (the secrets stay sealed): `Settings.services()` over stand-ins."""
    present: dict[str, Any] = {
        name.lower(): SecretStr("set") if name in SECRET_NAMES else "set"
        for name in names
        if name in SALON_NAMES
    }
    stand_in = Settings.model_construct(**present)
    return [service for service, on in stand_in.services().items() if on]


def from_toml(text: str) -> dict[str, str]:
    """A salon's TOML file: the environment's names at the top level, e.g.

        SALON_NAME = "Studio Nord"
        SALON_TIMEZONE = "Europe/Moscow"
        CHATWOOT_ACCOUNT_ID = 3
        REMINDER_HOURS = [24, 2]

    Every value becomes the text the environment would hold (lists as JSON, booleans as
    true/false). Raises `SettingsError` for a file that is not TOML or holds a table.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError((f"the file is not TOML: {exc}",)) from None
    values: dict[str, str] = {}
    problems = []
    for key, value in document.items():
        name = key.upper()
        if isinstance(value, dict):
            problems.append(f"{name}: a table; write each value as NAME = value at the top level")
        elif isinstance(value, bool):
            values[name] = "true" if value else "false"
        elif isinstance(value, list):
            values[name] = json.dumps(value)
        else:
            values[name] = str(value)
    if problems:
        raise SettingsError(tuple(problems))
    return values
