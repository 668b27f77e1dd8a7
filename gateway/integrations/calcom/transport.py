"""How one call to Cal.com API v2 travels: auth and version headers, the envelope, retries of
what is safe to repeat, 429s waited out, and the breaker.

`shared/contracts/calcom-novu-metabase.md` §1.1-§1.3: every request goes to `<root>/v2/...` with
`Authorization: Bearer <key>` and the `cal-api-version` of its endpoint family (a missing or
wrong value silently selects an older contract or fails with a 500, calcom/cal.com #16924);
answers are `{"status": "success", "data": ...}`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Literal

import httpx

from gateway.integrations.calcom.errors import (
    CalcomRejected,
    CalcomUnavailable,
    RateLimited,
    error_fields,
    rejection,
)
from gateway.integrations.calcom.rate_limits import RateBudget, advised_wait, budgets
from gateway.integrations.http import JsonApiClient, ServiceUnavailable
from gateway.pipeline.resilience import BreakerOpen, CircuitBreaker

# One logger for the whole Cal.com client, whichever of its modules speaks.
log = logging.getLogger("gateway.integrations.calcom.api")

# §1.1: the value each endpoint family requires. Team event types (`/v2/teams/{id}/event-types`)
# declare no version header in the vendor spec; they share the 2024-06-14 output types, so they
# get that value too (a header the endpoint does not read is harmless).
VERSION_EVENT_TYPES: Final = "2024-06-14"
VERSION_SLOTS: Final = "2024-09-04"  # also /v2/slots/reservations
VERSION_BOOKINGS: Final = "2024-08-13"
# `/v2/webhooks` takes any known version (webhooks.controller.ts: `version: API_VERSIONS_VALUES`).
VERSION_WEBHOOKS: Final = VERSION_BOOKINGS

Sleep = Callable[[float], Awaitable[None]]
Family = Literal["event-types", "slots", "bookings", "webhooks"]
_VERSIONS: Final[dict[Family, str]] = {
    "event-types": VERSION_EVENT_TYPES,
    "slots": VERSION_SLOTS,
    "bookings": VERSION_BOOKINGS,
    "webhooks": VERSION_WEBHOOKS,
}


def api_root(base_url: str) -> str:
    """`https://cal.example/api/v2/`, `.../v2` or `.../api` → the root that `/v2/...` goes after."""
    url = base_url.strip().rstrip("/")
    if not re.match(r"^https?://[^\s/]+", url):
        raise ValueError("the Cal.com API URL must be an http(s) URL")
    if url.endswith("/v2"):
        url = url[: -len("/v2")]
    return url


class CalcomTransport(JsonApiClient):
    """The calls under `CalcomClient`: one per deployment, shared between workers.

    `breaker` counts only what says the service is down (5xx, timeouts, connection errors);
    build it with `is_failure` from `gateway.integrations.http`. `timeout` bounds every call
    (connect at most 5 s). Reads are retried `retries` times with a short backoff; writes never
    blindly. Every request carries its own auth and version headers (`_build`): `http` may be
    a shared client.
    """

    unavailable_error = CalcomUnavailable
    rejected_error = CalcomRejected

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        breaker: CircuitBreaker,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.3,
        max_rate_wait: float = 10.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not api_key:
            raise ValueError("a Cal.com API key is required")
        self.root = api_root(base_url)
        self._api_key = api_key
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        super().__init__(
            f"{self.root}/v2",
            {},
            breaker,
            timeout=self._timeout,
            transport=transport,
            http=http,
            # A backstop over the whole exchange: httpx's read timeout is per chunk.
            deadline=timeout * 1.5,
        )
        self._retries = max(0, retries)
        self._backoff = backoff
        self._max_rate_wait = max_rate_wait
        self._sleep = sleep
        self._budgets: dict[str, RateBudget] = {}

    @property
    def rate_budget(self) -> RateBudget | None:
        """The most constrained rate limit Cal.com reported last (for metrics and `check`)."""
        known = [b for b in self._budgets.values() if b.remaining is not None]
        return min(known, key=lambda b: b.remaining or 0) if known else None

    async def _data(self, method: str, path: str, **options: Any) -> Any:
        """The `data` of one call's envelope (options as `_call_envelope` takes them)."""
        return (await self._call_envelope(method, path, **options)).get("data")

    async def _call_envelope(
        self,
        method: str,
        path: str,
        *,
        family: Family,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        cookies: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        slot_op: bool = False,
    ) -> dict[str, Any]:
        """One logical call: transient failures retried when `idempotent` (GETs by default),
        a 429 waited out once whatever the method (the throttler answers before the handler)."""
        if idempotent is None:
            idempotent = method == "GET"
        request = self._build(family, params, json_body, cookies)
        failures = 0
        waited_for_rate = False
        while True:
            try:
                response = await self._exchange(method, f"{self.root}/v2{path}", **request)
                self._note_rate(response)
                if response.status_code == 429:
                    wait = advised_wait(response)
                    if not waited_for_rate and wait is not None and wait <= self._max_rate_wait:
                        waited_for_rate = True
                        log.warning("calcom: 429 on %s %s; waiting %.1fs", method, path, wait)
                        await self._sleep(wait)
                        continue
                    raise RateLimited(
                        "rate limit reached",
                        status=429,
                        code=error_fields(response)[0] or "ThrottlerException",
                        sent=False,
                        retry_after=wait if wait is not None else 60.0,
                    )
                if response.status_code >= 400:
                    raise rejection(response, slot_op=slot_op)
                return _envelope(response, method)
            except CalcomUnavailable as exc:
                retryable = not isinstance(exc, RateLimited) and exc.code != "circuit_open"
                if not (idempotent and retryable and failures < self._retries):
                    raise
                failures += 1
                delay = self._backoff * (2 ** (failures - 1))
                log.warning(
                    "calcom: %s %s failed (%s); retry %d in %.2fs",
                    method,
                    path,
                    exc.code,
                    failures,
                    delay,
                )
                await self._sleep(delay)

    def _build(
        self,
        family: Family,
        params: Mapping[str, str] | None,
        json_body: Mapping[str, Any] | None,
        cookies: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        """The request's parts besides method and URL, with its own auth: `http` may be shared."""
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "cal-api-version": _VERSIONS[family],
            "Accept": "application/json",
        }
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        return {
            "params": dict(params) if params else None,
            "json": dict(json_body) if json_body is not None else None,
            "headers": headers,
            "timeout": self._timeout,
        }

    async def _exchange(self, method: str, path: str, **request: Any) -> httpx.Response:
        """Send once through the breaker (the base's); an open breaker is the calendar being
        unreachable, with nothing sent."""
        try:
            return await super()._exchange(method, path, **request)
        except BreakerOpen as exc:
            raise CalcomUnavailable(
                str(exc), code="circuit_open", sent=False, retry_after=exc.retry_in
            ) from exc

    def _unreachable(self, exc: httpx.RequestError | TimeoutError) -> ServiceUnavailable:
        # Whether the request left decides whether a write may have happened (`sent`).
        name = type(exc).__name__
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            return CalcomUnavailable(f"cannot connect: {name}", code="connect", sent=False)
        if isinstance(exc, httpx.TimeoutException | TimeoutError):
            return CalcomUnavailable(f"timed out: {name}", code="timeout")
        return CalcomUnavailable(f"connection failed: {name}", code="connection")

    def _unavailable(self, response: httpx.Response, call: str) -> ServiceUnavailable | None:
        # Only a 5xx says Cal.com is failing. A 429 comes from a guard that runs before the
        # handler (§1.3): waited out or raised as RateLimited outside the breaker.
        if response.status_code < 500:
            return None
        code, message = error_fields(response)
        return CalcomUnavailable(message, status=response.status_code, code=code or "ServerError")

    def _note_rate(self, response: httpx.Response) -> None:
        for budget in budgets(response, time.monotonic()):
            self._budgets[budget.name] = budget
            if (
                budget.remaining is not None
                and budget.limit
                and budget.remaining < budget.limit // 10
            ):
                log.warning(
                    "calcom: rate limit %s low: %d of %d left",
                    budget.name,
                    budget.remaining,
                    budget.limit,
                )


def _envelope(response: httpx.Response, method: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise CalcomUnavailable(
            "answer is not JSON", status=response.status_code, code="bad_response"
        ) from None
    # A delete answers `{status: "success"}` alone (deleteReservedSlot in apps/api/v2/src/
    # modules/slots/slots-2024-09-04/controllers/slots.controller.ts): no `data` to read.
    done = method == "DELETE" and isinstance(body, dict) and body.get("status") == "success"
    if (
        not isinstance(body, dict)
        or ("data" not in body and not done)
        or body.get("status") == "error"
    ):
        raise CalcomUnavailable(
            "answer is not a {status, data} envelope",
            status=response.status_code,
            code="bad_response",
        )
    return body
