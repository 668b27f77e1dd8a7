"""The JSON API base under every vendor client: what an answer is classified as, what the
breaker counts, and the transport seam. Each vendor's own client runs through the same base."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.integrations.calcom.api import CalcomClient, CalcomUnavailable, RateLimited
from gateway.integrations.chatwoot.api import ChatwootClient, ChatwootRejected, ChatwootUnavailable
from gateway.integrations.http import (
    JsonApiClient,
    ServiceError,
    ServiceRejected,
    ServiceUnavailable,
    is_failure,
)
from gateway.integrations.novu.api import NovuBusy, NovuClient, NovuRejected, NovuUnavailable
from gateway.integrations.whatsapp.api import WhatsAppClient, WhatsAppError, WhatsAppUnavailable
from gateway.pipeline.resilience import BreakerOpen, CircuitBreaker, State

BASE = "https://api.example/v1"
Answer = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A fake service behind the transport seam: answers with `answer` and keeps each request."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


def client_for(
    answer: Answer, breaker: CircuitBreaker | None = None, **options: Any
) -> tuple[JsonApiClient, Recorder]:
    recorder = Recorder(answer)
    client = JsonApiClient(
        BASE,
        {"Authorization": "Key secret"},
        breaker or CircuitBreaker("svc", is_failure=is_failure),
        timeout=2.0,
        transport=httpx.MockTransport(recorder),
        **options,
    )
    return client, recorder


def status(code: int, **extra: Any) -> Answer:
    return lambda _request: httpx.Response(code, **extra)


def refuse(exc: Exception) -> Answer:
    def answer(_request: httpx.Request) -> httpx.Response:
        raise exc

    return answer


# --- the seam and the shared parts ----------------------------------------------------------


async def test_requests_go_through_the_transport_with_the_base_url_and_auth() -> None:
    client, recorder = client_for(status(200, json={"id": 7}))
    async with client:
        answer = await client._call("POST", "things", json={"name": "x"})
    assert answer == {"id": 7}
    [request] = recorder.requests
    assert str(request.url) == f"{BASE}/things"
    assert request.headers["Authorization"] == "Key secret"


async def test_an_empty_answer_reads_as_an_empty_object() -> None:
    client, _ = client_for(status(204))
    async with client:
        assert await client._call("DELETE", "things/1") == {}


async def test_a_lent_client_is_left_open_for_its_owner() -> None:
    shared = httpx.AsyncClient(transport=httpx.MockTransport(status(200)))
    client = JsonApiClient(BASE, {}, CircuitBreaker("svc"), timeout=1.0, http=shared)
    await client.aclose()
    assert not shared.is_closed
    await shared.aclose()


async def test_the_deadline_bounds_a_whole_exchange() -> None:
    async def slow(_request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(1.0)
        return httpx.Response(200)

    client = JsonApiClient(
        BASE,
        {},
        CircuitBreaker("svc", is_failure=is_failure),
        timeout=5.0,
        transport=httpx.MockTransport(slow),
        deadline=0.05,
    )
    async with client:
        with pytest.raises(ServiceUnavailable, match="TimeoutError") as slow_answer:
            await client._call("GET", "things")
    assert isinstance(slow_answer.value.__cause__, TimeoutError)


# --- classification ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "raised", "counted"),
    [
        (status(500), ServiceUnavailable, True),
        (status(503), ServiceUnavailable, True),
        (status(429), ServiceUnavailable, True),
        (refuse(httpx.ConnectError("refused")), ServiceUnavailable, True),
        (refuse(httpx.ReadTimeout("slow")), ServiceUnavailable, True),
        (status(400, text="bad field"), ServiceRejected, False),
        (status(401), ServiceRejected, False),
        (status(404), ServiceRejected, False),
        (status(422), ServiceRejected, False),
    ],
)
async def test_each_answer_is_classified_and_only_failures_are_counted(
    answer: Answer, raised: type[ServiceError], counted: bool
) -> None:
    client, _ = client_for(answer)
    async with client:
        with pytest.raises(raised) as caught:
            await client._call("GET", "things")
    assert type(caught.value) is raised
    assert is_failure(caught.value) is counted
    assert client.breaker._failures == (1 if counted else 0)


async def test_a_refusal_carries_the_status_and_the_vendors_message() -> None:
    client, _ = client_for(status(422, text="email is invalid"))
    async with client:
        with pytest.raises(ServiceRejected) as refused:
            await client._call("POST", "contacts")
    assert refused.value.status == 422
    assert str(refused.value) == "HTTP 422: email is invalid"


async def test_failures_open_the_breaker_and_refusals_do_not() -> None:
    breaker = CircuitBreaker("svc", fail_max=2, is_failure=is_failure)
    answers = [httpx.Response(404), httpx.Response(404), httpx.Response(404)]
    client, recorder = client_for(lambda _request: answers.pop(0), breaker)
    async with client:
        for _ in range(3):
            with pytest.raises(ServiceRejected):
                await client._call("GET", "things")
        assert breaker.state is State.CLOSED
        client, recorder = client_for(status(502), breaker)
        for _ in range(2):
            with pytest.raises(ServiceUnavailable):
                await client._call("GET", "things")
        assert breaker.state is State.OPEN
        with pytest.raises(BreakerOpen):
            await client._call("GET", "things")
    assert len(recorder.requests) == 2  # the open breaker sent nothing


def test_the_shared_predicate_counts_failures_only() -> None:
    assert is_failure(httpx.ConnectError("down"))  # a raw one, from a download beside the base
    assert is_failure(TimeoutError())
    assert not is_failure(ValueError())
    assert not is_failure(ServiceRejected("no", status=400))
    assert not is_failure(NovuBusy("in progress", 1.0))
    assert not is_failure(RateLimited("throttled", status=429))


# --- every vendor client is the base, with its own errors -------------------------------------


def test_vendor_errors_share_the_base_classes() -> None:
    """`except ServiceUnavailable` / `except ServiceRejected` catches every vendor's."""
    for unavailable in (
        ChatwootUnavailable,
        NovuUnavailable,
        WhatsAppUnavailable,
        CalcomUnavailable,
    ):
        assert issubclass(unavailable, ServiceUnavailable)
    for rejected in (ChatwootRejected, NovuRejected, WhatsAppError):
        assert issubclass(rejected, ServiceRejected)


