"""Metabase from the salon's settings: the signed link to its dashboard."""

from __future__ import annotations

from typing import Any

from gateway.integrations.metabase.api import embed_url, sign_embed
from gateway.salon_settings import DashboardEmbed

# How long a signed dashboard embed stays valid (it travels in a URL: keep it short).
EMBED_TTL = 600


def dashboard_link(embed: DashboardEmbed, params: dict[str, Any], ttl: int) -> str:
    """A signed embed URL of the salon's dashboard, valid `ttl` seconds (it travels in a URL)."""
    token = sign_embed(embed.secret_key.get_secret_value(), embed.dashboard_id, params, ttl=ttl)
    return embed_url(embed.site_url, token)
