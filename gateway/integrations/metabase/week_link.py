"""The owner's report links to the salon's dashboard for the report's week, through the gateway.

Why not a Metabase embed URL in the email itself: an embed URL carries its JWT, which ends up in
mail archives, proxies and logs (metabase/metabase#82714), so the gateway signs embeds for ten
minutes (`EMBED_TTL`); an owner who opens last week's email would meet an expired dashboard. So
the email carries a link to the gateway,

    PUBLIC_URL/analytics/week/<salon>/<week>?until=<unix seconds>&sig=<signature>

signed by the gateway alone (HMAC-SHA256 over the salon, the week and `until`), and the gateway,
once it has checked the signature and the date, answers with a redirect to a fresh ten-minute
signed embed of the dashboard locked to the salon and set to exactly that week
(`week_params`). The link opens until `LINK_DAYS` after the week's last day: a quarter's worth
of weekly emails stays usable, and no link opens for ever.

The signing key is derived from the salon's ANALYTICS_EMBED_TOKEN, the secret that already
guards its dashboard for staff: no new setting, and rotating that token (a member of staff left)
retires every report link sent before, as it retires the staff's own links. The salon and the
week are in the signed text, so a link cannot be turned into another week's or another salon's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from gateway.analytics.weekly import Week

LINK_DAYS = 92
# Distinct from any other use of the staff token's bytes (a key is derived, not reused).
_PURPOSE = b"frontdesk:owner-report-link:v1"


class LinkRefused(Exception):
    """Why a week link does not open: the HTTP status and a message without secrets."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _key(staff_token: str) -> bytes:
    return hmac.new(staff_token.encode(), _PURPOSE, hashlib.sha256).digest()


def _signature(staff_token: str, salon: str, week: str, until: str) -> str:
    signed = f"{salon}\n{week}\n{until}".encode()
    digest = hmac.new(_key(staff_token), signed, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def link_until(week: Week, zone: ZoneInfo) -> int:
    """When the week's link stops opening: midnight (the salon's) LINK_DAYS after its Sunday.
    The same for every send of the week, so the report's text is the same too."""
    last = datetime.combine(week.end + timedelta(days=LINK_DAYS + 1), time(), tzinfo=zone)
    return int(last.timestamp())


def week_link(public_url: str, salon: str, week: Week, staff_token: str, zone: ZoneInfo) -> str:
    until = str(link_until(week, zone))
    query = urlencode({"until": until, "sig": _signature(staff_token, salon, week.name, until)})
    path = f"/analytics/week/{quote(salon, safe='')}/{week.name}"
    return f"{public_url.rstrip('/')}{path}?{query}"


def check_week_link(
    salon: str, week: str, until: str, signature: str, staff_token: str, now: datetime
) -> Week:
    """The week a link opens, or LinkRefused: 400 malformed, 403 not signed by this salon's
    token (tampered with, or the token was rotated), 410 past its date."""
    if not (until.isascii() and until.isdigit() and len(until) <= 12) or not signature:
        raise LinkRefused(400, "the link is incomplete")
    expected = _signature(staff_token, salon, week, until)
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise LinkRefused(403, "the link's signature does not match")
    if now.timestamp() >= int(until):
        raise LinkRefused(410, "the link has expired: open the dashboard from a newer report")
    try:
        return Week.parse(week)
    except ValueError:  # only a link signed with a bad week, which we never make
        raise LinkRefused(400, "no such week") from None


def week_params(salon: str, week: Week) -> dict[str, Any]:
    """The dashboard's parameters for the week (api.PARAMETERS): the salon, locked, and the
    week's first and last day. Metabase takes a single day as `2024-01-02` in a date
    parameter's value, and a value given in the token for an editable parameter
    (`start`, `end`: api.EMBEDDING) fixes it and hides its widget (metabase/metabase
    docs/embedding/parameters-reference.md, "Date formats" and "Params in a signed token",
    commit 01afcca393e2edc9ccf5009ac6a78b0c195afb47)."""
    return {"salon": salon, "start": week.start.isoformat(), "end": week.end.isoformat()}
