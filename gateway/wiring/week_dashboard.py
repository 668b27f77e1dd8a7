"""`GET /analytics/week/<salon>/<week>?until=…&sig=…`: the owner's report's link to the
dashboard (gateway/integrations/metabase/week_link.py says why it is a link to the gateway).

A link the gateway signed for that salon and week, still within its date, is answered with a
redirect to a fresh signed embed of the salon's dashboard for exactly that week; anything else
with a 4xx and no redirect: 400 malformed, 403 tampered with (or signed with a rotated token),
410 expired or the salon disabled, 404 an unknown salon or one without its dashboard settings.
"""

from __future__ import annotations

from aiohttp import web

from gateway.integrations.metabase.factory import EMBED_TTL, dashboard_link
from gateway.integrations.metabase.week_link import LinkRefused, check_week_link, week_params
from gateway.wiring.dispatch import not_served
from gateway.wiring.served import SERVED


async def week_dashboard(request: web.Request) -> web.Response:
    served = request.app[SERVED]
    salon_id = request.match_info["salon"]
    live = served.live.get(salon_id)
    if live is None:
        return not_served(served, salon_id)
    salon = live.runtime.settings.salon
    embed = salon.embedding
    if embed is None:
        return web.json_response({"error": "no analytics embed for this salon"}, status=404)
    try:
        week = check_week_link(
            salon_id,
            request.match_info["week"],
            request.query.get("until", ""),
            request.query.get("sig", ""),
            embed.token.get_secret_value(),
            served.clock(),  # the app's clock (tests set it)
        )
    except LinkRefused as refused:
        return web.json_response({"error": refused.reason}, status=refused.status)
    url = dashboard_link(embed, week_params(salon_id, week), ttl=EMBED_TTL)
    # The embed's token is in the URL: not kept by caches, not passed on as a Referer.
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    raise web.HTTPFound(url, headers=headers)
