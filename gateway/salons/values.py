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

from pydantic import SecretStr

from gateway.salon_settings import SALON_FIELDS, SWITCHES, SalonSettings
from gateway.settings import Settings, SettingsError, salon_from_values

# A salon's values are the names `SalonSettings` reads (gateway/salon_settings.py draws the
# line between the process and a salon), but for its id, which names its row (and every Redis
# key): it is the commands' argument, not a value.
SALON_NAMES: frozenset[str] = frozenset(name.upper() for name in SALON_FIELDS if name != "salon_id")


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


# The secrets are the settings typed `SecretStr`: encrypted at rest, never shown.
SECRET_NAMES: frozenset[str] = frozenset(
    name for name in SALON_NAMES if _is_secret(SALON_FIELDS[name.lower()].annotation)
)
# Read as JSON, as the environment reads them (REMINDER_HOURS=[24, 2]).
_LISTS: frozenset[str] = frozenset(
    name for name in SALON_NAMES if get_origin(SALON_FIELDS[name.lower()].annotation) is tuple
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
        elif name.lower() in Settings.names():
            problems.append(
                f"{name}: a process-wide setting, the same for every salon: "
                "set it in the gateway's environment"
            )
        else:
            problems.append(f"{name}: not a setting of Frontdesk")
    return problems


def validate_salon(values: Mapping[str, str], salon_id: str = "main") -> SalonSettings:
    """A salon's values checked as the environment's are (`SalonSettings`, which reads no
    environment), or `SettingsError`, one line a problem; `salon_id` is its row's id."""
    problems = name_problems(values)
    fields: dict[str, Any] = {"salon_id": salon_id}
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
        salon = salon_from_values(fields)
    except SettingsError as exc:
        raise SettingsError((*problems, *exc.problems)) from None
    if problems:
        raise SettingsError(tuple(problems))
    return salon


def services_of(names: Iterable[str]) -> list[str]:
    """Which integrations a salon with values for these names has on, without reading them
    (the secrets stay sealed): those whose switches (`SWITCHES`) are all given."""
    given = {name.lower() for name in names if name in SALON_NAMES}
    return [
        service
        for service, switches in SWITCHES.items()
        if all(f"{service}_{switch}" in given for switch in switches)
    ]


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
