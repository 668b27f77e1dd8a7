"""A local stand-in of Novu for one environment: its API, and a worker on a clock tests move.

Towards the gateway it answers the calls Frontdesk makes (contract §2): `Authorization: ApiKey`
(401 otherwise), `POST /v1/events/trigger` with Novu's answers (`workflow_not_found` 422, the
`{"data": {acknowledged, status, transactionId}}` 201), the `Idempotency-Key` rules (24 h
replay with `Idempotency-Replay: true`, 422 for the same key with another body, 400 over 255
characters), `DELETE /v1/events/trigger/{transactionId}` cancelling what is still pending,
`POST /v2/subscribers` (create or update; with `subscriber_conflict=True`, 409 for one that
exists, as some versions answer), `PATCH /v2/subscribers/{id}`, and the v2 workflows (`GET`
answering as Novu reads them back, `POST`, and a `PUT` that must be a whole `UpdateWorkflowDto`).
By default a repeated `transactionId` starts a second run, as Novu did until 2025
(`transaction_dedup=True` ignores it, as newer versions say they do), and `idempotency=False`
ignores the header as self-hosted Novu does by default: Frontdesk must not rely on either.

Its worker runs each accepted trigger's steps in order, as Novu's does (each rule cites its
source where it is enforced): a step runs only when its condition holds; a delay step waits until
the time its `dynamicKey` names in the payload (an ISO 8601 UTC instant), and fails the run when
that is longer than the plan allows (`max_delay`); an HTTP request step posts its rendered body,
signed, once (a failure is not retried and halts the run unless the step continues on failure;
`outage` makes the next posts meet a connection refused, as during a deploy); email and SMS steps
"send" into `sent` (when the subscriber has an address). Time is `clock()` plus whatever
`advance()` (or the demo page's fast-forward) added; `run_due()` runs what is due.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientConnectionError, ClientError, ClientSession, ClientTimeout, web

from gateway.sandbox.pages import page, serve

log = logging.getLogger(__name__)

JSON = dict[str, Any]
STATIC_DIR = Path(__file__).parent / "static"
STEP_TYPES = frozenset(
    {"delay", "email", "sms", "http_request", "chat", "in_app", "push", "digest", "throttle"}
)
# ResourceOriginEnum (@novu/shared): what an update's `origin` must be.
ORIGINS = frozenset({"novu-cloud", "novu-cloud-v1", "external"})
# A new workflow's preferences as Novu reads them back ({user, default}: every channel on).
DEFAULT_PREFERENCES: JSON = {
    "user": None,
    "default": {
        "all": {"enabled": True, "readOnly": False},
        "channels": {
            channel: {"enabled": True} for channel in ("email", "sms", "in_app", "chat", "push")
        },
    },
}
# The HTTP request step's default timeout, in milliseconds (`timeout` control).
HTTP_STEP_TIMEOUT_MS = 5000
_LIQUID = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _error(status: int, message: str, path: str) -> web.Response:
    body = {"statusCode": status, "timestamp": _iso(datetime.now(UTC)), "path": path}
    return web.json_response(body | {"message": message}, status=status)


def _invalid(path: str, errors: dict[str, tuple[str, Any]]) -> web.Response:
    """A 422 in Novu's shape for a body that fails its DTO's validation: `errors` by field, each
    with its `messages` and the `value` given (docs/api-reference/errors.mdx)."""
    body = {
        "statusCode": 422,
        "timestamp": _iso(datetime.now(UTC)),
        "path": path,
        "message": "Validation Error",
        "errors": {
            field: {"messages": [message], "value": value}
            for field, (message, value) in errors.items()
        },
    }
    return web.json_response(body, status=422)


def novu_signature(secret: str, body: JSON, at_ms: int) -> str:
    """`Novu-Signature` as Novu's worker writes it: `t=<ms>,v1=<hex HMAC-SHA256 of
    "<t>.<JSON.stringify(body)>" with the environment's secret key>` (novuhq/novu
    libs/application-generic/src/utils/hmac.ts, `buildNovuSignatureHeader`). Written here and
    not taken from the gateway, so that a bug in either side's signing shows."""
    text = f"{at_ms}.{_stringify(body)}"
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return f"t={at_ms},v1={digest}"


