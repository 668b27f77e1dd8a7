"""The salon registry: every salon one gateway serves, in PostgreSQL (`DATABASE_URL`).

A salon is its id (the pattern of `SALON_ID`), an enabled flag, when it was created and last
changed, a version that grows with every change, and its values under **the same flat names as
the operator's environment** (`SALON_NAME`, `TELEGRAM_BOT_TOKEN`, `CALCOM_API_URL`, ...). Why
flat names: one vocabulary for the single-salon environment of today, a salon's TOML file, the
`frontdesk salons` commands and the validation, so moving a salon from the environment into the
registry is a copy, each name means the same everywhere, and the settings that validate the
environment validate a salon (`validate_salon`). Process-wide names (`REDIS_URL`, `PORT`,
`STREAM_SHARDS`, ...) are refused: they are the gateway's, not a salon's.

The secrets (the settings typed `SecretStr`) are encrypted at rest with Fernet under
`SECRETS_KEY` (`cipher`); their names stay readable, so `list` and `show` need no key.

- `values`: which names are a salon's, which are secret, validation, the TOML file.
- `cipher`: Fernet and key rotation.
- `registry`: the table, its migrations, and the announcement of every write over Redis.
- `watcher`: what a running gateway uses to follow the registry within seconds.
"""

from gateway.salons.cipher import SecretCipher, SecretsKeyError
from gateway.salons.registry import NoSuchSalon, Salon, SalonExists, SalonRegistry
from gateway.salons.values import SALON_NAMES, SECRET_NAMES, from_toml, validate_salon
from gateway.salons.watcher import SalonWatcher

__all__ = [
    "SALON_NAMES",
    "SECRET_NAMES",
    "NoSuchSalon",
    "Salon",
    "SalonExists",
    "SalonRegistry",
    "SalonWatcher",
    "SecretCipher",
    "SecretsKeyError",
    "from_toml",
    "validate_salon",
]
