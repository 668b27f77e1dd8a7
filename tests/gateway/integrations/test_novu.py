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

from gateway.integrations.novu import workflows as novu_workflows
from gateway.integrations.novu.api import (
    NovuClient,
    NovuDelivery,
    NovuRejected,
    NovuUnavailable,
    is_failure,
)
from gateway.integrations.novu.staff import STAFF_TITLES
from gateway.pipeline.outbox import PermanentFailure, RetryLater
from gateway.pipeline.resilience import CircuitBreaker
from gateway.pipeline.streams import Outgoing
from gateway.sandbox.novu import NovuSandbox, holds, render, runs
from handlers.novu import NovuWebhook
from tests.support.clock import Clock

KEY = "novu-key"
NOW = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)


@pytest.fixture
async def novu() -> AsyncIterator[tuple[NovuSandbox, str, Clock]]:
    clock = Clock(NOW)
    sandbox = NovuSandbox(KEY, webhook_secret="s", clock=clock)
    server = TestServer(sandbox.app())
    await server.start_server()
    yield sandbox, str(server.make_url("")).rstrip("/"), clock
    await sandbox.close()
    await server.close()


def sign(secret: str, body: bytes, at: float) -> str:
    """A `Novu-Signature` stamped in seconds, as some Novu components stamp it."""
    stamp = str(int(at))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


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
        # The clients' six, the owner's report, and one per kind of staff notice (staff.py).
        assert len(first) == 7 + len(STAFF_TITLES)
        assert [w for w, _ in first][7:] == list(STAFF_TITLES)
        second = await novu_workflows.sync(client, "https://gw.example/webhooks/novu")
        assert {what for _, what in second} == {"unchanged"}
        # Someone edited a workflow in Novu's dashboard (its steps, and a subscriber
        # preference): the repo's steps come back through a valid update, and the workflow's
        # origin and preferences stay as they were.
        edited = sandbox.workflows["booking-reminder"]
        edited["steps"] = []
        edited["origin"] = "external"
        edited["preferences"]["user"] = {"all": {"enabled": True, "readOnly": True}}
        calls = len(sandbox.calls)
        third = dict(await novu_workflows.sync(client, "https://gw.example/webhooks/novu"))
        assert third["booking-reminder"] == "updated"
        assert ("PUT", "/v2/workflows/booking-reminder") in sandbox.calls[calls:]
        fourth = await novu_workflows.sync(client, "https://gw.example/webhooks/novu")
        assert {what for _, what in fourth} == {"unchanged"}
    restored = sandbox.workflows["booking-reminder"]
    steps = restored["steps"]
    assert [s["type"] for s in steps] == ["delay", "http_request", "email", "sms"]
    assert steps[0]["controlValues"]["dynamicKey"] == "payload.sendAt"
    assert restored["origin"] == "external"
    assert restored["preferences"]["user"] == {"all": {"enabled": True, "readOnly": True}}
    # Conditions say when a step runs: the messenger step for a client in a messenger, email
    # and SMS for the others; the messenger step does not stop the workflow when it fails.
    messenger, email, sms = (s["controlValues"] for s in steps[1:])
    in_messenger = {"!=": [{"var": "payload.conversation"}, ""]}
    assert messenger["skip"] == in_messenger
    assert messenger["continueOnFailure"] is True
    assert email["skip"] == sms["skip"] == {"==": [{"var": "payload.conversation"}, ""]}
    # Ids and keys only in the post: no names or notes through Liquid into JSON.
    posted = {item["key"] for item in messenger["body"]}
    assert not posted & {"service", "master", "reason", "text", "subject"}


def test_sync_reads_control_values_either_way_novu_answers() -> None:
    """StepResponseDto (apps/api/src/app/workflows-v2/dtos/step.response.dto.ts) carries the
    values in `controls.values`, and `controlValues` is optional: both reads compare alike."""
    [wanted, *_] = novu_workflows.definitions("https://gw.example/webhooks/novu")
    flat = {"name": wanted["name"], "active": True, "steps": wanted["steps"]}
    nested = flat | {
        "steps": [
            {"stepId": s["stepId"], "type": s["type"], "controls": {"values": s["controlValues"]}}
            for s in wanted["steps"]
        ]
    }
    assert not novu_workflows.differs(flat, wanted)
    assert not novu_workflows.differs(nested, wanted)
    bare = flat | {"steps": [{"stepId": s["stepId"], "type": s["type"]} for s in wanted["steps"]]}
    assert novu_workflows.differs(bare, wanted)
    # An update of a workflow read without origin or preferences is still a whole DTO.
    update = novu_workflows.update_of({"name": "x"}, wanted)
    assert update["origin"] == novu_workflows.ORIGIN
    assert update["preferences"] == {}
    assert "workflowId" not in update
    kept = novu_workflows.update_of({"preferences": {"user": None, "workflow": {"a": 1}}}, wanted)
    assert kept["preferences"] == {"user": None, "workflow": {"a": 1}}


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

    answers = {"/v1/events/trigger": 429}

    def answer(request: httpx.Request) -> httpx.Response:
        status = answers.get(request.url.path, 503)
        headers = {"Retry-After": "7"}
        if status == 409:
            # The idempotency interceptor echoes the key of a request still in progress.
            headers["Idempotency-Key"] = request.headers["Idempotency-Key"]
        return httpx.Response(status, headers=headers, json={"message": "x"})

    breaker = CircuitBreaker("novu")
    mocked = NovuClient("https://novu.test", KEY, breaker, transport=httpx.MockTransport(answer))
    delivery = NovuDelivery(mocked)
    with pytest.raises(RetryLater) as later:
        await delivery.deliver(trigger())
    assert later.value.seconds == 7
    assert is_failure(later.value.__cause__ or later.value)  # throttling counts against Novu
    answers["/v1/events/trigger"] = 409
    with pytest.raises(RetryLater) as busy:
        await delivery.deliver(trigger())
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


