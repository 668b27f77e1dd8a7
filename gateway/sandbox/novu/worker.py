"""Novu's worker in the stand-in: the environment's state, its clock (which tests and the demo
move), and the runs' steps (delay, HTTP request, email, SMS) as Novu executes them."""

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from gateway.sandbox.base import Answer, StandIn
from gateway.sandbox.novu.steps import (
    HTTP_STEP_TIMEOUT_MS,
    JSON,
    PUSH_PROVIDERS,
    Run,
    _iso,
    _lookup,
    _stringify,
    compile_controls,
    novu_signature,
    render,
    runs,
    step_results,
)

log = logging.getLogger(__name__)


class Worker(StandIn):
    """One Novu environment's state and the worker that runs its triggers' steps."""

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
        super().__init__()
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
        # While set, the API answers every call 503 (counted in `refused`); `lose_answers`:
        # how many of the next triggers are taken but answered 502.
        self.down = False
        self.refused = 0
        self.lose_answers = 0
        self.subscribers: dict[str, JSON] = {}
        self.workflows: dict[str, JSON] = {}
        self.runs: list[Run] = []
        self.sent: list[JSON] = []
        # Topics (key -> subscriber ids) and each subscriber's in-app feed, newest last.
        self.topics: dict[str, list[str]] = {}
        self.feed: dict[str, list[JSON]] = {}
        self.deliveries: list[JSON] = []
        self.calls: list[tuple[str, str]] = []
        self._idempotency: dict[str, tuple[str, int, JSON]] = {}
        self._ids = itertools.count(1)
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

    async def close(self) -> None:
        if self._running is not None:
            self._running.cancel()
            await asyncio.gather(self._running, return_exceptions=True)
            self._running = None
        await super().close()

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
        context = {
            "payload": run.payload,
            "subscriber": self.subscribers[run.subscriber],
            "steps": step_results(run),
        }
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
            if not await self._http_step(run, controls, context) and not controls.get(
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
        elif kind == "in_app":
            run.messages[name] = self._in_app(run, controls, context)
        elif kind == "push":
            self._push(run, controls, context)
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

    def _push(self, run: Run, controls: JSON, context: JSON) -> None:
        """A push goes to each device token of the subscriber's push channels (their
        credentials, `PUT /v1/subscribers/{id}/credentials` `{providerId, credentials:
        {deviceTokens}}`); a subscriber with none gets nothing. Novu's worker: no push channel
        is SUBSCRIBER_NO_ACTIVE_CHANNEL, a channel without device tokens
        PUSH_MISSING_DEVICE_TOKENS, and nothing is sent (apps/worker/src/app/workflow/usecases/
        send-message/send-message-push.usecase.ts, 74a2e9a)."""
        tokens = [
            token
            for channel in context["subscriber"].get("channels") or []
            if channel.get("providerId") in PUSH_PROVIDERS
            for token in (channel.get("credentials") or {}).get("deviceTokens") or []
        ]
        if not tokens:
            run.log.append("push: no device token, skipped")
            return
        for token in tokens:
            self.sent.append(
                {
                    "channel": "push",
                    "to": token,
                    "subject": render(str(controls.get("subject") or ""), context),
                    "text": render(str(controls.get("body") or ""), context),
                    "workflow": run.workflow,
                    "transaction": run.transaction,
                    "at": _iso(self.now()),
                }
            )
        run.log.append(f"push: sent to {len(tokens)} device(s)")

    def _in_app(self, run: Run, controls: JSON, context: JSON) -> JSON:
        """An in-app message in the subscriber's feed, as the Inbox and
        `GET /v1/subscribers/{id}/notifications/feed` read it (NotificationFeedItemDto:
        `content`, `subject`, `transactionId`, `templateIdentifier`, `read`, `seen`,
        `createdAt`, `cta`); `redirect.url` is what a click opens (in-app-control.schema.ts,
        see owner_workflow.py). Listed among what was sent, too."""
        redirect = controls.get("redirect") if isinstance(controls.get("redirect"), dict) else {}
        url = render(str((redirect or {}).get("url") or ""), context)
        subject = render(str(controls.get("subject") or ""), context)
        body = render(str(controls.get("body") or ""), context)
        self.sent.append(
            {
                "channel": "in_app",
                "to": run.subscriber,
                "subject": subject,
                "text": body,
                "url": url,
                "workflow": run.workflow,
                "transaction": run.transaction,
                "at": _iso(self.now()),
            }
        )
        message: JSON = {
            # A MongoDB ObjectId, as Novu's message ids are (mark-as casts each one).
            "_id": f"{next(self._ids):024x}",
            "_subscriberId": run.subscriber,
            "templateIdentifier": run.workflow,
            "transactionId": run.transaction,
            "subject": subject,
            "content": body,
            "cta": {"type": "redirect", "data": {"url": url}} if url else {},
            "payload": dict(run.payload),
            "read": False,
            "seen": False,
            "createdAt": _iso(self.now()),
        }
        self.feed.setdefault(run.subscriber, []).append(message)
        run.log.append("in_app: sent")
        return message

    async def _http_step(self, run: Run, controls: JSON, context: JSON) -> bool:
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
        if self.outage > 0:
            self.outage -= 1
            answer = Answer(0, "ClientConnectionError")  # the connection is refused
        else:
            answer = await self._post(
                str(compiled["url"]),
                _stringify(body).encode(),
                headers,
                answer_within=timeout,
                method=str(compiled.get("method", "POST")),
            )
        status = answer.status
        if not status:
            log.warning("sandbox: Novu's HTTP step undelivered: %s", answer.reason)
        self.deliveries.append({"workflow": run.workflow, "body": body, "status": status})
        if 200 <= status < 300:
            run.log.append(f"messenger: posted to the gateway ({status})")
            return True
        run.log.append(f"messenger: failed ({status or 'no answer'}), not retried")
        return False