@pytest.mark.parametrize(
    ("make", "unavailable", "rejected"),
    [
        (
            lambda t: ChatwootClient(
                "https://cw.example", 1, "tok", CircuitBreaker("cw"), transport=t
            ),
            ChatwootUnavailable,
            ChatwootRejected,
        ),
        (
            lambda t: NovuClient(
                "https://novu.example", "key", CircuitBreaker("novu"), transport=t
            ),
            NovuUnavailable,
            NovuRejected,
        ),
    ],
)
async def test_vendor_clients_raise_their_own_classes(
    make: Callable[[httpx.AsyncBaseTransport], JsonApiClient],
    unavailable: type[ServiceUnavailable],
    rejected: type[ServiceRejected],
) -> None:
    codes = [503, 400]
    client = make(httpx.MockTransport(lambda _request: httpx.Response(codes.pop(0))))
    async with client:
        with pytest.raises(unavailable):
            await client._call("GET", "x")
        with pytest.raises(rejected):
            await client._call("GET", "x")


async def test_whatsapp_and_calcom_take_the_transport_seam_too() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        return httpx.Response(
            200, json={"status": "success", "data": [], "messages": [{"id": "w"}]}
        )

    transport = httpx.MockTransport(answer)
    async with WhatsAppClient(
        "https://graph.example/v23.0", "1", "tok", CircuitBreaker("wa"), transport=transport
    ) as whatsapp:
        assert await whatsapp.send("79161234567", {"type": "text"}) == "w"
    async with CalcomClient(
        "https://cal.example", "key", breaker=CircuitBreaker("cal"), transport=transport
    ) as calcom:
        assert await calcom.event_types() == []
    assert seen == ["graph.example", "cal.example"]


async def test_a_whatsapp_media_download_goes_through_the_base() -> None:
    """Meta, "Download media": GET /{media-id} gives a short-lived `url`, fetched with the same
    token. A 5xx on either is WhatsApp failing (counted); a 404 is the file being gone."""
    files = {"/v23.0/m1": {"url": "https://lookaside.example/f/1", "mime_type": "image/jpeg"}}

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer tok"
        if request.url.path in files:
            return httpx.Response(200, json=files[request.url.path])
        if request.url.path == "/f/1":
            return httpx.Response(200, content=b"jpeg")
        if request.url.path == "/v23.0/down":
            return httpx.Response(502)
        return httpx.Response(404, text="not json")

    breaker = CircuitBreaker("wa", is_failure=is_failure)
    async with WhatsAppClient(
        "https://graph.example/v23.0", "1", "tok", breaker, transport=httpx.MockTransport(answer)
    ) as whatsapp:
        assert await whatsapp.download("m1") == (b"jpeg", "image/jpeg")
        with pytest.raises(WhatsAppError, match="media not available"):
            await whatsapp.download("gone")
        assert breaker._failures == 0
        with pytest.raises(WhatsAppUnavailable):
            await whatsapp.download("down")
        assert breaker._failures == 1
        files["/v23.0/m2"] = {"url": "https://lookaside.example/f/2"}
        with pytest.raises(WhatsAppError, match="media download failed"):
            await whatsapp.download("m2")
        # A refusal whose body is not Graph's JSON still reads as a WhatsApp error.
        with pytest.raises(WhatsAppError) as refused:
            await whatsapp.upload("a.txt", "text/plain", b"x")
    assert (refused.value.status, refused.value.code) == (404, None)
