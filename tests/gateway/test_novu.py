"""Novu's client, the outbox's sender for it and `novu sync`, against the Novu sandbox."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway import novu_workflows
from gateway.novu import NovuClient, NovuDelivery, NovuRejected, NovuUnavailable, is_failure
from gateway.outbox import PermanentFailure, RetryLater
from gateway.resilience import CircuitBreaker
from gateway.sandbox.novu import NovuSandbox, holds, render
from gateway.streams import Outgoing
from handlers.novu import NovuWebhook, sign

KEY = "novu-key"
NOW = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def novu() -> AsyncIterator[tuple[NovuSandbox, str, Clock]]:
    clock = Clock()
    sandbox = NovuSandbox(KEY, webhook_secret="s", clock=clock)
    server = TestServer(sandbox.app())
    await server.start_server()
    yield sandbox, str(server.make_url("")).rstrip("/"), clock
    await sandbox.close()
    await server.close()


def trigger(transaction: str = "fd-s-confirmed-u1-1", **payload: Any) -> Outgoing:
    body = {
        "name": "booking-reminder",
        "to": {"subscriberId": "s:tg:1"},
        "payload": {"sendAt": "2026-06-02T07:00:00Z", **payload},
        "transactionId": transaction,
    }
    return Outgoing("novu", "s:tg:1", "trigger", body, author="notice")


async def test_sync_creates_then_changes_nothing_and_mends_an_edited_workflow(
    novu: tuple[NovuSandbox, str, Clock],
) -> None:
    sandbox, url, _ = novu
    async with NovuClient(url, KEY, CircuitBreaker("novu")) as client:
        first = await novu_workflows.sync(client, "https://gw.example/webhooks/novu")
        assert {what for _, what in first} == {"created"}
        assert len(first) == 6
        second = await novu_workflows.sync(client, "https://gw.example/webhooks/novu")
        assert {what for _, what in second} == {"unchanged"}
        # Someone edited a workflow in Novu's dashboard: the repo's version comes back.
        sandbox.workflows["booking-reminder"]["steps"] = []
        third = dict(await novu_workflows.sync(client, "https://gw.example/webhooks/novu"))
        assert third["booking-reminder"] == "updated"
    steps = sandbox.workflows["booking-reminder"]["steps"]
    assert [s["type"] for s in steps] == ["delay", "http_request", "email", "sms"]
    assert steps[0]["controlValues"]["dynamicKey"] == "payload.sendAt"


async def test_a_trigger_sent_twice_runs_once_and_a_reminder_can_be_cancelled(
    novu: tuple[NovuSandbox, str, Clock],
) -> None:
    sandbox, url, clock = novu
    async with NovuClient(url, KEY, CircuitBreaker("novu")) as client:
        await novu_workflows.sync(client, "http://127.0.0.1:9/unreachable")
        delivery = NovuDelivery(client)
        await delivery.deliver(trigger())
        # A retry of the same call (the outbox after a timeout): Novu replays its answer.
        await delivery.deliver(trigger())
        assert len(sandbox.runs) == 1
        # The same key with another body is a mistake Novu refuses.
        with pytest.raises(PermanentFailure, match="422"):
            await delivery.deliver(trigger(service="changed"))
        await sandbox.settle()
        assert sandbox.pending()[0].due == datetime(2026, 6, 2, 7, 0, tzinfo=UTC)
        cancel = Outgoing("novu", "s:tg:1", "cancel", {"transactionId": "fd-s-confirmed-u1-1"})
        await delivery.deliver(cancel)
        assert sandbox.runs[0].status == "cancelled"
        await delivery.deliver(cancel)  # nothing pending any more: fine
        clock.now += timedelta(days=2)
        await sandbox.run_due()
        assert sandbox.deliveries == []


async def test_novus_refusals_and_failures_map_to_the_outbox(
    novu: tuple[NovuSandbox, str, Clock],
) -> None:
    _sandbox, url, _ = novu
    async with NovuClient(url, KEY, CircuitBreaker("novu")) as client:
        delivery = NovuDelivery(client)
        # The workflows were never synced: dead-lettered, to be replayed after `novu sync`.
        with pytest.raises(PermanentFailure, match="workflow_not_found"):
            await delivery.deliver(trigger())
        with pytest.raises(PermanentFailure, match="unsupported"):
            await delivery.deliver(Outgoing("novu", "x", "nonsense", {}))
    async with NovuClient(url, "wrong-key", CircuitBreaker("novu")) as client:
        with pytest.raises(NovuRejected) as refused:
            await client.upsert_subscriber({"subscriberId": "x"})
        assert refused.value.status == 401

    def answer(request: httpx.Request) -> httpx.Response:
        status = {"/v1/events/trigger": 429, "/v2/subscribers": 409}.get(request.url.path, 503)
        return httpx.Response(status, headers={"Retry-After": "7"}, json={"message": "x"})

    breaker = CircuitBreaker("novu")
    mocked = NovuClient("https://novu.test", KEY, breaker, transport=httpx.MockTransport(answer))
    delivery = NovuDelivery(mocked)
    with pytest.raises(RetryLater) as later:
        await delivery.deliver(trigger())
    assert later.value.seconds == 7
    assert is_failure(later.value.__cause__ or later.value)  # throttling counts against Novu
    with pytest.raises(RetryLater) as busy:
        await delivery.deliver(Outgoing("novu", "x", "subscriber", {"subscriberId": "x"}))
    # 409: the same Idempotency-Key still in progress; Novu is not failing.
    assert not is_failure(busy.value.__cause__ or busy.value)
    with pytest.raises(NovuUnavailable) as down:
        await mocked.workflow("w")
    assert is_failure(down.value)
    await mocked.aclose()


async def test_a_trigger_novu_took_but_did_not_run_is_a_dead_letter(
    novu: tuple[NovuSandbox, str, Clock],
) -> None:
    sandbox, url, _ = novu
    async with NovuClient(url, KEY, CircuitBreaker("novu")) as client:
        await novu_workflows.sync(client, "http://127.0.0.1:9/")
        sandbox.workflows["booking-reminder"]["active"] = False
        with pytest.raises(PermanentFailure, match="trigger_not_active"):
            await NovuDelivery(client).deliver(trigger())


async def test_the_sandbox_posts_the_messenger_step_signed_and_retries_it(
    novu: tuple[NovuSandbox, str, Clock],
) -> None:
    sandbox, url, clock = novu
    received: list[tuple[bytes, str]] = []
    answers = [500, 200]

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.read(), request.headers["Novu-Signature"]))
        return web.Response(status=answers.pop(0))

    app = web.Application()
    app.router.add_post("/webhooks/novu", hook)
    server = TestServer(app)
    await server.start_server()
    try:
        async with NovuClient(url, KEY, CircuitBreaker("novu")) as client:
            await novu_workflows.sync(client, str(server.make_url("/webhooks/novu")))
            body = trigger(conversation="tg:1", kind="reminder").params
            body["name"] = "booking-confirmed"
            await client.trigger(body)
        await sandbox.settle()
        assert sandbox.runs[0].status == "pending"  # the gateway failed: tried again later
        clock.now += timedelta(seconds=6)
        await sandbox.run_due()
        assert sandbox.runs[0].status == "completed"
    finally:
        await server.close()
    raw, signature = received[-1]
    assert json.loads(raw)["conversation"] == "tg:1"
    assert json.loads(raw)["subscriber"] == "s:tg:1"
    edge = NovuWebhook("s")
    assert edge.verify({"Novu-Signature": signature}, raw)
    assert not edge.verify({"Novu-Signature": signature}, raw + b" ")
    stale = sign("s", raw, edge.clock() - 600)
    assert not edge.verify({"Novu-Signature": stale}, raw)
    # Some Novu components stamp milliseconds.
    at_ms = str(int(edge.clock() * 1000))
    digest = hmac.new(b"s", at_ms.encode() + b"." + raw, hashlib.sha256).hexdigest()
    assert edge.verify({"Novu-Signature": f"t={at_ms},v1={digest}"}, raw)
    assert not edge.authenticate({"Novu-Signature": "v1=abc"})


def test_the_liquid_and_json_logic_the_workflows_use() -> None:
    context = {"payload": {"conversation": "tg:1", "n": 2}, "subscriber": {"subscriberId": "a"}}
    assert render("{{payload.conversation}}/{{ subscriber.subscriberId }}", context) == "tg:1/a"
    assert render("{{payload.missing}}", context) == ""
    assert holds({"==": [{"var": "payload.conversation"}, "tg:1"]}, context)
    assert holds({"!=": [{"var": "payload.missing"}, "x"]}, context)
    assert not holds(None, context)
