"""`--salon <id>` of the operator's commands (`check`, `dlq`): the environment's salon
(`SALON_ID`, the default) or one of the registry's, looked up in `DATABASE_URL`."""

from __future__ import annotations

import sys

import asyncpg

from gateway.salons import NoSuchSalon, Salon, SalonRegistry, SecretCipher, SecretsKeyError
from gateway.salons.values import check_id
from gateway.settings import Settings

EXIT_CONFIG = 2


class Refused(Exception):
    """The command cannot go on: what to print, and the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code

    def report(self) -> int:
        print(f"frontdesk: {self}", file=sys.stderr)
        return self.code


def is_environment(settings: Settings, salon_id: str | None) -> bool:
    return salon_id is None or salon_id == settings.salon.profile.id


async def registry_salon(settings: Settings, salon_id: str, *, decrypt: bool) -> Salon | None:
    """The registry's salon `salon_id` (its secrets decrypted with `decrypt`), or None when the
    registry has no such salon; `Refused` when the registry cannot be asked."""
    if problem := check_id(salon_id):
        raise Refused(problem, EXIT_CONFIG)
    if settings.database_url is None:
        raise Refused(
            f"salon {salon_id} is not the environment's (SALON_ID): the registry's salons "
            "need DATABASE_URL",
            EXIT_CONFIG,
        )
    cipher = None
    if decrypt:
        if settings.secrets_key is None:
            raise Refused(
                "SECRETS_KEY is not set: the salons' secrets are encrypted with it", EXIT_CONFIG
            )
        try:
            cipher = SecretCipher(settings.secrets_key.get_secret_value())
        except SecretsKeyError as exc:
            raise Refused(str(exc), EXIT_CONFIG) from exc
    try:
        registry = await SalonRegistry.open(settings.database_url.get_secret_value(), cipher)
    except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # Not the exception's words: for a URL asyncpg cannot read, they may quote a password.
        raise Refused(f"cannot reach the registry's database ({type(exc).__name__})", 1) from None
    try:
        return await registry.get(salon_id, decrypt=decrypt)
    except NoSuchSalon:
        return None
    except SecretsKeyError as exc:
        raise Refused(str(exc), EXIT_CONFIG) from exc
    finally:
        await registry.close()
