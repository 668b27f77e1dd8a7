"""Where each provider posts to the gateway: the one place the webhook URLs are built."""

from __future__ import annotations


def webhook_url(public_url: str, source: str, salon_id: str | None = None) -> str:
    """`{PUBLIC_URL}/webhooks/<source>` for the environment's salon (the routes of the
    single-salon gateway), `{PUBLIC_URL}/webhooks/<source>/<salon>` for a registry salon."""
    base = f"{public_url.rstrip('/')}/webhooks/{source}"
    return base if salon_id is None else f"{base}/{salon_id}"
