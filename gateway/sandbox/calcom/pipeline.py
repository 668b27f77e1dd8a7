"""Every Cal.com request's way in: the routes, injected failures, the rate limit (§1.3), the
`cal-api-version` (§1.1), the API key, the JSON body and its check against the vendor spec."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import monotonic

from aiohttp import web

from gateway.sandbox.base import Call
from gateway.sandbox.calcom.errors import (
    _MISSING_AUTH,
    _THROTTLED,
    CalcomError,
    _limit_headers,
    _phrase,
)
from gateway.sandbox.calcom.model import JSON
from gateway.sandbox.calcom.state import CalcomState
from gateway.sandbox.calcom.validation import (
    _BOOKING_PIPE,
    _GLOBAL_PIPE,
    _class_validator,
    _invalid,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# §1.1: the version each endpoint family must be sent; the rest fall back to older contracts.
VERSIONS = {"event-types": "2024-06-14", "slots": "2024-09-04", "bookings": "2024-08-13"}
KNOWN_VERSIONS = ("2024-04-15", "2024-06-11", "2024-06-14", "2024-08-13", "2024-09-04")
# Which older versions still have a controller at the same paths (with another contract).
_OLD_CONTROLLERS = {
    "event-types": ("2024-04-15", "2024-06-11"),
    "bookings": ("2024-04-15", "2024-06-11", "2024-06-14"),
}
RATE_WINDOW = 60.0


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    template: str
    name: str
    family: str | None  # the cal-api-version family, None when no version is required
    auth: str  # "required" | "optional" | "none"


_ROUTES = (
    _Route("GET", "/v2/event-types", "getEventTypes", "event-types", "optional"),
    _Route("GET", "/v2/event-types/{eventTypeId}", "getEventType", "event-types", "required"),
    _Route("GET", "/v2/teams/{teamId}/event-types", "getTeamEventTypes", None, "optional"),
    _Route("GET", "/v2/slots", "getSlots", "slots", "none"),
    _Route("POST", "/v2/slots/reservations", "reserveSlot", "slots", "optional"),
    _Route("GET", "/v2/slots/reservations/{uid}", "getReservation", "slots", "none"),
    _Route("DELETE", "/v2/slots/reservations/{uid}", "deleteReservation", "slots", "none"),
    _Route("POST", "/v2/bookings", "createBooking", "bookings", "optional"),
    _Route("GET", "/v2/bookings", "getBookings", "bookings", "required"),
    _Route("GET", "/v2/bookings/{bookingUid}", "getBooking", "bookings", "optional"),
    _Route("POST", "/v2/bookings/{bookingUid}/cancel", "cancelBooking", "bookings", "optional"),
    _Route(
        "POST", "/v2/bookings/{bookingUid}/reschedule", "rescheduleBooking", "bookings", "optional"
    ),
    _Route("GET", "/v2/me", "getMe", None, "required"),
    # webhooks.controller.ts: `version: API_VERSIONS_VALUES` (any known version) and
    # ApiAuthGuard on every route.
    _Route("POST", "/v2/webhooks", "createWebhook", None, "required"),
    _Route("GET", "/v2/webhooks", "getWebhooks", None, "required"),
    _Route("GET", "/v2/webhooks/{webhookId}", "getWebhook", None, "required"),
    _Route("PATCH", "/v2/webhooks/{webhookId}", "updateWebhook", None, "required"),
    _Route("DELETE", "/v2/webhooks/{webhookId}", "deleteWebhook", None, "required"),
)


class RequestPipeline(CalcomState):
    """The checks every endpoint's request passes before its handler runs, in Cal.com's order."""

    # -- failure injection ----------------------------------------------------------------

    def fail_next(
        self,
        target: str,
        *,
        status: int = 500,
        body: JSON | str | None = None,
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` (and `body`, else Cal.com's
        error shape). `target` is an endpoint name ("createBooking", any case), a path
        ("/v2/bookings/abc/cancel") or "METHOD /path". A 429 carries Retry-After (default 1)."""
        names = {route.name.lower(): route.name for route in _ROUTES}
        if target.lower() in names:
            key = f"name:{names[target.lower()]}"
        elif target.startswith("/"):
            key = f"path:{target}"
        elif re.fullmatch(r"(GET|POST|PATCH|PUT|DELETE) /\S+", target):
            key = f"req:{target}"
        else:
            raise ValueError(f"not an endpoint name, path or 'METHOD /path': {target!r}")
        wait = retry_after if retry_after is not None else 1
        self._failures[key].extend((status, body, wait) for _ in range(times))

    def _take_failure(self, route: _Route, request: web.Request) -> CalcomError | None:
        keys = (
            f"name:{route.name}",
            f"req:{request.method} {request.path}",
            f"path:{request.path}",
        )
        key = next((key for key in keys if self._failures[key]), None)
        if key is None:
            return None
        status, body, wait = self._failures[key].popleft()
        headers = {}
        if status == 429:  # as the throttler answers: the window is spent
            headers = {"Retry-After": str(wait)} | _limit_headers(self.rate_limit, 0, wait)
        message = _THROTTLED if status == 429 else _phrase(status)
        return CalcomError(status, message, raw=body, headers=headers)

    # -- the request pipeline -------------------------------------------------------------

    def _bind(self, route: _Route) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._endpoint(route, request)

        return handle

    async def _endpoint(self, route: _Route, request: web.Request) -> web.Response:
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        headers: dict[str, str] = {}
        try:
            if failure := self._take_failure(route, request):
                raise failure
            headers = self._throttle(request)
            self._check_version(route, request)
            authed = self._authenticate(route, request)
            response = await self._handlers[route.name](request, authed)
        except CalcomError as exc:
            response = exc.response(request, self._now())
        response.headers.update(headers)
        self.calls.append(Call(route.name, request.method, request.path, response.status))
        return response

    async def _unknown_route(self, request: web.Request) -> web.Response:
        # Nest's router: no handler for this method and path (any version).
        error = CalcomError(404, f"Cannot {request.method} {request.path}")
        self.calls.append(Call("", request.method, request.path, 404))
        return error.response(request, self._now())

    def _throttle(self, request: web.Request) -> dict[str, str]:
        """§1.3: a fixed 60 s window per API key (per client address without one)."""
        auth = request.headers.get("Authorization", "")
        tracker = hashlib.sha256(auth.encode()).hexdigest() if auth else request.remote or ""
        now = monotonic()
        started, used = self._windows.get(tracker, (now, 0))
        if now - started >= RATE_WINDOW:
            started, used = now, 0
        used += 1
        self._windows[tracker] = (started, used)
        # The reset is opaque in §1.3: the sandbox sends the seconds left in the window.
        reset = max(1, math.ceil(RATE_WINDOW - (now - started)))
        headers = _limit_headers(self.rate_limit, max(0, self.rate_limit - used), reset)
        if used > self.rate_limit:
            raise CalcomError(429, _THROTTLED, headers=headers | {"Retry-After": str(reset)})
        return headers

    def _check_version(self, route: _Route, request: web.Request) -> None:
        """§1.1 and §1.12.1: another value routes to an older controller, or to none at all."""
        if route.family is None:
            return
        wanted = VERSIONS[route.family]
        sent = request.headers.get("cal-api-version")
        if sent == wanted:
            return
        target = sent if sent in KNOWN_VERSIONS else "2024-04-15"  # Cal.com's fallback
        if target not in _OLD_CONTROLLERS.get(route.family, ()):
            raise CalcomError(404, f"Cannot {request.method} {request.path}")
        if route.family == "bookings":  # calcom/cal.com#16924: the old contract fails with 500
            raw = {"statusCode": 500, "message": "Internal server error"}
            raise CalcomError(500, "Internal server error", raw=raw)
        raise CalcomError(
            400,
            f"cal-api-version must be {wanted}: Cal.com would answer with its older {target} "
            "event-types contract, which this sandbox does not emulate",
        )

    def _authenticate(self, route: _Route, request: web.Request) -> bool:
        header = request.headers.get("Authorization")
        if route.auth == "none":
            return False
        if not header:
            if route.auth == "required":
                raise CalcomError(401, _MISSING_AUTH)
            return False
        token = header.replace("Bearer ", "", 1)
        if secrets.compare_digest(token.encode(), self._api_key.encode()):
            return True
        raise CalcomError(
            401,
            "Your api key is not valid" if token.startswith("cal_") else "Invalid Access Token.",
        )

    async def _json_body(self, request: web.Request) -> JSON:
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CalcomError(400, f"Unexpected token in JSON at position {exc.pos}") from exc
        except ValueError as exc:
            raise CalcomError(400, "Unexpected token in JSON at position 0") from exc
        if not isinstance(body, dict):
            raise CalcomError(400, "Body should be an object")
        return body

    def _validate(self, request: web.Request, template: str, body: JSON, *, pipe: bool) -> None:
        """Spec check of a body. Bookings use CreateBookingInputPipe (unknown fields rejected,
        one message string); other bodies the global ValidationPipe (unknown fields dropped)."""
        if self._spec is None:
            return
        reading = _BOOKING_PIPE if pipe else _GLOBAL_PIPE
        problems = self._spec.check_body(request.method, template, body, reading)
        if problems:
            raise _invalid(_class_validator(problems, body), body, pipe=pipe)

    def _validate_query(self, request: web.Request, template: str) -> None:
        if self._spec is None:
            return
        problems = self._spec.check_query(request.method, template, request.query, _GLOBAL_PIPE)
        if problems:
            query = dict(request.query)
            raise _invalid(_class_validator(problems, query), query, pipe=False)
