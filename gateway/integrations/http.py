"""The base under every vendor's JSON API client: auth, timeout, breaker, errors, test seam.

What every client shares lives here once: one httpx client carrying the vendor's auth headers
and timeout (its `transport` is the one test seam: tests hand in `httpx.MockTransport` or run
against a sandbox), every request through the vendor's circuit breaker, and one reading of what
came back:

| what happened | raised | counted by the breaker |
|---|---|---|
| 5xx, a timeout, a transport error | the vendor's `ServiceUnavailable` | yes |
| 429 | the vendor's `ServiceUnavailable` unless the vendor says otherwise | yes |
| any other 4xx | the vendor's `ServiceRejected`, with the vendor's message | no |

Each vendor client keeps its own public methods and overrides a hook for its quirks:
`_unavailable` (which answers say "down"), `_rejected` (how a refusal reads) and `_decode` (the
answer's envelope).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import httpx

from gateway.pipeline.resilience import CircuitBreaker


class ServiceError(Exception):
    """A vendor's API failed a call. `status` is the HTTP status when the service answered."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ServiceUnavailable(ServiceError):
    """The service is down, slow, unreachable or throttling us: tried again later.
    `retry_after` is the wait in seconds the service advised, when it gave one."""

    # Whether this says the service is failing, so that its breaker counts it. A subclass for a
    # wait that is no fault of the service (Novu's idempotency key in progress) says no.
    counted: ClassVar[bool] = True

    def __init__(
        self, message: str, retry_after: float | None = None, *, status: int | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ServiceRejected(ServiceError):
    """The service is up and refused this request (a 4xx): our mistake or the operator's, which
    the same request sent again cannot mend."""


def is_failure(exc: BaseException) -> bool:
    """What counts against a vendor's breaker: the service failing, not our bad requests.
    Raw transport errors count too: a download outside the base (Chatwoot's staff files) runs
    behind the same breaker."""
    if isinstance(exc, ServiceUnavailable):
        return exc.counted
    return isinstance(exc, httpx.TransportError | TimeoutError)


class JsonApiClient:
    """One vendor's JSON-over-HTTP API behind its circuit breaker.

    `base_url` and `headers` (the vendor's auth) go on the httpx client; `http` lends a client
    to share instead (its owner closes it; it carries none of our URL or headers, so a vendor
    client that takes one sends them with each request).
    """

    # The vendor's own classes, so that `except <Vendor>Unavailable` keeps meaning that vendor.
    unavailable_error: ClassVar[type[ServiceUnavailable]] = ServiceUnavailable
    rejected_error: ClassVar[type[ServiceRejected]] = ServiceRejected

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        breaker: CircuitBreaker,
        *,
        timeout: float | httpx.Timeout,
        transport: httpx.AsyncBaseTransport | None = None,
        http: httpx.AsyncClient | None = None,
        deadline: float | None = None,
    ) -> None:
        self.breaker = breaker
        # A bound over a whole exchange, where httpx's timeouts bound each step (a read's is per
        # chunk, so a slow trickle of an answer can outlast it).
        self._deadline = deadline
        self._owns_http = http is None
        self._http = (
            http
            if http is not None
            else httpx.AsyncClient(
                base_url=base_url, headers=dict(headers), timeout=timeout, transport=transport
            )
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, **request: Any) -> Any:
        """One call: the decoded answer, or the vendor's Unavailable or Rejected."""
        response = await self._exchange(method, path, **request)
        if not response.is_success:
            raise self._rejected(response)
        return self._decode(response)

    async def _exchange(self, method: str, path: str, **request: Any) -> httpx.Response:
        """Send once through the breaker. Inside it only "the service is failing" is raised, so
        a refusal (4xx) never opens it; any other answer is returned as it came."""

        async def attempt() -> httpx.Response:
            try:
                async with asyncio.timeout(self._deadline):
                    response = await self._http.request(method, path, **request)
            except (httpx.RequestError, TimeoutError) as exc:
                raise self._unreachable(exc) from exc
            failing = self._unavailable(response, f"{method} {path}")
            if failing is not None:
                raise failing
            return response

        return await self.breaker.call(attempt)

    # --- hooks for the vendor's quirks ---------------------------------------------------------

    def _unreachable(self, exc: httpx.RequestError | TimeoutError) -> ServiceUnavailable:
        """The error for a request that got no answer (it may or may not have been acted on)."""
        return self.unavailable_error(f"no answer: {type(exc).__name__}")

    def _unavailable(self, response: httpx.Response, call: str) -> ServiceUnavailable | None:
        """The error to raise when this answer says the service is failing, else None."""
        if response.status_code >= 500 or response.status_code == 429:
            return self.unavailable_error(f"HTTP {response.status_code} on {call}")
        return None

    def _rejected(self, response: httpx.Response) -> ServiceError:
        """The error for a refusal (an unsuccessful answer that is not the service failing)."""
        status = response.status_code
        return self.rejected_error(f"HTTP {status}: {response.text[:300]}", status=status)

    def _decode(self, response: httpx.Response) -> Any:
        """A successful answer's body."""
        return response.json() if response.content else {}
