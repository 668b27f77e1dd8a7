"""The Dashboard App's credentials: HMAC-signed, each for one purpose, the short ones expiring.

Chatwoot gives a Dashboard App no secret: it loads the URL configured under Settings →
Integrations → Dashboard Apps (`DashboardApp#content`, a list of `{type: "frame", url}`;
app/models/dashboard_app.rb, app/javascript/dashboard/components/widgets/DashboardApp/Frame.vue)
in an iframe and posts it the conversation, the contact and the current agent. So:

- the configured URL carries the salon's link key (`link_key`), which only Chatwoot's
  administrators see; the page answers 403 without it;
- the page then holds a page token (15 minutes) that only lets it present Chatwoot's context;
- the gateway checks that context against Chatwoot's API with the salon's own token (the
  conversation is in the salon's account and is a Frontdesk client's; the agent is one of the
  account's and answers it: a member of its inbox, or its assignee) and answers with a staff
  token (15 minutes) naming that conversation and agent, which every other call carries.

The key is derived from the salon's Chatwoot API token and DASHBOARD_APP_KEY_VERSION: a new
token, or a raised version, means a new URL to set (and the old one stops working).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

PAGE = "page"
STAFF = "staff"
# The Notices app's token: names only the agent, whose Novu feed it reads (notices.py).
NOTICES = "notices"
TTL_SECONDS = 15 * 60


def secret_for(salon_id: str, chatwoot_token: str, version: int = 0) -> bytes:
    """The salon's secret: from its Chatwoot token and the operator's key version
    (DASHBOARD_APP_KEY_VERSION; raising it rotates the link key, 0 keeps the first one)."""
    label = f"frontdesk dashboard app:{salon_id}" + (f":v{version}" if version else "")
    return hmac.new(chatwoot_token.encode(), label.encode(), hashlib.sha256).digest()


def link_key(secret: bytes) -> str:
    """The key the configured URL carries (`?key=`)."""
    return _b64(hmac.new(secret, b"link", hashlib.sha256).digest()[:24])


def key_matches(secret: bytes, given: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), link_key(secret).encode())


def issue(secret: bytes, scope: str, claims: dict[str, Any], now: float) -> str:
    body = {**claims, "scope": scope, "exp": int(now) + TTL_SECONDS}
    payload = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{payload}.{_sign(secret, payload)}"


def read(secret: bytes, token: str, scope: str, now: float) -> dict[str, Any] | None:
    """The token's claims when it is ours, for `scope` and not expired; None otherwise."""
    if not token.isascii():
        # Ours are base64url. A header's bytes that are not UTF-8 arrive as surrogates, which
        # cannot be encoded to be signed: refused here (a 401), not raised (a 500).
        return None
    payload, _sep, signature = token.partition(".")
    expected = _sign(secret, payload)
    if not hmac.compare_digest(signature.encode("utf-8", "surrogateescape"), expected.encode()):
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return None
    if not isinstance(claims, dict) or claims.get("scope") != scope:
        return None
    expires = claims.get("exp")
    if not isinstance(expires, int) or expires <= now:
        return None
    return claims


def _sign(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
