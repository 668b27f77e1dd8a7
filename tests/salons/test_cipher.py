"""SECRETS_KEY: Fernet keys, the first encrypting and every one decrypting."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from gateway.salons.cipher import SecretCipher, SecretsKeyError

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()


def test_a_secret_goes_in_sealed_and_comes_out_whole() -> None:
    cipher = SecretCipher(OLD)
    token = cipher.encrypt("cal_live_0123456789")
    assert "cal_live" not in token
    assert cipher.decrypt(token, "salon a: CALCOM_API_KEY") == "cal_live_0123456789"


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    token = SecretCipher(OLD).encrypt("s3cret")
    both = SecretCipher(f"{NEW}, {OLD}")
    assert both.decrypt(token, "x") == "s3cret"
    rotated = both.rotate(token, "x")
    assert SecretCipher(NEW).decrypt(rotated, "x") == "s3cret"
    assert SecretCipher(NEW).decrypt(both.encrypt("again"), "x") == "again"


def test_a_key_that_does_not_open_a_secret_says_so_and_which() -> None:
    token = SecretCipher(OLD).encrypt("s3cret")
    with pytest.raises(SecretsKeyError) as caught:
        SecretCipher(NEW).decrypt(token, "salon nord: TELEGRAM_BOT_TOKEN")
    assert str(caught.value) == (
        "salon nord: TELEGRAM_BOT_TOKEN cannot be decrypted with SECRETS_KEY: it was encrypted "
        "with a key SECRETS_KEY no longer lists (it lists 1)"
    )
    with pytest.raises(SecretsKeyError, match="salon nord: X cannot be decrypted"):
        SecretCipher(NEW).rotate(token, "salon nord: X")


def test_a_malformed_key_is_refused_without_showing_it() -> None:
    with pytest.raises(SecretsKeyError) as caught:
        SecretCipher(f"{OLD},not-a-key-at-all")
    assert str(caught.value).startswith("SECRETS_KEY: key 2 is not a Fernet key")
    assert "not-a-key-at-all" not in str(caught.value)
    with pytest.raises(SecretsKeyError, match="holds no key"):
        SecretCipher(" , ")


def test_the_keys_stay_out_of_its_repr() -> None:
    assert repr(SecretCipher(f"{NEW},{OLD}")) == "SecretCipher(<2 keys>)"
