"""Novu's API, the calls Frontdesk makes, and the outbox's sender for them.

Auth is `Authorization: ApiKey <key>` (contract §2.1). Every trigger carries a deterministic
`transactionId` (to cancel a reminder by) and the same value as `Idempotency-Key` (so a retried
call never notifies twice, where the Novu in use honours the header; §2.3-2.4). 5xx, 429 and
timeouts count against Novu's circuit breaker; other 4xx are our mistakes or the operator's (a
workflow not synced) and are dead-lettered, to be replayed once fixed.

A thin client rather than the generated `novu-py` SDK: a few calls, the same JSON API base
(timeouts, breaker, errors, test seam) as every other service, and no hook adding a random
Idempotency-Key.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx

from gateway.integrations.http import JsonApiClient, ServiceRejected, ServiceUnavailable
from gateway.integrations.http import is_failure as is_failure
from gateway.pipeline.outbox import PermanentFailure, RetryLater
from gateway.pipeline.resilience import CircuitBreaker
from gateway.pipeline.streams import Outgoing

log = logging.getLogger("frontdesk.novu")

CHANNEL = "novu"
# What a trigger's `data.status` says when Novu took it (it only means "queued").
ACCEPTED = "processed"


class NovuUnavailable(ServiceUnavailable):
    """Novu is down, slow or throttling us: retried later."""


class NovuBusy(NovuUnavailable):
    """The same Idempotency-Key is still being processed (409): not Novu failing."""

    counted = False


def _idempotency_busy(response: httpx.Response) -> bool:
    """Which 409 this is. Novu's idempotency interceptor answers a key still in progress with
    the key echoed in `Idempotency-Key` and `Retry-After: 1`
    (apps/api/src/app/shared/framework/idempotency.interceptor.ts, `handlerDuplicateRequest`);
    any other 409 is the request's own conflict, e.g. the create-subscriber use case's
    "Subscriber: <id> already exists" (apps/api/src/app/subscribers-v2/usecases/
    create-subscriber/create-subscriber.usecase.ts, 031c5f3), which no retry mends."""
    return "Idempotency-Key" in response.headers


class NovuRejected(ServiceRejected):
    """Novu refused the request (a 4xx other than 429 and a busy idempotency key)."""


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


class NovuClient(JsonApiClient):
    unavailable_error = NovuUnavailable
    rejected_error = NovuRejected

    def __init__(
        self,
        url: str,
        api_key: str,
        breaker: CircuitBreaker,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            url.rstrip("/"),
            {"Authorization": f"ApiKey {api_key}"},
            breaker,
            timeout=timeout,
            transport=transport,
        )

    def _unavailable(self, response: httpx.Response, call: str) -> ServiceUnavailable | None:
        status = response.status_code
        if status >= 500 or status == 429:
            return NovuUnavailable(f"HTTP {status} on {call}", _retry_after(response))
        if status == 409 and _idempotency_busy(response):
            # The same Idempotency-Key is still being processed: ask again in a moment.
            return NovuBusy("idempotent request in progress", _retry_after(response))
        return None

    def _decode(self, response: httpx.Response) -> Any:
        # Novu wraps answers in `{"data": ...}`.
        body = response.json() if response.content else {}
        return body.get("data", body) if isinstance(body, dict) else body

    async def trigger(
        self, body: dict[str, Any], idempotency_key: str | None = None
    ) -> dict[str, Any]:
        key = idempotency_key or str(body["transactionId"])
        data = await self._call(
            "POST", "/v1/events/trigger", json=body, headers={"Idempotency-Key": key[:255]}
        )
        return data if isinstance(data, dict) else {}

    async def cancel(self, transaction_id: str) -> bool:
        """Cancel the pending (delayed) steps of a transaction; False if none were pending."""
        data = await self._call("DELETE", f"/v1/events/trigger/{quote(transaction_id, safe='')}")
        return data is True

    async def upsert_subscriber(self, subscriber: dict[str, Any]) -> None:
        # v2 creates or updates (unless `failIfExists`), and takes the time zone; some versions
        # answer 409 for a subscriber that exists (see `_idempotency_busy`): then it is updated.
        try:
            await self._call("POST", "/v2/subscribers", json=subscriber)
        except NovuRejected as exc:
            if exc.status != 409:
                raise
            subscriber_id = quote(str(subscriber["subscriberId"]), safe="")
            # PatchSubscriberRequestDto: the same fields, without the id (it is in the path).
            changes = {k: v for k, v in subscriber.items() if k != "subscriberId"}
            await self._call("PATCH", f"/v2/subscribers/{subscriber_id}", json=changes)

    async def create_topic(self, key: str, name: str) -> None:
        """`POST /v1/topics` `{key, name}`. A topic that exists is kept: Novu answers 409
        Conflict "Topic exists with key <key> in the environment ..." for a key already used
        (apps/api/src/app/topics/use-cases/create-topic/create-topic.use-case.ts and its
        e2e/create-topic.e2e.ts, novuhq/novu 74a2e9a; unchanged in later versions, which also
        check the key against letters, digits, `-`, `_`, `:`), so `novu sync` runs again."""
        try:
            await self._call("POST", "/v1/topics", json={"key": key, "name": name})
        except NovuRejected as exc:
            if exc.status != 409:
                raise

    async def topic_subscribers(self, key: str) -> list[str] | None:
        """Who is in a topic: `GET /v1/topics/{key}` answers TopicDto, whose `subscribers` are
        the members' subscriber ids (topics.controller.ts `getTopic`, get-topic.use-case.ts,
        TopicRepository.findTopic, 74a2e9a); None when there is no such topic (404)."""
        try:
            data = await self._call("GET", f"/v1/topics/{quote(key, safe='')}")
        except NovuRejected as exc:
            if exc.status == 404:
                return None
            raise
        members = data.get("subscribers") if isinstance(data, dict) else None
        return [str(m) for m in members] if isinstance(members, list) else []

    async def add_to_topic(self, key: str, subscribers: list[str]) -> None:
        """`POST /v1/topics/{key}/subscribers` `{subscribers: [ids]}`; adding one already
        there changes nothing (docs: api-reference/topics, "Subscribers addition")."""
        path = f"/v1/topics/{quote(key, safe='')}/subscribers"
        await self._call("POST", path, json={"subscribers": subscribers})

    async def remove_from_topic(self, key: str, subscribers: list[str]) -> None:
        """`POST /v1/topics/{key}/subscribers/removal` `{subscribers: [ids]}`, answered 204
        (topics.controller.ts `removeSubscribers`, RemoveSubscribersRequestDto, 74a2e9a)."""
        path = f"/v1/topics/{quote(key, safe='')}/subscribers/removal"
        await self._call("POST", path, json={"subscribers": subscribers})

    # -- a subscriber's in-app feed (what Novu's Inbox shows) -----------------------------

    async def feed(self, subscriber: str, page: int = 0, limit: int = 10) -> dict[str, Any]:
        """`GET /v1/subscribers/{id}/notifications/feed?page=&limit=` (subscribers.controller.ts
        `getNotificationsFeed`; limit 1-100, default 10: GetInAppNotificationsFeedForSubscriberDto;
        74a2e9a): newest first, answered whole as `{data, totalCount, hasMore, pageSize, page}`
        (get-notifications-feed.usecase.ts; the ResponseInterceptor keeps a paginated answer's
        own `data`). A subscriber Novu does not know is a 400 (ApiException "Subscriber not
        found ..."): an empty feed here, as for a staff member `novu sync` has not reached."""
        path = f"/v1/subscribers/{quote(subscriber, safe='')}/notifications/feed"
        params = {"page": str(page), "limit": str(limit)}
        response = await self._exchange("GET", path, params=params)
        if response.status_code == 400 and "Subscriber not found" in response.text:
            return {"data": [], "totalCount": 0, "hasMore": False, "pageSize": limit, "page": page}
        if not response.is_success:
            raise self._rejected(response)
        body = response.json()
        return body if isinstance(body, dict) else {}

    async def mark_read(self, subscriber: str, message_ids: list[str]) -> None:
        """`POST /v1/subscribers/{id}/messages/mark-as` `{messageId: [ids], markAs: "read"}`
        (MessageMarkAsRequestDto, MessagesStatusEnum; mark-message-as-by-mark.usecase.ts,
        74a2e9a). Novu changes only the path subscriber's own messages (the update is filtered
        by `_subscriberId`), so another's id changes nothing."""
        path = f"/v1/subscribers/{quote(subscriber, safe='')}/messages/mark-as"
        await self._call("POST", path, json={"messageId": message_ids, "markAs": "read"})

    async def mark_all_read(self, subscriber: str) -> int:
        """`POST /v1/subscribers/{id}/messages/mark-all` `{markAs: "read"}`: how many changed
        (MarkAllMessageAsRequestDto; mark-all-messages-as.usecase.ts returns `modified`,
        74a2e9a)."""
        path = f"/v1/subscribers/{quote(subscriber, safe='')}/messages/mark-all"
        data = await self._call("POST", path, json={"markAs": "read"})
        return data if isinstance(data, int) and not isinstance(data, bool) else 0

    async def workflow(self, workflow_id: str) -> dict[str, Any] | None:
        try:
            data = await self._call("GET", f"/v2/workflows/{quote(workflow_id, safe='')}")
        except NovuRejected as exc:
            if exc.status == 404:
                return None
            raise
        return data if isinstance(data, dict) else None

    async def create_workflow(self, body: dict[str, Any]) -> None:
        await self._call("POST", "/v2/workflows", json=body)

    async def update_workflow(self, workflow_id: str, body: dict[str, Any]) -> None:
        await self._call("PUT", f"/v2/workflows/{quote(workflow_id, safe='')}", json=body)


class NovuDelivery:
    """The outbox's sender for Novu: subscriber upserts, triggers and cancellations, in order
    per subscriber, retried on the outbox's schedule."""

    def __init__(self, client: NovuClient) -> None:
        self.client = client

    async def deliver(self, message: Outgoing) -> None:
        params = message.params
        try:
            if message.method == "subscriber":
                await self.client.upsert_subscriber(params)
            elif message.method == "trigger":
                answer = await self.client.trigger(params)
                status = answer.get("status", ACCEPTED)
                if status != ACCEPTED:
                    # e.g. the workflow is missing or inactive: `frontdesk novu sync`, then replay.
                    raise PermanentFailure(f"Novu did not run {params.get('name')}: {status}")
            elif message.method == "cancel":
                cancelled = await self.client.cancel(str(params["transactionId"]))
                log.info("Novu reminder cancelled" if cancelled else "no Novu reminder pending")
            else:
                raise PermanentFailure(f"unsupported Novu call {message.method!r}")
        except NovuUnavailable as exc:
            if exc.retry_after is not None:
                raise RetryLater(max(1.0, exc.retry_after)) from exc
            raise
        except NovuRejected as exc:
            raise PermanentFailure(str(exc)) from exc
