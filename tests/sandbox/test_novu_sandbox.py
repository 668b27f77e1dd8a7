"""The Novu stand-in does what Novu does where Frontdesk relies on it; each test quotes the rule."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from gateway.integrations.novu.staff import HANDOFF, staff_definitions
from gateway.sandbox.novu import NovuSandbox, compile_controls, novu_signature

KEY = "novu-key"
NOW = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
JSON = dict[str, Any]
IN_MESSENGER = {"!=": [{"var": "payload.conversation"}, ""]}


class Env:
    def __init__(self, novu: NovuSandbox, url: str, http: ClientSession) -> None:
        self.novu = novu
        self.url = url
        self.http = http
        self.received: list[tuple[bytes, str]] = []
        self.answers: list[int] = []

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"ApiKey {KEY}"}
        async with self.http.request(
            method, f"{self.url}{path}", json=body, headers=headers
        ) as answer:
            # A 204 (a topic's removal) has no body.
            return answer.status, await answer.json(content_type=None)

    async def workflow(self, *steps: JSON, workflow_id: str = "w") -> None:
        body = {"name": "W", "workflowId": workflow_id, "steps": list(steps)}
        status, answer = await self.call("POST", "/v2/workflows", body)
        assert status == 201, answer

    async def trigger(self, payload: JSON, workflow_id: str = "w", transaction: str = "t1") -> None:
        body = {
            "name": workflow_id,
            "to": {"subscriberId": "s1", "email": "a@example.com"},
            "payload": payload,
            "transactionId": transaction,
        }
        status, answer = await self.call("POST", "/v1/events/trigger", body)
        assert status == 201, answer
        await self.novu.settle()


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    novu = NovuSandbox(KEY, webhook_secret="secret", clock=lambda: NOW)
    hook_app = web.Application()
    holder: list[Env] = []

    async def hook(request: web.Request) -> web.Response:
        holder[0].received.append((await request.read(), request.headers["Novu-Signature"]))
        answers = holder[0].answers
        return web.json_response({}, status=answers.pop(0) if answers else 200)

    hook_app.router.add_post("/hook", hook)
    hook_server = TestServer(hook_app)
    server = TestServer(novu.app())
    await hook_server.start_server()
    await server.start_server()
    async with ClientSession() as http:
        env = Env(novu, str(server.make_url("")).rstrip("/"), http)
        env.hook_url = str(hook_server.make_url("/hook"))  # type: ignore[attr-defined]
        holder.append(env)
        yield env
    await novu.close()
    await server.close()
    await hook_server.close()


def http_step(url: str, **controls: Any) -> JSON:
    values = {
        "method": "POST",
        "url": url,
        "body": [
            {"key": "conversation", "value": "{{payload.conversation}}"},
            {"key": "name", "value": "{{payload.name}}"},
        ],
        **controls,
    }
    return {"name": "Post", "stepId": "post", "type": "http_request", "controlValues": values}


def email_step(**controls: Any) -> JSON:
    values = {"subject": "S", "body": "{{payload.name}}", **controls}
    return {"name": "Email", "stepId": "email", "type": "email", "controlValues": values}


async def test_a_step_condition_says_when_the_step_runs(env: Env) -> None:
    """Novu docs, "Step conditions": "If the condition evaluates to true, the step runs";
    novuhq/novu execute-http-request-step.usecase.ts (57973eb) `evaluateSkipCondition` returns
    `!result`, construct-framework-workflow.usecase.ts (4fae506): "The Step Conditions in the
    Dashboard control the step execution, that's why we need to invert the result"."""
    url = env.hook_url  # type: ignore[attr-defined]
    not_in_messenger = {"==": [{"var": "payload.conversation"}, ""]}
    await env.workflow(http_step(url, skip=IN_MESSENGER), email_step(skip=not_in_messenger))
    await env.trigger({"conversation": "tg:1", "name": "Anna"})
    assert len(env.received) == 1
    assert env.novu.sent == []
    await env.trigger({"conversation": "", "name": "Vera"}, transaction="t2")
    assert len(env.received) == 1
    assert [m["text"] for m in env.novu.sent] == ["Vera"]
    assert "post: skipped (its condition is false)" in env.novu.runs[1].log


