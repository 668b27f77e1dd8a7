"""Cal.com's error answers (§1.2 of calcom-novu-metabase.md): Nest's HttpException through
Cal.com's filter, its wording for the answers the gateway meets, and the success envelope."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web

from gateway.sandbox.calcom.model import JSON, _iso

_THROTTLED = "ThrottlerException: Too Many Requests"
_MISSING_AUTH = (
    "No authentication method provided. Either pass an API key as 'Bearer' header or OAuth "
    "client credentials as 'x-cal-secret-key' and 'x-cal-client-id' headers"
)
# Cal.com's ErrorsBookingsService_2024_08_13 wording (a taken slot is a 400, not a 409).
_USER_BUSY = "User either already has booking at this time or is not available"
_HOSTS_BUSY = "One of the hosts either already has booking at this time or is not available"
_OUT_OF_BOUNDS = (
    "The event type can't be booked at the \"start\" time provided. This could be because it's "
    "too soon (violating the minimum booking notice) or too far in the future (outside the "
    "event's scheduling window). Try fetching available slots first using the GET /v2/slots "
    'endpoint and then make a booking with "start" time equal to one of the available slots.'
)
_METADATA_RULE = (
    "Metadata must have at most 50 keys, each key up to 40 characters, and string values up to "
    "500 characters."
)
_START_RULE = {"isDateString": "start must be a valid ISO 8601 date string"}


class CalcomError(Exception):
    """An error answer: Nest's HttpException through Cal.com's filter (§1.2), or a raw body."""

    def __init__(
        self,
        status: int,
        message: str,
        details: Any = None,
        *,
        raw: JSON | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.raw = raw
        self.headers = dict(headers or {})

    def response(self, request: web.Request, timestamp: datetime) -> web.Response:
        if isinstance(self.raw, str):
            return web.Response(text=self.raw, status=self.status, headers=self.headers)
        if self.raw is not None:  # not an HttpException: Nest's own default filter answers
            return web.json_response(self.raw, status=self.status, headers=self.headers)
        details = self.details
        if details is None:
            details = {
                "message": self.message,
                "error": _phrase(self.status),
                "statusCode": self.status,
            }
        body = {
            "status": "error",
            "timestamp": _iso(timestamp),
            "path": request.path_qs,
            "error": {
                "code": _exception(self.status),
                "message": self.message,
                "details": details,
            },
        }
        headers = self.headers | {
            "X-Request-Id": request.headers.get("X-Request-Id", "unknown-request-id")
        }
        return web.json_response(body, status=self.status, headers=headers)


def _phrase(status: int) -> str:
    return HTTPStatus(status).phrase if status in _PHRASES else "Error"


def _exception(status: int) -> str:
    """The `error.code`: Nest's exception class, named after the status phrase."""
    if status == 429:
        return "ThrottlerException"
    return (
        _phrase(status).title().replace(" ", "") + "Exception"
        if status in _PHRASES
        else "HttpException"
    )


_PHRASES = {status.value for status in HTTPStatus}


def _limit_headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
    """§1.3: one set per named throttler, suffixed with its name (`default`)."""
    return {
        "X-RateLimit-Limit-Default": str(limit),
        "X-RateLimit-Remaining-Default": str(remaining),
        "X-RateLimit-Reset-Default": str(reset),
    }


def _ok(data: Any, *, status: int = 200, **extra: Any) -> web.Response:
    return web.json_response({"status": "success", "data": data, **extra}, status=status)
