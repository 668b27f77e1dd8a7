"""The salons' secrets at rest: Fernet tokens under the keys of `SECRETS_KEY`.

`SECRETS_KEY` holds one Fernet key or several, comma-separated. The first encrypts; every one
decrypts, so a key is rotated without a moment when a stored secret cannot be read: put the new
key first, run `frontdesk salons rotate-secrets` (every token re-encrypted with it), then drop
the old key. This is `MultiFernet`'s contract (cryptography's docs, "Fernet (symmetric
encryption)", https://cryptography.io/en/latest/fernet/: "MultiFernet performs all encryption
options using the first key in the list provided. MultiFernet attempts to decrypt tokens with
each key in turn"; `rotate` re-encrypts a token under the first key). A Fernet token is
authenticated (AES-CBC with an HMAC-SHA256): a wrong key is an error, never garbage.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretsKeyError(Exception):
    """SECRETS_KEY is missing, malformed, or does not open what the registry holds."""


class SecretCipher:
    """Encrypts and decrypts a salon's secret values; never shows its keys."""

    def __init__(self, secrets_key: str) -> None:
        parts = [part.strip() for part in secrets_key.split(",") if part.strip()]
        if not parts:
            raise SecretsKeyError("SECRETS_KEY: holds no key")
        keys = []
        for number, part in enumerate(parts, start=1):
            try:
                keys.append(Fernet(part))
            except ValueError:
                # The message says which key, never what it holds.
                raise SecretsKeyError(
                    f"SECRETS_KEY: key {number} is not a Fernet key (32 url-safe "
                    "base64-encoded bytes, as `Fernet.generate_key()` makes)"
                ) from None
        self._fernet = MultiFernet(keys)
        self.key_count = len(keys)

    def __repr__(self) -> str:
        return f"SecretCipher(<{self.key_count} keys>)"

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str, what: str) -> str:
        """The secret a token holds; `what` names it in the error (a salon and a name)."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretsKeyError(self._unreadable(what)) from None

    def rotate(self, token: str, what: str) -> str:
        """The same secret encrypted with the first key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise SecretsKeyError(self._unreadable(what)) from None

    def _unreadable(self, what: str) -> str:
        return (
            f"{what} cannot be decrypted with SECRETS_KEY: it was encrypted with a key "
            f"SECRETS_KEY no longer lists (it lists {self.key_count})"
        )