async def test_a_failed_http_step_is_not_retried_and_halts_unless_it_continues(env: Env) -> None:
    """execute-http-request-step.usecase.ts (57973eb): a failed request returns
    `status: FAILED, shouldHalt: !controlValues.continueOnFailure` (no retry); the worker's
    shouldHaltOnStepFailure: "Action steps always stop on failure across all versions"."""
    url = env.hook_url  # type: ignore[attr-defined]
    await env.workflow(http_step(url), email_step(), workflow_id="halts")
    await env.workflow(http_step(url, continueOnFailure=True), email_step(), workflow_id="goes")
    env.answers = [503, 503]
    await env.trigger({"conversation": "tg:1", "name": "A"}, workflow_id="halts")
    halted = env.novu.runs[-1]
    assert halted.status == "failed"
    assert env.novu.sent == []
    await env.trigger({"conversation": "tg:1", "name": "B"}, "goes", transaction="t2")
    assert env.novu.runs[-1].status == "completed"
    assert [m["text"] for m in env.novu.sent] == ["B"]
    env.novu.clock = lambda: NOW + timedelta(hours=1)
    await env.novu.run_due()
    assert len(env.received) == 2  # once each, never again
    # A connection refused (a deploy restart) fails it the same way.
    env.novu.outage = 1
    await env.trigger({"conversation": "tg:1", "name": "C"}, "halts", transaction="t3")
    assert env.novu.runs[-1].status == "failed"
    assert env.novu.deliveries[-1]["status"] == 0
    assert len(env.received) == 2


