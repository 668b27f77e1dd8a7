"""A local stand-in of Novu for one environment: its API, and a worker on a clock tests move.

Towards the gateway it answers the calls Frontdesk makes (contract §2): `Authorization: ApiKey`
(401 otherwise), `POST /v1/events/trigger` with Novu's answers (`workflow_not_found` 422, the
`{"data": {acknowledged, status, transactionId}}` 201), the `Idempotency-Key` rules (24 h
replay with `Idempotency-Replay: true`, 422 for the same key with another body, 400 over 255
characters), `DELETE /v1/events/trigger/{transactionId}` cancelling what is still pending,
`POST /v2/subscribers` (create or update; with `subscriber_conflict=True`, 409 for one that
exists, as some versions answer), `PATCH /v2/subscribers/{id}`, `PUT
/v1/subscribers/{id}/credentials` (a push provider's device tokens), and the v2 workflows (`GET`
answering as Novu reads them back, `POST`, and a `PUT` that must be a whole `UpdateWorkflowDto`).
By default a repeated `transactionId` starts a second run, as Novu did until 2025
(`transaction_dedup=True` ignores it, as newer versions say they do), and `idempotency=False`
ignores the header as self-hosted Novu does by default: Frontdesk must not rely on either.
`down` makes every call answer 503 (an outage; counted in `refused`), `lose_answers` the next
triggers be taken but answered 502.

Its worker runs each accepted trigger's steps in order, as Novu's does (each rule cites its
source where it is enforced): a step runs only when its condition holds (the condition reads
`payload`, `subscriber` and `steps.<stepId>`: an in-app step's message's `seen` and `read` as
they are when the condition is evaluated); a regular delay step waits its `amount` of `unit`s, a
dynamic one until the time its `dynamicKey` names in the payload (an ISO 8601 UTC instant), and
fails the run when
that is longer than the plan allows (`max_delay`); an HTTP request step posts its rendered body,
signed, once (a failure is not retried and halts the run unless the step continues on failure;
`outage` makes the next posts meet a connection refused, as during a deploy); email and SMS steps
"send" into `sent` (when the subscriber has an address), push steps too (one per device token of
the subscriber's push credentials; none without), and in-app steps (the subscriber's feed,
`channel` "in_app"). Time is `clock()` plus whatever
`advance()` (or the demo page's fast-forward) added; `run_due()` runs what is due.
"""

import json
from datetime import timedelta

from aiohttp import web

from gateway.sandbox.novu.api import NovuApi
from gateway.sandbox.novu.steps import (
    STATIC_DIR,
    _iso,
)
from gateway.sandbox.pages import page


class NovuSandbox(NovuApi):
    """Attributes for tests: `subscribers`, `workflows`, `runs`, `sent` (email, SMS and in-app),
    `deliveries` (the HTTP steps' posts: body and the gateway's answer), `calls`."""

    # -- serving --------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        routes = [
            ("POST", "/v1/events/trigger", self._trigger),
            ("DELETE", "/v1/events/trigger/{transaction}", self._cancel),
            ("POST", "/v2/subscribers", self._upsert_subscriber),
            ("PATCH", "/v2/subscribers/{id}", self._patch_subscriber),
            ("GET", "/v2/subscribers/{id}", self._get_subscriber),
            ("PUT", "/v1/subscribers/{id}/credentials", self._credentials),
            ("GET", "/v1/subscribers/{id}/notifications/feed", self._feed),
            ("POST", "/v1/subscribers/{id}/messages/mark-as", self._mark_as),
            ("POST", "/v1/subscribers/{id}/messages/mark-all", self._mark_all),
            ("POST", "/v1/topics", self._create_topic),
            ("GET", "/v1/topics/{key}", self._get_topic),
            ("POST", "/v1/topics/{key}/subscribers", self._add_to_topic),
            ("POST", "/v1/topics/{key}/subscribers/removal", self._remove_from_topic),
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
                # Each subscriber's in-app feed, newest first (what Novu's Inbox shows).
                "feed": {who: list(reversed(items)) for who, items in self.feed.items()},
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
