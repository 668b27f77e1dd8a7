"""`GET|POST /webhooks/whatsapp`: one Meta app's callback URL, shared by every salon's number.

Meta calls one URL per app (contracts/chatwoot-whatsapp-telegram.md §2.1), so one app serving
several salons' numbers posts all of them here, and a notification says whose it is in
`entry[].changes[].value.metadata.phone_number_id` ("Route by `metadata.phone_number_id`
(multi-salon)", §2.3). A body is read once and handed to the route of each salon whose number
it names: that route checks the signature with the salon's app secret and queues only its own
number's messages (`WhatsAppWebhook` drops the others), so a batch of several numbers is split
per salon. A number no salon serves is acknowledged (200) and dropped with a log line: Meta
delivers anything but a 200 again for up to 7 days (§2.5), and no salon would ever take it.

With the environment's salon alone (or no salon on WhatsApp elsewhere) the route is its own
route, exactly as before: no extra parse.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from gateway.wiring.served import ServedSalon, ServedSalons
from handlers.whatsapp import verify_challenge

log = logging.getLogger("frontdesk.edge")

# Of several salons' answers to one body, the one Meta should see: a 503 (delivered again
# later, the duplicates dropped by their ids) before a 401 or 400, before a 200.
_WORST_FIRST = (503, 401, 413, 408, 400)


def add_whatsapp_routes(app: web.Application, served: ServedSalons) -> None:
    async def handshake(request: web.Request) -> web.StreamResponse:
        return await _handshake(request, served)

    async def notification(request: web.Request) -> web.StreamResponse:
        return await _notification(request, served)

    app.router.add_get("/webhooks/whatsapp", handshake)
    app.router.add_post("/webhooks/whatsapp", notification)


async def _handshake(request: web.Request, served: ServedSalons) -> web.StreamResponse:
    """Meta's subscription check, passed when the verify token is any served salon's."""
    environment = served.live[served.environment_id].routes.handshake
    if environment is not None and len(served.by_whatsapp_number()) <= 1:
        return await environment(request)
    for salon in served.live.values():
        whatsapp = salon.runtime.settings.salon.whatsapp
        if whatsapp is None:
            continue
        challenge = verify_challenge(request.query, whatsapp.verify_token.get_secret_value())
        if challenge is not None:
            return web.Response(text=challenge, content_type="text/plain")
    if not served.by_whatsapp_number():
        return web.json_response({"error": "whatsapp is off"}, status=404)
    log.warning("WhatsApp verification refused: wrong verify token or mode")
    return web.Response(status=403, text="forbidden")


async def _notification(request: web.Request, served: ServedSalons) -> web.StreamResponse:
    salons = served.by_whatsapp_number()
    environment = served.live[served.environment_id]
    if environment.routes.whatsapp is not None and len(salons) == 1:
        return await environment.routes.whatsapp.handle(request)
    if not salons:
        return web.json_response({"error": "whatsapp is off"}, status=404)
    first = next(iter(salons.values())).routes.whatsapp
    assert first is not None  # by_whatsapp_number lists salons with a WhatsApp route
    raw = await first.receive(request)
    if isinstance(raw, web.Response):
        return raw
    numbers = _numbers_in(raw)
    if not numbers:
        # Verified, then refused as the body it is (or read and found empty).
        return await first.accept(request, raw)
    for unknown in sorted(numbers - salons.keys()):
        log.warning("WhatsApp delivery for a number no salon serves dropped: %s", unknown)
    answers = [await _accept(salons[number], request, raw) for number in numbers & salons.keys()]
    for status in _WORST_FIRST:
        for answer in answers:
            if answer.status == status:
                return answer
    return web.Response(body=b"{}", content_type="application/json")


async def _accept(salon: ServedSalon, request: web.Request, raw: bytes) -> web.Response:
    route = salon.routes.whatsapp
    assert route is not None
    return await route.accept(request, raw)


def _numbers_in(raw: bytes) -> set[str] | None:
    """The numbers a notification is for; None when it is no notification to read."""
    try:
        data: Any = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("entry"), list):
        return None
    numbers: set[str] = set()
    for entry in data["entry"]:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            value = change.get("value") if isinstance(change, dict) else None
            metadata = value.get("metadata") if isinstance(value, dict) else None
            number = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
            if isinstance(number, str) and number:
                numbers.add(number)
    return numbers