async def test_the_http_step_is_signed_as_buildnovusignatureheader_signs(env: Env) -> None:
    """libs/application-generic/src/utils/hmac.ts, buildNovuSignatureHeader: `t=${Date.now()}`
    (milliseconds), `v1=` hex HMAC-SHA256 with the environment's secret key of
    `${timestamp}.${JSON.stringify(payload)}`, and the body sent is that payload."""
    await env.workflow(http_step(env.hook_url))  # type: ignore[attr-defined]
    await env.trigger({"conversation": "tg:1", "name": "Анна"})
    [(raw, header)] = env.received
    stamp, digest = (part.split("=", 1)[1] for part in header.split(","))
    assert len(stamp) == 13  # milliseconds
    expected = hmac.new(b"secret", stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    assert digest == expected
    assert raw == '{"conversation":"tg:1","name":"Анна"}'.encode()
    assert novu_signature("secret", json.loads(raw), int(stamp)) == header


def test_the_http_steps_controls_are_rendered_as_json_text() -> None:
    """execute-http-request-step.usecase.ts (57973eb), compileControlValues: Liquid renders
    `JSON.stringify(values)` and the result is `JSON.parse`d; if that throws, the values go
    unrendered. A quote in a payload value therefore leaves every template as it was."""
    controls = {"body": [{"key": "name", "value": "{{payload.name}}"}]}
    fine = compile_controls(controls, {"payload": {"name": "Anna"}})
    assert fine["body"][0]["value"] == "Anna"
    broken = compile_controls(controls, {"payload": {"name": 'The "Deluxe" cut'}})
    assert broken["body"][0]["value"] == "{{payload.name}}"


async def test_an_update_must_be_a_whole_update_workflow_dto(env: Env) -> None:
    """apps/api/src/app/workflows-v2/dtos/update-workflow.dto.ts (151a942): `origin` is
    `@IsEnum(ResourceOriginEnum)` with no `@IsOptional`, `preferences` a nested
    PreferencesRequestDto, `steps` `@IsArray`; a validation failure is a 422 with `errors` by
    field (docs/api-reference/errors.mdx)."""
    await env.workflow(email_step())
    status, answer = await env.call("PUT", "/v2/workflows/w", {"name": "W", "steps": []})
    assert status == 422
    assert set(answer["errors"]) == {"origin", "preferences"}
    assert answer["errors"]["origin"]["value"] is None
    assert answer["statusCode"] == 422
    assert answer["path"] == "/v2/workflows/w"
    status, answer = await env.call(
        "PUT",
        "/v2/workflows/w",
        {"name": "W", "steps": {}, "origin": "mine", "preferences": {"user": 3}},
    )
    assert status == 422
    assert set(answer["errors"]) == {"origin", "steps", "preferences.user"}
    whole = {"name": "W2", "steps": [], "origin": "novu-cloud", "preferences": {"user": None}}
    status, answer = await env.call("PUT", "/v2/workflows/w", whole)
    assert status == 200
    assert answer["data"]["name"] == "W2"
    assert (await env.call("PUT", "/v2/workflows/nope", whole))[0] == 404


async def test_a_workflow_reads_back_with_controls_values_origin_and_preferences(
    env: Env,
) -> None:
    """StepResponseDto (step.response.dto.ts): `controls` (ControlsMetadataDto, with `values`)
    is required and `controlValues` optional; WorkflowResponseDto carries `origin` and
    `preferences` as {user, default} (preferences.response.dto.ts)."""
    await env.workflow(email_step())
    status, answer = await env.call("GET", "/v2/workflows/w")
    assert status == 200
    [step] = answer["data"]["steps"]
    assert "controlValues" not in step
    assert step["controls"]["values"]["subject"] == "S"
    assert answer["data"]["origin"] == "novu-cloud"
    assert set(answer["data"]["preferences"]) == {"user", "default"}


async def test_some_versions_refuse_to_create_a_subscriber_that_exists(env: Env) -> None:
    """apps/api/src/app/subscribers-v2/usecases/create-subscriber/create-subscriber.usecase.ts
    (031c5f3): `throw new ConflictException(`Subscriber: ${subscriberId} already exists`)`;
    `PATCH /v2/subscribers/{subscriberId}` updates one."""
    body = {"subscriberId": "s1", "locale": "ru"}
    assert (await env.call("POST", "/v2/subscribers", body))[0] == 201
    assert (await env.call("POST", "/v2/subscribers", body))[0] == 201  # create or update
    env.novu.subscriber_conflict = True
    status, answer = await env.call("POST", "/v2/subscribers", body)
    assert status == 409
    assert answer["message"] == "Subscriber: s1 already exists"
    status, answer = await env.call("PATCH", "/v2/subscribers/s1", {"locale": "en"})
    assert status == 200
    assert answer["data"]["locale"] == "en"
    assert (await env.call("PATCH", "/v2/subscribers/s2", {"locale": "en"}))[0] == 404


async def test_a_delay_longer_than_the_plan_allows_fails_the_run(env: Env) -> None:
    """apps/worker/src/app/workflow/usecases/add-job/add-job.usecase.ts (4fae506): when the
    tier restrictions refuse the defer duration, the execution detail is
    DEFER_DURATION_LIMIT_EXCEEDED and the job is not queued (the workflow goes no further)."""
    env.novu.max_delay = timedelta(hours=30)
    wait = {
        "name": "Wait",
        "stepId": "wait",
        "type": "delay",
        "controlValues": {"type": "dynamic", "dynamicKey": "payload.sendAt"},
    }
    await env.workflow(wait, email_step())
    await env.trigger({"sendAt": "2026-06-02T07:00:00Z", "name": "ok"})
    assert env.novu.runs[-1].status == "pending"
    await env.trigger({"sendAt": "2026-06-03T07:00:00Z", "name": "late"}, transaction="t2")
    assert env.novu.runs[-1].status == "failed"
    assert env.novu.runs[-1].log == ["wait: DEFER_DURATION_LIMIT_EXCEEDED"]


async def test_the_demo_pages_clock_moves_on_and_resets_to_the_real_time(env: Env) -> None:
    """The page's fast-forward and its reset (no Novu API: the stand-in's own clock). After a
    reset a pending delay waits for its own time again; what already ran stays done."""
    wait = {
        "name": "Wait",
        "stepId": "wait",
        "type": "delay",
        "controlValues": {"type": "dynamic", "dynamicKey": "payload.sendAt"},
    }
    await env.workflow(wait, email_step())
    await env.trigger({"sendAt": "2026-06-01T12:00:00Z", "name": "soon"}, transaction="t1")
    await env.trigger({"sendAt": "2026-06-02T12:00:00Z", "name": "later"}, transaction="t2")

    async def page(path: str, body: Any = None) -> tuple[int, JSON]:
        method = "GET" if body is None else "POST"
        async with env.http.request(method, f"{env.url}/_sandbox/{path}", json=body) as answer:
            return answer.status, await answer.json()

    status, moved = await page("advance", {"hours": 6})
    assert (status, moved["now"]) == (200, "2026-06-01T13:00:00Z")
    _, state = await page("state")
    assert state["ahead_hours"] == 6
    assert [run["status"] for run in state["runs"]] == ["pending", "completed"]

    status, reset = await page("reset-clock", {})
    assert (status, reset["now"]) == (200, "2026-06-01T07:00:00Z")
    await env.novu.run_due()
    _, state = await page("state")
    assert state["ahead_hours"] == 0
    assert [run["status"] for run in state["runs"]] == ["pending", "completed"]
    assert [sent["text"] for sent in env.novu.sent] == ["soon"]

    assert (await page("advance", {"hours": 0}))[0] == 400
    await page("advance", {"hours": 30})
    assert [sent["text"] for sent in env.novu.sent] == ["soon", "later"]


async def test_a_topic_fans_a_trigger_out_to_each_subscriber_once_into_their_in_app_feed(
    env: Env,
) -> None:
    """Docs platform/concepts/topics: "A separate workflow event is created for each
    subscriber"; the in-app feed answers as NotificationFeedItemDto, newest first."""
    in_app = {"type": "in_app", "stepId": "in-app", "controlValues": {"body": "Hi {{payload.n}}"}}
    push = {"type": "push", "stepId": "push", "controlValues": {"body": "x"}}
    await env.workflow(in_app, push)
    for who in ("a", "b"):
        assert (await env.call("POST", "/v2/subscribers", {"subscriberId": who}))[0] == 201
    assert (await env.call("POST", "/v1/topics", {"key": "s:staff", "name": "S"}))[0] == 201
    assert (await env.call("POST", "/v1/topics", {"key": "s:staff", "name": "S"}))[0] == 409
    status, added = await env.call(
        "POST", "/v1/topics/s:staff/subscribers", {"subscribers": ["a", "b", "a", "ghost"]}
    )
    assert status == 200
    assert added["data"] == {"succeeded": ["a", "b"], "failed": {"notFound": ["ghost"]}}
    assert env.novu.topics["s:staff"] == ["a", "b"]
    topic = {"type": "Topic", "topicKey": "s:staff"}
    for n in (1, 2):
        body = {"name": "w", "to": [topic, "a"], "payload": {"n": n}, "transactionId": f"t{n}"}
        assert (await env.call("POST", "/v1/events/trigger", body))[0] == 201
    await env.novu.settle()
    assert sorted(r.subscriber for r in env.novu.runs) == ["a", "a", "b", "b"]
    assert all("push: no device token, skipped" in r.log for r in env.novu.runs)
    status, feed = await env.call("GET", "/v1/subscribers/a/notifications/feed?limit=1")
    assert status == 200
    assert [n["content"] for n in feed["data"]] == ["Hi 2"]
    # Novu caps totalCount at the limit (get-notifications-feed.usecase.ts, 74a2e9a).
    assert (feed["totalCount"], feed["hasMore"], feed["pageSize"]) == (1, True, 1)
    status, feed = await env.call("GET", "/v1/subscribers/a/notifications/feed?page=1&limit=1")
    assert ([n["content"] for n in feed["data"]], feed["hasMore"]) == (["Hi 1"], False)
    status, unknown = await env.call("GET", "/v1/subscribers/ghost/notifications/feed")
    assert status == 400
    assert unknown["message"].startswith("Subscriber not found for this environment")
    # Bad input is a 4xx.
    for path in ("?limit=0", "?limit=101", "?page=x"):
        status, _ = await env.call("GET", f"/v1/subscribers/a/notifications/feed{path}")
        assert status == 400
    assert (await env.call("POST", "/v1/topics", {"key": ""}))[0] == 400
    status, _ = await env.call("POST", "/v1/topics/nope/subscribers", {"subscribers": ["a"]})
    assert status == 404
    status, _ = await env.call("POST", "/v1/topics/s:staff/subscribers", {"subscribers": "a"})
    assert status == 400
    # A topic with no one in it: nobody to run for.
    await env.call("POST", "/v1/topics", {"key": "empty", "name": "E"})
    body = {"name": "w", "to": [{"type": "Topic", "topicKey": "empty"}], "transactionId": "t9"}
    status, answer = await env.call("POST", "/v1/events/trigger", body)
    assert answer["data"]["status"] == "subscriber_id_missing"


async def test_feed_messages_are_marked_read_only_for_their_own_subscriber(env: Env) -> None:
    """mark-as and mark-all (subscribers.controller.ts, mark-message-as-by-mark.usecase.ts,
    mark-all-messages-as.usecase.ts, novuhq/novu 74a2e9a): 201; the update is filtered by the
    path's subscriber, so another's message id changes nothing."""
    in_app = {"type": "in_app", "stepId": "in-app", "controlValues": {"body": "Hi {{payload.n}}"}}
    await env.workflow(in_app)
    for who in ("a", "b"):
        assert (await env.call("POST", "/v2/subscribers", {"subscriberId": who}))[0] == 201
    for n in (1, 2):
        body = {"name": "w", "to": ["a", "b"], "payload": {"n": n}, "transactionId": f"t{n}"}
        assert (await env.call("POST", "/v1/events/trigger", body))[0] == 201
    await env.novu.settle()
    a_first, a_second = env.novu.feed["a"]
    assert len(a_first["_id"]) == 24  # an ObjectId
    [b_first, _b_second] = env.novu.feed["b"]
    mark = {"messageId": [a_first["_id"], b_first["_id"]], "markAs": "read"}
    status, marked = await env.call("POST", "/v1/subscribers/a/messages/mark-as", mark)
    assert status == 201
    assert [m["_id"] for m in marked["data"]] == [a_first["_id"]]
    assert (a_first["read"], a_first["seen"], a_second["read"]) == (True, True, False)
    assert b_first["read"] is False
    for bad in ({"messageId": [], "markAs": "read"}, {"messageId": "x", "markAs": "gone"}):
        assert (await env.call("POST", "/v1/subscribers/a/messages/mark-as", bad))[0] == 400
    path = "/v1/subscribers/b/messages/mark-all"
    status, changed = await env.call("POST", path, {"markAs": "read"})
    assert (status, changed["data"]) == (201, 2)
    assert (await env.call("POST", path, {"markAs": "read"}))[1]["data"] == 0
    assert (await env.call("POST", "/v1/subscribers/ghost/messages/mark-all", {"markAs": "read"}))[
        0
    ] == 404


async def test_a_topic_reads_back_its_members_and_lets_them_go(env: Env) -> None:
    """GET /v1/topics/{key} (TopicDto `subscribers`), .../subscribers/removal (204), and a
    second topic with the same key is a 409 Conflict (create-topic.use-case.ts, 74a2e9a)."""
    for who in ("a", "b"):
        await env.call("POST", "/v2/subscribers", {"subscriberId": who})
    assert (await env.call("POST", "/v1/topics", {"key": "s:staff", "name": "S"}))[0] == 201
    status, again = await env.call("POST", "/v1/topics", {"key": "s:staff", "name": "S"})
    assert status == 409
    assert again["message"].startswith("Topic exists with key s:staff in the environment")
    await env.call("POST", "/v1/topics/s:staff/subscribers", {"subscribers": ["a", "b"]})
    status, topic = await env.call("GET", "/v1/topics/s:staff")
    assert (status, topic["data"]["subscribers"]) == (200, ["a", "b"])
    path = "/v1/topics/s:staff/subscribers/removal"
    assert (await env.call("POST", path, {"subscribers": ["a", "ghost"]}))[0] == 204
    assert env.novu.topics["s:staff"] == ["b"]
    assert (await env.call("POST", path, {"subscribers": "b"}))[0] == 400
    assert (await env.call("GET", "/v1/topics/nope"))[0] == 404


async def test_email_falls_back_only_for_an_in_app_notice_still_unread_after_the_delay(
    env: Env,
) -> None:
    """A staff workflow as Frontdesk defines it (staff.py): in-app and push at once, then a
    regular delay, then email under `{"==": [{"var": "steps.in-app.read"}, false]}`: Novu
    reads the in-app message's read state when the email step's turn comes
    (execute-bridge-job.usecase.ts `mapState`) and runs the step only while the condition
    holds (construct-framework-workflow.usecase.ts: `!result` is the skip)."""
    [definition] = [d for d in staff_definitions() if d["workflowId"] == HANDOFF]
    status, answer = await env.call("POST", "/v2/workflows", definition)
    assert status == 201, answer
    for transaction in ("unread", "read"):
        await env.trigger({"subject": "S", "text": transaction}, HANDOFF, transaction)
    [unread, read] = env.novu.feed["s1"]
    assert [s["channel"] for s in env.novu.sent] == ["in_app", "in_app"]
    # Nobody has a device: no push (send-message-push.usecase.ts, no push channel).
    assert all("push: no device token, skipped" in r.log for r in env.novu.runs)
    read["read"] = True  # opened in the Inbox during the delay
    await env.novu.advance(timedelta(minutes=14))
    assert [s["channel"] for s in env.novu.sent] == ["in_app", "in_app"]
    await env.novu.advance(timedelta(minutes=1))
    emails = [s for s in env.novu.sent if s["channel"] == "email"]
    assert [(e["transaction"], e["to"], e["text"]) for e in emails] == [
        ("unread", "a@example.com", "unread")
    ]
    assert unread["read"] is False
    [run_read] = [r for r in env.novu.runs if r.transaction == "read"]
    assert run_read.status == "completed"
    assert run_read.log[-1] == "email: skipped (its condition is false)"


async def test_a_push_goes_to_each_device_token_of_the_subscribers_push_credentials(
    env: Env,
) -> None:
    await env.workflow({"type": "push", "stepId": "p", "controlValues": {"body": "hi"}})
    await env.trigger({}, transaction="none")
    assert env.novu.sent == []
    # PUT /v1/subscribers/{id}/credentials: a device of the subscriber's, for FCM.
    body = {"providerId": "fcm", "credentials": {"deviceTokens": ["tok-1", "tok-2"]}}
    status, answer = await env.call("PUT", "/v1/subscribers/s1/credentials", body)
    assert status == 200, answer
    assert answer["data"]["channels"] == [body]
    await env.trigger({}, transaction="two")
    assert [(s["channel"], s["to"], s["text"]) for s in env.novu.sent] == [
        ("push", "tok-1", "hi"),
        ("push", "tok-2", "hi"),
    ]
    missing = await env.call("PUT", "/v1/subscribers/nobody/credentials", body)
    assert missing[0] == 404


async def test_a_regular_delay_needs_an_amount_and_a_unit(env: Env) -> None:
    for controls in ({"type": "regular", "amount": 0, "unit": "minutes"}, {"amount": 5}):
        body = {
            "name": "W",
            "workflowId": "d",
            "steps": [{"type": "delay", "controlValues": controls}],
        }
        status, _answer = await env.call("POST", "/v2/workflows", body)
        assert status == 400


async def test_while_down_every_call_is_refused_and_a_lost_answer_was_taken(env: Env) -> None:
    await env.workflow(email_step(body="x"))
    env.novu.down = True
    body = {"name": "w", "to": "s1", "payload": {}, "transactionId": "t"}
    assert (await env.call("POST", "/v1/events/trigger", body))[0] == 503
    assert env.novu.refused == 1
    assert env.novu.runs == []
    env.novu.down = False
    env.novu.lose_answers = 1
    assert (await env.call("POST", "/v1/events/trigger", body))[0] == 502
    assert len(env.novu.runs) == 1