def _stringify(value: Any) -> str:
    """JSON.stringify: no spaces, characters as they are."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _lookup(context: JSON, path: str) -> Any:
    value: Any = context
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def render(template: str, context: JSON) -> str:
    """Liquid's `{{ a.b }}`, which is all Frontdesk's workflows use."""

    def value(match: re.Match[str]) -> str:
        found = _lookup(context, match.group(1))
        return "" if found is None else str(found)

    return _LIQUID.sub(value, template)


def runs(condition: Any, context: JSON) -> bool:
    """Whether a step runs: a step condition (`controlValues.skip`) says when it RUNS, true
    runs it and false skips it; no condition runs it. novuhq/novu apps/worker/src/app/workflow/
    usecases/send-message/execute-http-request-step.usecase.ts (57973eb):
    `evaluateSkipCondition` returns `!result`; construct-framework-workflow.usecase.ts
    (4fae506): "The Step Conditions in the Dashboard control the step execution, that's why we
    need to invert the result"."""
    if not condition:
        return True
    return holds(condition, context)


def compile_controls(controls: JSON, context: JSON) -> JSON:
    """The HTTP request step's controls as Novu's worker renders them: Liquid over their JSON
    text, parsed back; when that is no longer JSON (a quote in a value) the controls go out
    unrendered (execute-http-request-step.usecase.ts, `compileControlValues`)."""
    rendered = render(_stringify(controls), context)
    try:
        compiled = json.loads(rendered)
    except json.JSONDecodeError:
        return controls
    return compiled if isinstance(compiled, dict) else controls


def holds(condition: Any, context: JSON) -> bool:
    """JSON logic's `==` and `!=` on `{"var": path}` (what the workflows' `skip` use)."""
    if not isinstance(condition, dict) or not condition:
        return False
    (operator, operands), *_ = condition.items()
    left, right = (_lookup(context, o["var"]) if isinstance(o, dict) else o for o in operands)
    left = "" if left is None else left
    return bool(left == right) if operator == "==" else bool(left != right)


@dataclass
class Run:
    """One accepted trigger: a workflow for one subscriber."""

    id: int
    workflow: str
    transaction: str
    subscriber: str
    payload: JSON
    steps: list[JSON]
    next_step: int = 0
    due: datetime | None = None  # when the next step may run
    status: str = "pending"  # pending | completed | cancelled | failed
    log: list[str] = field(default_factory=list)


