"""The Dashboard Apps' tokens (gateway/dashboard_app/tokens.py) against what a stranger sends.

aiohttp reads a header's bytes that are not UTF-8 as surrogates (surrogateescape): an
`Authorization: Bearer <bytes>` header must be refused as any bad token is (the route's 401),
not raise while it is checked (a 500)."""

from __future__ import annotations

import pytest

from gateway.dashboard_app import tokens

SECRET = tokens.secret_for("main", "chatwoot-token")


@pytest.mark.parametrize(
    "given",
    ["\udcff\udcfe.abc", "abc.\udcff", "\udcff", "токен.подпись", ""],
)
def test_a_token_that_is_not_ascii_is_refused_not_an_error(given: str) -> None:
    assert tokens.read(SECRET, given, tokens.NOTICES, 0) is None


def test_a_token_we_issued_reads_back() -> None:
    token = tokens.issue(SECRET, tokens.NOTICES, {"agent": 3}, 1000)
    claims = tokens.read(SECRET, token, tokens.NOTICES, 1000)
    assert claims is not None
    assert claims["agent"] == 3
    assert tokens.read(SECRET, token, tokens.STAFF, 1000) is None


def test_a_link_key_that_is_not_ascii_does_not_match() -> None:
    assert not tokens.key_matches(SECRET, "\udcff")
