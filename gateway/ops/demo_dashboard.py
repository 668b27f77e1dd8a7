"""The demo's Metabase and the owner's report: Metabase's stand-in on `port + 9` with the
dashboard `frontdesk metabase sync` makes, so that the owner's report sent from a demo session
links to a dashboard that opens; and the command that sends that report, for the banner.

Nothing here is a secret: the stand-in accepts these values and nothing else does.
"""

from __future__ import annotations

import shlex

from aiohttp import web

from gateway.analytics.store import questions
from gateway.analytics.weekly import Week
from gateway.integrations.metabase.api import MetabaseClient, sync
from gateway.sandbox.metabase import MetabaseSandbox
from gateway.settings import Settings

DEMO_METABASE_KEY = "mb_demo_sandbox_key"
DEMO_METABASE_SECRET = "demo" * 16  # known to the sandbox only
DEMO_EMBED_TOKEN = "frontdesk-demo-staff-token"  # noqa: S105 - known to the demo only
DEMO_OWNER = "owner@demo-salon.example"
METABASE_OFFSET = 9


async def serve_dashboard(
    settings: Settings, host: str, port: int
) -> tuple[Settings, web.AppRunner | None]:
    """With the demo's analytics: the stand-in, synced, and the salon told of it."""
    if settings.analytics is None:
        return settings, None
    site = f"http://{host}:{port + METABASE_OFFSET}"
    runner = await MetabaseSandbox(api_key=DEMO_METABASE_KEY, secret=DEMO_METABASE_SECRET).serve(
        host, port + METABASE_OFFSET
    )
    async with MetabaseClient(site, api_key=DEMO_METABASE_KEY) as client:
        done = await sync(client, settings.analytics.database_url.get_secret_value(), questions())
    return settings.with_salon(**_metabase_names(site, done["dashboard"])), runner


def _metabase_names(site: str, dashboard: int) -> dict[str, object]:
    return {
        "metabase_site_url": site,
        "metabase_api_key": DEMO_METABASE_KEY,
        "metabase_secret_key": DEMO_METABASE_SECRET,
        "metabase_dashboard_id": dashboard,
        "analytics_embed_token": DEMO_EMBED_TOKEN,
    }


def report_command(settings: Settings, week: Week) -> str | None:
    """`frontdesk analytics report --send` for this demo's salon and `week`, with the names it
    reads from the environment (the demo's values), ready to paste into another shell."""
    salon = settings.salon
    if settings.analytics is None or salon.novu is None or salon.metabase is None:
        return None
    names: dict[str, object] = {
        "SALON_ID": salon.profile.id,
        "SALON_NAME": salon.profile.name,
        "SALON_TIMEZONE": salon.profile.timezone,
        "DEFAULT_LOCALE": salon.profile.default_locale,
        "OWNER_EMAIL": DEMO_OWNER,
        "OWNER_LOCALE": "ru",
        "NOVU_API_URL": salon.novu.api_url,
        "NOVU_API_KEY": salon.novu.api_key.get_secret_value(),
        "ANALYTICS_DATABASE_URL": settings.analytics.database_url.get_secret_value(),
        "ANALYTICS_SALT": salon.analytics.salt.get_secret_value() if salon.analytics.salt else "",
        "PUBLIC_URL": settings.public_url or "",
        **{
            name.upper(): value
            for name, value in _metabase_names(
                salon.metabase.site_url, salon.metabase.dashboard_id or 0
            ).items()
        },
    }
    pairs = " ".join(f"{name}={shlex.quote(str(value))}" for name, value in names.items())
    return f"env {pairs} frontdesk analytics report --send --week {week.name}"