async def test_an_existing_subscriber_is_updated_where_novu_refuses_to_create_it_again(
    novu: tuple[NovuSandbox, str, Clock],
) -> None:
    sandbox, url, _ = novu
    sandbox.subscriber_conflict = True
    async with NovuClient(url, KEY, CircuitBreaker("novu")) as client:
        await novu_workflows.sync(client, "http://127.0.0.1:9/")
        delivery = NovuDelivery(client)
        first = {"subscriberId": "s:tg:1", "locale": "ru", "phone": "+79160000001"}
        await delivery.deliver(Outgoing("novu", "s:tg:1", "subscriber", first))
        # The client is known already: Novu answers 409, the gateway updates instead.
        again = {"subscriberId": "s:tg:1", "locale": "en", "email": "a@example.com"}
        await delivery.deliver(Outgoing("novu", "s:tg:1", "subscriber", again))
        # Nor is the client's next trigger held up behind it.
        await delivery.deliver(trigger())
    assert ("PATCH", "/v2/subscribers/s:tg:1") in sandbox.calls
    stored = sandbox.subscribers["s:tg:1"]
    assert (stored["locale"], stored["email"], stored["phone"]) == (
        "en",
        "a@example.com",
        "+79160000001",
    )
    assert len(sandbox.runs) == 1


async def test_a_patch_of_a_subscriber_novu_does_not_know_is_refused(
    novu: tuple[NovuSandbox, str, Clock],
) -> None:
    _sandbox, url, _ = novu
    async with NovuClient(url, KEY, CircuitBreaker("novu")) as client:
        with pytest.raises(NovuRejected) as refused:
            await client._call("PATCH", "/v2/subscribers/nobody", json={"locale": "en"})
    assert refused.value.status == 404


async def test_the_sandbox_posts_the_messenger_step_once_signed_as_novu_signs(
    novu: tuple[NovuSandbox, str, Clock],
) -> None:
    sandbox, url, _ = novu
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
            body = trigger(conversation="tg:1", kind="confirmed").params
            body["name"] = "booking-confirmed"
            await client.trigger(body)
            await sandbox.settle()
            # The gateway failed: Novu does not try again, and the workflow goes on.
            assert len(received) == 1
            assert sandbox.runs[0].status == "completed"
            body["transactionId"] = "fd-s-confirmed-u1-2"
            await client.trigger(body)
        await sandbox.settle()
    finally:
        await server.close()
    assert len(received) == 2
    raw, signature = received[-1]
    assert json.loads(raw)["conversation"] == "tg:1"
    assert json.loads(raw)["subscriber"] == "s:tg:1"
    # The sandbox's own signing, checked by the gateway's own verifier.
    edge = NovuWebhook("s")
    assert edge.verify({"Novu-Signature": signature}, raw)
    assert not edge.verify({"Novu-Signature": signature}, raw + b" ")
    stale = sign("s", raw, edge.clock() - 600)
    assert not edge.verify({"Novu-Signature": stale}, raw)
    # Some Novu components stamp seconds.
    assert edge.verify({"Novu-Signature": sign("s", raw, edge.clock())}, raw)
    assert not edge.authenticate({"Novu-Signature": "v1=abc"})


def test_the_liquid_and_json_logic_the_workflows_use() -> None:
    context = {"payload": {"conversation": "tg:1", "n": 2}, "subscriber": {"subscriberId": "a"}}
    assert render("{{payload.conversation}}/{{ subscriber.subscriberId }}", context) == "tg:1/a"
    assert render("{{payload.missing}}", context) == ""
    assert holds({"==": [{"var": "payload.conversation"}, "tg:1"]}, context)
    assert holds({"!=": [{"var": "payload.missing"}, "x"]}, context)
    assert not holds(None, context)
    assert runs(None, context)
    assert not runs({"==": [{"var": "payload.conversation"}, ""]}, context)


def test_a_notice_for_a_conversation_that_is_not_ours_is_acknowledged_not_queued() -> None:
    body = {
        "transaction": "fd-x",
        "kind": "confirmed",
        "bookingUid": "bk",
        "start": "2026-06-03T07:00:00Z",
    }
    edge = NovuWebhook("s")
    for conversation in (["tg:1"], "tg:anna", None):
        raw = json.dumps(body | {"conversation": conversation}).encode()
        assert edge.parse({}, raw) == []
    answered = body | {"conversation": "tg:1", "messenger": "no"}
    assert edge.parse({}, json.dumps(answered).encode()) == []
    assert len(edge.parse({}, json.dumps(body | {"conversation": "tg:1"}).encode())) == 1
