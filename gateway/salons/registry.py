"""The registry's table (PostgreSQL): salons added, changed, listed, loaded; each write announced.

Every write bumps the salon's `version` (one sequence for all salons, see the migration) and,
once committed, is announced on the Redis channel `RegistryKeys().salons_changed` with the
salon's id, so that running gateways read the registry again at once (`SalonWatcher`). The
announcement is a hint, not the record: pub/sub delivers to whoever listens at that moment, so
a gateway that was not listening catches up on its periodic re-read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import SecretStr
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.pipeline.keys import RegistryKeys
from gateway.salon_settings import SalonSettings
from gateway.salons.cipher import SecretCipher, SecretsKeyError
from gateway.salons.values import SECRET_NAMES, name_problems, services_of, validate_salon
from gateway.settings import SettingsError
from gateway.sql_migrations import Schema

log = logging.getLogger("frontdesk.salons")

# Its own record of migrations, so that the registry and the analytics share a database freely.
SCHEMA = Schema(Path(__file__).parent / "sql" / "migrations", "salon_migrations", 7_403_118)


class NoSuchSalon(LookupError):
    pass


class SalonExists(Exception):
    pass


@dataclass(frozen=True)
class Salon:
    """One salon of the registry. `secrets` is filled only where they were decrypted (`load_all`,
    `get(..., decrypt=True)`); `secret_names` always says which are set."""

    id: str
    enabled: bool
    version: int
    created_at: datetime
    updated_at: datetime
    values: Mapping[str, str]
    secret_names: frozenset[str]
    secrets: Mapping[str, SecretStr] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.values.get("SALON_NAME", "")

    def services(self) -> list[str]:
        """The channels and services this salon has on (`Settings.services()`'s names)."""
        return services_of([*self.values, *self.secret_names])

    def environment(self) -> dict[str, str]:
        """Every value under its name, secrets revealed: what `validate_salon` takes."""
        revealed = {name: value.get_secret_value() for name, value in self.secrets.items()}
        return {**self.values, **revealed}

    def settings(self) -> SalonSettings:
        """The salon's validated settings (its secrets must have been decrypted)."""
        return validate_salon(self.environment(), self.id)


class SalonRegistry:
    """The salons table. `cipher` may be None for what needs no secret (list, show, enable,
    disable, remove); `redis` None writes without announcing (the watchers' re-read sees it)."""

    def __init__(
        self, pool: asyncpg.Pool, cipher: SecretCipher | None, redis: Redis | None = None
    ) -> None:
        self.pool = pool
        self.cipher = cipher
        self.redis = redis
        self.channel = RegistryKeys().salons_changed

    @classmethod
    async def open(
        cls, database_url: str, cipher: SecretCipher | None, redis: Redis | None = None
    ) -> SalonRegistry:
        """Connect and bring the schema up to date (migrations are applied once, under a lock)."""
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2, timeout=10)
        try:
            async with pool.acquire() as connection:
                applied = await SCHEMA.migrate(connection)
        except BaseException:
            await pool.close()
            raise
        if applied:
            log.info("salon registry migrated: %s", ", ".join(applied))
        return cls(pool, cipher, redis)

    async def close(self) -> None:
        await self.pool.close()

    # --- reading --------------------------------------------------------------------------

    async def get(self, salon_id: str, *, decrypt: bool = False) -> Salon:
        row = await self.pool.fetchrow("SELECT * FROM salons WHERE id = $1", salon_id)
        if row is None:
            raise NoSuchSalon(salon_id)
        return self._salon(row, decrypt=decrypt)

    async def all_salons(self) -> list[Salon]:
        """Every salon, enabled or not, by id; secrets left sealed."""
        rows = await self.pool.fetch("SELECT * FROM salons ORDER BY id")
        return [self._salon(row, decrypt=False) for row in rows]

    async def load_all(self) -> dict[str, Salon]:
        """The enabled salons by id, secrets decrypted; `SecretsKeyError` if one cannot be."""
        salons, unreadable = await self.load_readable()
        for problem in unreadable.values():
            raise problem
        return salons

    async def load_readable(self) -> tuple[dict[str, Salon], dict[str, SecretsKeyError]]:
        """The enabled salons whose secrets decrypt, by id, and why each other one does not:
        one salon sealed with a key this gateway lacks must not hold the others back."""
        rows = await self.pool.fetch("SELECT * FROM salons WHERE enabled ORDER BY id")
        salons: dict[str, Salon] = {}
        unreadable: dict[str, SecretsKeyError] = {}
        for row in rows:
            try:
                salons[row["id"]] = self._salon(row, decrypt=True)
            except SecretsKeyError as exc:
                unreadable[row["id"]] = exc
        return salons, unreadable

    async def fingerprint(self) -> frozenset[tuple[str, int, bool]]:
        """(id, version, enabled) of every salon: changes whenever a salon is added, changed,
        enabled, disabled or removed (a disabled one's removal turns its 410 into a 404)."""
        rows = await self.pool.fetch("SELECT id, version, enabled FROM salons")
        return frozenset((row["id"], row["version"], row["enabled"]) for row in rows)

    # --- writing --------------------------------------------------------------------------

    async def add(self, salon_id: str, values: Mapping[str, str], *, enabled: bool = True) -> Salon:
        """A new salon; `SettingsError` (nothing written) when its values are not valid."""
        given = {name: value for name, value in values.items() if value != ""}
        validate_salon(given)
        plain, sealed = self._split(salon_id, given)
        async with self.pool.acquire() as connection:
            try:
                row = await connection.fetchrow(
                    "INSERT INTO salons (id, enabled, settings, secrets)"
                    " VALUES ($1, $2, $3::jsonb, $4::jsonb) RETURNING *",
                    salon_id,
                    enabled,
                    json.dumps(plain),
                    json.dumps(sealed),
                )
            except asyncpg.UniqueViolationError:
                raise SalonExists(salon_id) from None
        return await self._announced(row, "added")

    async def update(self, salon_id: str, changes: Mapping[str, str]) -> Salon:
        """Change some values (an empty value removes one); the result is validated whole."""
        if problems := name_problems(changes):
            # Also for an empty value: a mistyped name to remove is refused, not "updated".
            raise SettingsError(tuple(problems))
        async with self.pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                "SELECT * FROM salons WHERE id = $1 FOR UPDATE",
                salon_id,
            )
            if row is None:
                raise NoSuchSalon(salon_id)
            # The stored secrets are decrypted to validate the salon as it will be.
            merged = {**self._salon(row, decrypt=True).environment(), **changes}
            merged = {name: value for name, value in merged.items() if value != ""}
            validate_salon(merged)
            plain, sealed = self._split(salon_id, merged)
            row = await connection.fetchrow(
                "UPDATE salons SET settings = $2::jsonb, secrets = $3::jsonb,"
                " version = nextval('salon_versions'), updated_at = now()"
                " WHERE id = $1 RETURNING *",
                salon_id,
                json.dumps(plain),
                json.dumps(sealed),
            )
        return await self._announced(row, "updated")

    async def set_enabled(self, salon_id: str, enabled: bool) -> Salon:
        row = await self.pool.fetchrow(
            "UPDATE salons SET enabled = $2, version = nextval('salon_versions'),"
            " updated_at = now() WHERE id = $1 RETURNING *",
            salon_id,
            enabled,
        )
        if row is None:
            raise NoSuchSalon(salon_id)
        return await self._announced(row, "enabled" if enabled else "disabled")

    async def remove(self, salon_id: str) -> None:
        row = await self.pool.fetchrow(
            "DELETE FROM salons WHERE id = $1 RETURNING *",
            salon_id,
        )
        if row is None:
            raise NoSuchSalon(salon_id)
        await self._announced(row, "removed")

    async def rotate_secrets(self) -> tuple[int, int]:
        """Every stored secret re-encrypted with SECRETS_KEY's first key, in one transaction:
        (secrets, salons). The values do not change, so neither do the versions."""
        cipher = self._cipher()
        secrets = salons = 0
        async with self.pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch("SELECT id, secrets FROM salons ORDER BY id FOR UPDATE")
            for row in rows:
                sealed = json.loads(row["secrets"])
                if not sealed:
                    continue
                rotated = {
                    name: cipher.rotate(token, f"salon {row['id']}: {name}")
                    for name, token in sealed.items()
                }
                await connection.execute(
                    "UPDATE salons SET secrets = $2::jsonb WHERE id = $1",
                    row["id"],
                    json.dumps(rotated),
                )
                secrets += len(rotated)
                salons += 1
        await self._announce({"change": "rotated"})
        return secrets, salons

    # --- rows, keys and announcements -----------------------------------------------------

    def _cipher(self) -> SecretCipher:
        if self.cipher is None:
            raise SecretsKeyError(
                "SECRETS_KEY is not set: the salons' secrets are encrypted with it"
            )
        return self.cipher

    def _split(
        self, salon_id: str, values: Mapping[str, str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """(plain values, encrypted secrets)."""
        plain = {name: value for name, value in values.items() if name not in SECRET_NAMES}
        secret = {name: value for name, value in values.items() if name in SECRET_NAMES}
        if not secret:
            return plain, {}
        cipher = self._cipher()
        return plain, {name: cipher.encrypt(value) for name, value in secret.items()}

    def _salon(self, row: Any, *, decrypt: bool) -> Salon:
        sealed: dict[str, str] = json.loads(row["secrets"])
        secrets: dict[str, SecretStr] = {}
        if decrypt and sealed:
            cipher = self._cipher()
            secrets = {
                name: SecretStr(cipher.decrypt(token, f"salon {row['id']}: {name}"))
                for name, token in sealed.items()
            }
        return Salon(
            id=row["id"],
            enabled=row["enabled"],
            version=row["version"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            values=json.loads(row["settings"]),
            secret_names=frozenset(sealed),
            secrets=secrets,
        )

    async def _announced(self, row: Any, change: str) -> Salon:
        salon = self._salon(row, decrypt=False)
        log.info("salon %s %s (version %d)", salon.id, change, salon.version)
        await self._announce({"salon": salon.id, "version": salon.version, "change": change})
        return salon

    async def _announce(self, notice: dict[str, Any]) -> None:
        if self.redis is None:
            return
        try:
            await self.redis.publish(self.channel, json.dumps(notice))
        except (RedisError, OSError) as exc:
            # Written all the same: the gateways' periodic re-read will see it.
            log.warning(
                "salon change not announced (%s): seen on the next re-read", type(exc).__name__
            )
