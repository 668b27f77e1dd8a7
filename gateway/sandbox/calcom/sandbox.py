"""A faithful local stand-in of Cal.com API v2 for a salon: an aiohttp application with state.

Towards the gateway it answers like api.cal.com/v2 (contract §1 of calcom-novu-metabase.md): the
per-family `cal-api-version` (§1.1), the `{status, data}` envelope and Nest's error shape (§1.2),
the `X-RateLimit-*-Default` headers and 429 (§1.3), event types (§1.4), slots computed from the
masters' schedules in their own zones (§1.5), bookings with Cal.com's own validation wording and
conflict answers (§1.6-§1.9). Given the vendor spec (`calcom-v2.openapi.json`) it also checks
bodies and query strings field by field. Towards the gateway's webhook it acts as Cal.com: a
signed `{triggerEvent, createdAt, payload}` per booking change (§1.10).

Deliberate simplifications: one API key, whose owner (`owner_id`) may see and manage everything;
no organizations, seats, recurring, instant, dynamic or multi-duration events; no calendars; a
webhook is sent once (Cal.com's retries are deployment-dependent, §1.10). Every request carries
the key, so serve it without an access log (`serve` does).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from aiohttp import web

from gateway.sandbox.calcom.errors import _ok
from gateway.sandbox.calcom.model import JSON, now_utc
from gateway.sandbox.calcom.pipeline import _ROUTES
from gateway.sandbox.calcom.seeding import Seeding


class CalcomSandbox(Seeding):
    """Cal.com API v2 for one API key, plus the Cal.com side that signs and sends webhooks.

    Seed it with `add_master`, `add_override`, `add_team`, `add_event_type`,
    `add_team_event_type` or `seed_demo_salon`; `clock` is "now" for notice, expiry and
    timestamps. Attributes for tests: `calls` (every answered request), `webhooks_sent` (after
    `await flush_webhooks()`), `owner_id` (the key's user), `salon_address`, `delay` (seconds
    before each answer), `rate_limit` per `RATE_WINDOW` seconds, `webhook_url`,
    `webhook_secret` (a webhook made on Cal.com's settings page, for every trigger),
    `webhook_timeout`, `validating` (the spec file was found), `webhooks` (those registered
    through `/v2/webhooks`, which get the triggers they subscribed to, signed with their own
    secret).
    A reservation's holder books it by sending its uid as the `uid` cookie or `reservedSlotUid`.
    """

    def __init__(
        self,
        api_key: str,
        spec_path: Path | None = None,
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        super().__init__(
            api_key, spec_path, webhook_url=webhook_url, webhook_secret=webhook_secret, clock=clock
        )
        self._handlers = {
            "getEventTypes": self._get_event_types,
            "getEventType": self._get_event_type,
            "getTeamEventTypes": self._get_team_event_types,
            "getSlots": self._get_slots,
            "reserveSlot": self._reserve_slot,
            "getReservation": self._get_reservation,
            "deleteReservation": self._delete_reservation,
            "createBooking": self._create_booking,
            "getBookings": self._get_bookings,
            "getBooking": self._get_booking,
            "cancelBooking": self._cancel_booking,
            "rescheduleBooking": self._reschedule_booking,
            "getMe": self._get_me,
            "createWebhook": self._create_webhook,
            "getWebhooks": self._get_webhooks,
            "getWebhook": self._get_webhook,
            "updateWebhook": self._update_webhook,
            "deleteWebhook": self._delete_webhook,
        }

    # -- the application ------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        for route in _ROUTES:
            app.router.add_route(route.method, route.template, self._bind(route))
        app.router.add_route("*", "/v2/{tail:.*}", self._unknown_route)
        app.router.add_get("/_sandbox/bookings", self._page_bookings)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def flush_webhooks(self) -> None:
        """Wait until every webhook already triggered has been delivered (or has failed)."""
        await self.settle()

    async def _get_me(self, _request: web.Request, _authed: bool) -> web.Response:
        owner = self._users[self.owner_id]
        return _ok(
            {
                "id": owner.id,
                "username": owner.username,
                "email": owner.email,
                "timeFormat": 24,
                "defaultScheduleId": None,
                "weekStart": "Monday",
                "timeZone": owner.time_zone,
                "organizationId": None,
            }
        )

    # -- the demo page's JSON -------------------------------------------------------------

    async def _page_bookings(self, _request: web.Request) -> web.Response:
        return web.json_response(self.bookings_json())

    def bookings_json(self) -> list[JSON]:
        """Every booking, earliest first, as the API shows them (the demo page lists them)."""
        bookings = sorted(self._bookings.values(), key=lambda b: b.start)
        return [self._booking_json(b) for b in bookings]