class NovuSandbox:
    """Attributes for tests: `subscribers`, `workflows`, `runs`, `sent` (email and SMS),
    `deliveries` (the HTTP steps' posts: body and the gateway's answer), `calls`."""

    def __init__(
        self,
        api_key: str,
        *,
        webhook_secret: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        transaction_dedup: bool = False,
        idempotency: bool = True,
        subscriber_conflict: bool = False,
        max_delay: timedelta | None = None,
    ) -> None:
        self.api_key = api_key
        # Novu signs its requests with the environment's secret key (the API key).
        self.webhook_secret = webhook_secret or api_key
        self.clock = clock
        self.skew = timedelta()
        self.transaction_dedup = transaction_dedup
        # Self-hosted Novu ships with IS_API_IDEMPOTENCY_ENABLED=false: the header is ignored.
        self.idempotency = idempotency
        # Some Novu versions' `POST /v2/subscribers` refuses a subscriber that exists (409).
        self.subscriber_conflict = subscriber_conflict
        # The longest delay the organisation's plan allows (None: no limit).
        self.max_delay = max_delay
        # How many of the next HTTP step requests meet a connection refused.
        self.outage = 0
        self.subscribers: dict[str, JSON] = {}
        self.workflows: dict[str, JSON] = {}
        self.runs: list[Run] = []
        self.sent: list[JSON] = []
        self.deliveries: list[JSON] = []
        self.calls: list[tuple[str, str]] = []
        self._idempotency: dict[str, tuple[str, int, JSON]] = {}
        self._ids = itertools.count(1)
        self._session: ClientSession | None = None
        self._running: asyncio.Task[None] | None = None
        self._page_html: str | None = None

    # -- the clock ------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock() + self.skew

    async def advance(self, delta: timedelta) -> None:
        """Move this Novu's time on (the demo's fast-forward) and run what fell due."""
        self.skew += delta
        await self.run_due()

    def reset_clock(self) -> None:
        """Back to the real time (the demo page's reset): what fast-forward added is undone.
        Runs already done stay done; a pending step waits for its time again."""
        self.skew = timedelta()

    def pending(self, transaction: str | None = None) -> list[Run]:
        return [
            r for r in self.runs if r.status == "pending" and transaction in (None, r.transaction)
        ]

    # -- serving --------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        routes = [
            ("POST", "/v1/events/trigger", self._trigger),
            ("DELETE", "/v1/events/trigger/{transaction}", self._cancel),
            ("POST", "/v2/subscribers", self._upsert_subscriber),
            ("PATCH", "/v2/subscribers/{id}", self._patch_subscriber),
            ("GET", "/v2/subscribers/{id}", self._get_subscriber),
            ("GET", "/v2/workflows/{id}", self._get_workflow),
            ("POST", "/v2/workflows", self._create_workflow),
            ("PUT", "/v2/workflows/{id}", self._update_workflow),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, self._api(handler))
        app.router.add_get("/", self._page)
        app.router.add_get("/_sandbox/state", self._state)
        app.router.add_post("/_sandbox/advance", self._advance)
        app.router.add_post("/_sandbox/reset-clock", self._reset_clock)
        app.on_cleanup.append(lambda _app: self.close())
        if self._page_html is None:
            self._page_html = (STATIC_DIR / "novu.html").read_text(encoding="utf-8")
        return app

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
        return await serve(self.app(), host, port)

    async def close(self) -> None:
        if self._running is not None:
            self._running.cancel()
            await asyncio.gather(self._running, return_exceptions=True)
            self._running = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _api(self, handler: Callable[[web.Request], Any]) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.calls.append((request.method, request.path))
            if request.headers.get("Authorization") != f"ApiKey {self.api_key}":
                return _error(401, "API Key not found", request.path)
            try:
                response: web.StreamResponse = await handler(request)
            except ValueError as exc:
                return _error(400, str(exc), request.path)
            return response

        return handle

    async def _body(self, request: web.Request) -> JSON:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise ValueError("Unexpected token in JSON") from None
        if not isinstance(body, dict):
            raise ValueError("the body must be an object")
        return body

    # -- events ---------------------------------------------------------------------------

    async def _trigger(self, request: web.Request) -> web.Response:
        raw = await request.read()
        key = request.headers.get("Idempotency-Key") if self.idempotency else None
        digest = hashlib.blake2s(raw).hexdigest()
        if key is not None:
            if len(key) > 255:
                return _error(400, "Idempotency-Key is too long", request.path)
            seen = self._idempotency.get(key)
            if seen is not None:
                if seen[0] != digest:
                    return _error(
                        422, "Request with the same idempotency key has a different body", ""
                    )
                headers = {"Idempotency-Key": key, "Idempotency-Replay": "true"}
                return web.json_response(seen[2], status=seen[1], headers=headers)
        body = await self._body(request)
        status, answer = self._accept(body)
        if key is not None:
            self._idempotency[key] = (digest, status, answer)
        if status == 201:
            self._kick()
        return web.json_response(answer, status=status)

    def _accept(self, body: JSON) -> tuple[int, JSON]:
        name = body.get("name")
        workflow = self.workflows.get(str(name))
        if not isinstance(name, str) or workflow is None:
            return 422, {"statusCode": 422, "message": "workflow_not_found"}
        recipient = body.get("to")
        subscriber = recipient.get("subscriberId") if isinstance(recipient, dict) else recipient
        if not isinstance(subscriber, str) or not subscriber:
            return 201, {"data": {"acknowledged": True, "status": "subscriber_id_missing"}}
        transaction = str(body.get("transactionId") or f"txn-{next(self._ids)}")
        if self.transaction_dedup and any(r.transaction == transaction for r in self.runs):
            return 201, {
                "data": {"acknowledged": True, "status": "processed", "transactionId": transaction}
            }
        if not workflow.get("active", True):
            return 201, {"data": {"acknowledged": True, "status": "trigger_not_active"}}
        if isinstance(recipient, dict):
            self._store_subscriber(recipient)
        self.subscribers.setdefault(subscriber, {"subscriberId": subscriber})
        payload = body.get("payload") if isinstance(body.get("payload"), dict) else {}
        run = Run(
            next(self._ids),
            name,
            transaction,
            subscriber,
            dict(payload or {}),
            [dict(step) for step in workflow["steps"]],
            due=self.now(),
        )
        self.runs.append(run)
        return 201, {
            "data": {"acknowledged": True, "status": "processed", "transactionId": transaction}
        }

    async def _cancel(self, request: web.Request) -> web.Response:
        transaction = request.match_info["transaction"]
        cancelled = False
        for run in self.pending(transaction):
            run.status = "cancelled"
            run.log.append(f"cancelled at {_iso(self.now())}")
            cancelled = True
        return web.json_response({"data": cancelled})

    # -- subscribers ----------------------------------------------------------------------

    def _store_subscriber(self, given: JSON) -> JSON:
        subscriber_id = given.get("subscriberId")
        if not isinstance(subscriber_id, str) or not subscriber_id:
            raise ValueError("subscriberId should not be empty")
        stored = self.subscribers.setdefault(subscriber_id, {"subscriberId": subscriber_id})
        for name in ("firstName", "lastName", "email", "phone", "locale", "timezone", "data"):
            if name in given:
                stored[name] = given[name]
        return stored

    async def _upsert_subscriber(self, request: web.Request) -> web.Response:
        given = await self._body(request)
        if self.subscriber_conflict and given.get("subscriberId") in self.subscribers:
            # apps/api/src/app/subscribers-v2/usecases/create-subscriber/
            # create-subscriber.usecase.ts (031c5f3): ConflictException for an existing id.
            message = f"Subscriber: {given['subscriberId']} already exists"
            return _error(409, message, request.path)
        stored = self._store_subscriber(given)
        return web.json_response({"data": stored}, status=201)

    async def _patch_subscriber(self, request: web.Request) -> web.Response:
        subscriber_id = request.match_info["id"]
        if subscriber_id not in self.subscribers:
            return _error(404, f"Subscriber: {subscriber_id} was not found", request.path)
        given = await self._body(request)
        stored = self._store_subscriber(given | {"subscriberId": subscriber_id})
        return web.json_response({"data": stored})

    async def _get_subscriber(self, request: web.Request) -> web.Response:
        found = self.subscribers.get(request.match_info["id"])
        if found is None:
            return _error(404, "Subscriber not found", request.path)
        return web.json_response({"data": found})

    # -- workflows ------------------------------------------------------------------------

    def _check_workflow(self, body: JSON) -> None:
        if not isinstance(body.get("name"), str) or not body["name"]:
            raise ValueError("name should not be empty")
        steps = body.get("steps")
        if not isinstance(steps, list):
            raise ValueError("steps must be an array")
        for step in steps:
            kind = step.get("type") if isinstance(step, dict) else None
            if kind not in STEP_TYPES:
                raise ValueError(f"steps.type must be one of {sorted(STEP_TYPES)}")
            controls = step.get("controlValues") or {}
            dynamic = kind == "delay" and controls.get("type") == "dynamic"
            if dynamic and not controls.get("dynamicKey"):
                raise ValueError("a dynamic delay needs dynamicKey")
            if kind == "http_request" and not (controls.get("url") and controls.get("method")):
                raise ValueError("an HTTP request step needs method and url")

    async def _get_workflow(self, request: web.Request) -> web.Response:
        found = self.workflows.get(request.match_info["id"])
        if found is None:
            return _error(404, "Workflow not found", request.path)
        return web.json_response({"data": self._read_back(found)})

    def _read_back(self, workflow: JSON) -> JSON:
        """A workflow as `GET /v2/workflows/{id}` answers (WorkflowResponseDto): each step's
        values under `controls.values` (StepResponseDto; `controlValues` is optional there),
        its `origin`, and `preferences` as {user, default}."""
        steps = [
            {key: value for key, value in step.items() if key != "controlValues"}
            | {"controls": {"values": step.get("controlValues") or {}}}
            for step in workflow.get("steps", [])
        ]
        return workflow | {"steps": steps}

    async def _create_workflow(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        self._check_workflow(body)
        workflow_id = str(body.get("workflowId") or "")
        if not workflow_id:
            raise ValueError("workflowId should not be empty")
        if workflow_id in self.workflows:
            return _error(409, f"Workflow with id {workflow_id} already exists", request.path)
        # Made through the API: Novu's own (dashboard) workflow, with the default preferences.
        self.workflows[workflow_id] = body | {
            "active": body.get("active", True),
            "origin": "novu-cloud",
            "preferences": json.loads(json.dumps(DEFAULT_PREFERENCES)),
        }
        stored = self._read_back(self.workflows[workflow_id])
        return web.json_response({"data": stored}, status=201)

    async def _update_workflow(self, request: web.Request) -> web.Response:
        workflow_id = request.match_info["id"]
        if workflow_id not in self.workflows:
            return _error(404, "Workflow not found", request.path)
        body = await self._body(request)
        refused = self._update_errors(body)
        if refused:
            return _invalid(request.path, refused)
        self._check_workflow(body)
        current = self.workflows[workflow_id]
        preferences = {
            "user": body["preferences"].get("user"),
            "default": body["preferences"].get("workflow") or current["preferences"]["default"],
        }
        self.workflows[workflow_id] = body | {
            "workflowId": workflow_id,
            "origin": body["origin"],
            "preferences": preferences,
        }
        return web.json_response({"data": self._read_back(self.workflows[workflow_id])})

    @staticmethod
    def _update_errors(body: JSON) -> dict[str, tuple[str, Any]]:
        """What `UpdateWorkflowDto` (apps/api/src/app/workflows-v2/dtos/update-workflow.dto.ts,
        151a942) refuses: `origin` must be a ResourceOriginEnum (`@IsEnum`, not optional),
        `steps` an array (`@IsArray`), `preferences` a nested PreferencesRequestDto
        (`@ValidateNested`, not optional), `name` a string (WorkflowCommonsFields)."""
        errors: dict[str, tuple[str, Any]] = {}
        if body.get("origin") not in ORIGINS:
            message = f"origin must be one of the following values: {', '.join(sorted(ORIGINS))}"
            errors["origin"] = (message, body.get("origin"))
        if not isinstance(body.get("steps"), list):
            errors["steps"] = ("steps must be an array", body.get("steps"))
        preferences = body.get("preferences")
        if not isinstance(preferences, dict):
            message = "nested property preferences must be either object or array"
            errors["preferences"] = (message, preferences)
        elif preferences.get("user") is not None and not isinstance(preferences["user"], dict):
            errors["preferences.user"] = ("user must be an object", preferences["user"])
        if not isinstance(body.get("name"), str):
            errors["name"] = ("name must be a string", body.get("name"))
        return errors

    # -- the worker -----------------------------------------------------------------------

    def _kick(self) -> None:
        """Run what is due soon after a trigger, as Novu's worker picks jobs off its queue."""
        if self._running is None or self._running.done():
            self._running = asyncio.get_running_loop().create_task(self.run_due())

    async def run_due(self) -> None:
        """Run every step that is due now (repeatedly, until nothing more is)."""
        progressed = True
        while progressed:
            progressed = False
            for run in list(self.runs):
                if run.status == "pending" and run.due is not None and run.due <= self.now():
                    progressed |= await self._step(run)

    async def settle(self) -> None:
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)
        await self.run_due()

    async def _step(self, run: Run) -> bool:
        if run.next_step >= len(run.steps):
            run.status = "completed"
            return True
        step = run.steps[run.next_step]
        controls = step.get("controlValues") or {}
        context = {"payload": run.payload, "subscriber": self.subscribers[run.subscriber]}
        kind = step["type"]
        name = step.get("stepId") or kind
        if not runs(controls.get("skip"), context):
            run.log.append(f"{name}: skipped (its condition is false)")
        elif kind == "delay":
            until = self._delay_until(controls, context)
            if until is None:
                run.status = "failed"
                run.log.append(
                    f"{name}: no valid ISO 8601 UTC time at {controls.get('dynamicKey')}"
                )
                return True
            if self.max_delay is not None and until - self.now() > self.max_delay:
                # The plan's longest delay: the job fails and the workflow goes no further
                # (apps/worker/src/app/workflow/usecases/add-job/add-job.usecase.ts, 4fae506:
                # DetailEnum.DEFER_DURATION_LIMIT_EXCEEDED, the job is not queued).
                run.status = "failed"
                run.log.append(f"{name}: DEFER_DURATION_LIMIT_EXCEEDED")
                return True
            run.next_step += 1
            run.due = until
            run.log.append(f"{name}: until {_iso(until)}")
            return True
        elif kind == "http_request":
            if not await self._post(run, controls, context) and not controls.get(
                "continueOnFailure"
            ):
                # Not retried, and an action step that failed halts the workflow
                # (execute-http-request-step.usecase.ts, 57973eb:
                # `shouldHalt: !controlValues.continueOnFailure`; the worker's
                # shouldHaltOnStepFailure: "Action steps always stop on failure").
                run.status = "failed"
                return True
        elif kind in ("email", "sms"):
            self._send(run, kind, controls, context)
        run.next_step += 1
        run.due = self.now()
        return True

    def _delay_until(self, controls: JSON, context: JSON) -> datetime | None:
        if controls.get("type") != "dynamic":
            amount = float(controls.get("amount") or 0)
            unit = str(controls.get("unit") or "seconds")
            return self.now() + timedelta(**{unit: amount})
        value = _lookup(context, str(controls.get("dynamicKey")))
        if not isinstance(value, str) or not value.endswith("Z"):
            return None
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None

    def _send(self, run: Run, kind: str, controls: JSON, context: JSON) -> None:
        subscriber = context["subscriber"]
        address = subscriber.get("email" if kind == "email" else "phone")
        if not address:
            run.log.append(f"{kind}: no {'email' if kind == 'email' else 'phone'}, skipped")
            return
        self.sent.append(
            {
                "channel": kind,
                "to": address,
                "subject": render(str(controls.get("subject") or ""), context),
                "text": render(str(controls.get("body") or ""), context),
                "workflow": run.workflow,
                "transaction": run.transaction,
                "at": _iso(self.now()),
            }
        )
        run.log.append(f"{kind}: sent")

    async def _post(self, run: Run, controls: JSON, context: JSON) -> bool:
        """The HTTP request step, once; whether the gateway took it (a 2xx)."""
        compiled = compile_controls(
            {key: value for key, value in controls.items() if key != "skip"}, context
        )
        # toBodyRecord / toHeadersRecord: the key-value lists as objects.
        body = {str(item["key"]): item.get("value", "") for item in compiled.get("body") or []}
        headers = {
            str(item["key"]): str(item.get("value", "")) for item in compiled.get("headers") or []
        }
        # Signed at the wall-clock time it is sent (the gateway checks the age).
        headers["Novu-Signature"] = novu_signature(
            self.webhook_secret, body, int(time.time() * 1000)
        )
        timeout = float(compiled.get("timeout") or HTTP_STEP_TIMEOUT_MS) / 1000
        if self._session is None or self._session.closed:
            self._session = ClientSession()
        status = 0
        try:
            if self.outage > 0:
                self.outage -= 1
                raise ClientConnectionError("connection refused")
            async with self._session.request(
                str(compiled.get("method", "POST")),
                str(compiled["url"]),
                data=_stringify(body).encode(),
                headers=headers,
                timeout=ClientTimeout(total=timeout),
            ) as answer:
                await answer.read()
                status = answer.status
        except (ClientError, TimeoutError) as exc:
            log.warning("sandbox: Novu's HTTP step undelivered: %s", type(exc).__name__)
        self.deliveries.append({"workflow": run.workflow, "body": body, "status": status})
        if 200 <= status < 300:
            run.log.append(f"messenger: posted to the gateway ({status})")
            return True
        run.log.append(f"messenger: failed ({status or 'no answer'}), not retried")
        return False

    # -- the demo page --------------------------------------------------------------------

    async def _page(self, _request: web.Request) -> web.Response:
        return page(self._page_html or "")

    async def _state(self, _request: web.Request) -> web.Response:
        runs = [
            {
                "workflow": r.workflow,
                "subscriber": r.subscriber,
                "status": r.status,
                "due": _iso(r.due) if r.due and r.status == "pending" else None,
                "service": r.payload.get("service"),
                "start": r.payload.get("start"),
                "log": r.log,
            }
            for r in reversed(self.runs)
        ]
        return web.json_response(
            {
                "now": _iso(self.now()),
                # How far the page's fast-forward moved this Novu's time past the real one.
                "ahead_hours": round(self.skew / timedelta(hours=1), 2),
                "workflows": sorted(self.workflows),
                "runs": runs,
                "sent": list(reversed(self.sent)),
            }
        )

    async def _advance(self, request: web.Request) -> web.Response:
        try:
            hours = float((await request.json()).get("hours"))
        except (ValueError, TypeError, AttributeError, json.JSONDecodeError):
            return web.json_response({"error": "hours must be a number"}, status=400)
        if not 0 < hours <= 24 * 30:
            return web.json_response({"error": "between 0 and 720 hours"}, status=400)
        await self.advance(timedelta(hours=hours))
        return web.json_response({"now": _iso(self.now())})

    async def _reset_clock(self, _request: web.Request) -> web.Response:
        self.reset_clock()
        return web.json_response({"now": _iso(self.now())})
