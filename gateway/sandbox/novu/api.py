"""The API of the Novu stand-in (contract §2): events, subscribers and workflows, with the
API key, and Novu's answers and rules."""

import hashlib
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway.sandbox.novu.steps import (
    DEFAULT_PREFERENCES,
    DELAY_UNITS,
    JSON,
    ORIGINS,
    STEP_TYPES,
    Run,
    _error,
    _invalid,
    _iso,
)
from gateway.sandbox.novu.worker import Worker

# The environment and organisation the stand-in's Novu answers for (in its messages).
ENVIRONMENT = "sandbox-environment"
ORGANIZATION = "sandbox-organization"
# MessagesStatusEnum (packages/shared/src/types/messages/index.ts, 74a2e9a).
MARKS = ("read", "seen", "unread", "unseen")


def _mark(message: JSON, mark: str) -> bool:
    """Set a message's read/seen as MessageRepository.getReadSeenUpdatePayload does (read and
    unread both leave it seen; libs/dal/src/repositories/message/message.repository.ts,
    74a2e9a); whether it changed."""
    before = (message["read"], message["seen"])
    if mark == "read":
        message["read"] = message["seen"] = True
    elif mark == "unread":
        message["read"], message["seen"] = False, True
    elif mark == "seen":
        message["seen"] = True
    else:
        message["seen"] = False
    return (message["read"], message["seen"]) != before


class NovuApi(Worker):
    """The endpoints Frontdesk calls."""

    def _api(self, handler: Callable[[web.Request], Any]) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.calls.append((request.method, request.path))
            if self.down:
                # An outage (a deploy, an overloaded API): nothing is done.
                self.refused += 1
                return _error(503, "Service Unavailable", request.path)
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
        if self.lose_answers > 0:
            # Taken, but the answer is lost on the way back (a proxy's 502): the caller retries.
            self.lose_answers -= 1
            return _error(502, "Bad Gateway", request.path)
        return web.json_response(answer, status=status)

    def _accept(self, body: JSON) -> tuple[int, JSON]:
        name = body.get("name")
        workflow = self.workflows.get(str(name))
        if not isinstance(name, str) or workflow is None:
            return 422, {"statusCode": 422, "message": "workflow_not_found"}
        subscribers = self._recipients(body.get("to"))
        if not subscribers:
            return 201, {"data": {"acknowledged": True, "status": "subscriber_id_missing"}}
        transaction = str(body.get("transactionId") or f"txn-{next(self._ids)}")
        if self.transaction_dedup and any(r.transaction == transaction for r in self.runs):
            return 201, {
                "data": {"acknowledged": True, "status": "processed", "transactionId": transaction}
            }
        if not workflow.get("active", True):
            return 201, {"data": {"acknowledged": True, "status": "trigger_not_active"}}
        payload = body.get("payload") if isinstance(body.get("payload"), dict) else {}
        for subscriber in subscribers:
            self.subscribers.setdefault(subscriber, {"subscriberId": subscriber})
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

    def _recipients(self, given: Any) -> list[str]:
        """Who a trigger's `to` names: a subscriber id, a subscriber object (upserted), a
        topic `{type: "Topic", topicKey}` (each of its subscribers gets their own run: docs
        platform/concepts/topics, "A separate workflow event is created for each
        subscriber"), or an array of these; each subscriber once."""
        found: list[str] = []
        for recipient in given if isinstance(given, list) else [given]:
            if isinstance(recipient, dict) and recipient.get("type") == "Topic":
                found += self.topics.get(str(recipient.get("topicKey")), [])
                continue
            if isinstance(recipient, dict) and recipient.get("subscriberId"):
                self._store_subscriber(recipient)
                recipient = recipient["subscriberId"]
            if isinstance(recipient, str) and recipient:
                found.append(recipient)
        return list(dict.fromkeys(found))

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

    async def _credentials(self, request: web.Request) -> web.Response:
        """`PUT /v1/subscribers/{id}/credentials` `{providerId, credentials: {deviceTokens},
        integrationIdentifier?}` (apps/api/src/app/subscribers/subscribers.controller.ts and
        dtos/update-subscriber-channel-request.dto.ts, 74a2e9a): the subscriber's channel for
        that provider, its device tokens replaced."""
        found = self.subscribers.get(request.match_info["id"])
        if found is None:
            return _error(404, "Subscriber not found", request.path)
        body = await self._body(request)
        provider, credentials = body.get("providerId"), body.get("credentials")
        if not isinstance(provider, str) or not isinstance(credentials, dict):
            raise ValueError("providerId and credentials must be given")
        channels = [c for c in found.get("channels") or [] if c.get("providerId") != provider]
        channels.append({"providerId": provider, "credentials": dict(credentials)})
        found["channels"] = channels
        return web.json_response({"data": found})

    async def _get_subscriber(self, request: web.Request) -> web.Response:
        found = self.subscribers.get(request.match_info["id"])
        if found is None:
            return _error(404, "Subscriber not found", request.path)
        return web.json_response({"data": found})

    # -- topics and the in-app feed ------------------------------------------------------

    async def _create_topic(self, request: web.Request) -> web.Response:
        """`POST /v1/topics` `{key, name}`: 201 `{_id, key}`, and 409 Conflict for a key the
        environment has already (apps/api/src/app/topics/use-cases/create-topic/
        create-topic.use-case.ts and topics.controller.ts `createTopic`, novuhq/novu 74a2e9a)."""
        body = await self._body(request)
        key = body.get("key")
        if not isinstance(key, str) or not key or not isinstance(body.get("name"), str):
            raise ValueError("key and name should not be empty")
        if key in self.topics:
            message = f"Topic exists with key {key} in the environment {ENVIRONMENT} of the "
            return _error(409, message + f"organization {ORGANIZATION}", request.path)
        self.topics[key] = []
        return web.json_response({"data": {"_id": f"topic-{key}", "key": key}}, status=201)

    async def _get_topic(self, request: web.Request) -> web.Response:
        """`GET /v1/topics/{key}`: TopicDto, `subscribers` being the members' subscriber ids
        (get-topic.use-case.ts, TopicRepository.findTopic, 74a2e9a); 404 when there is none."""
        key = request.match_info["key"]
        if key not in self.topics:
            return _error(404, f"Topic not found for id {key} in the environment", request.path)
        topic = {"_id": f"topic-{key}", "key": key, "name": key, "subscribers": self.topics[key]}
        return web.json_response({"data": topic})

    def _topic_ids(self, body: JSON) -> list[str]:
        given = body.get("subscribers")
        if not isinstance(given, list) or not all(isinstance(s, str) for s in given):
            raise ValueError("subscribers must be an array")
        return list(given)

    async def _add_to_topic(self, request: web.Request) -> web.Response:
        """`POST /v1/topics/{key}/subscribers` `{subscribers: [ids]}`: the known ones join
        (once), the unknown ones come back under `failed.notFound`."""
        key = request.match_info["key"]
        if key not in self.topics:
            return _error(404, f"Topic with key {key} not found", request.path)
        given = self._topic_ids(await self._body(request))
        known = [s for s in dict.fromkeys(given) if s in self.subscribers]
        members = self.topics[key]
        members += [s for s in known if s not in members]
        missing = [s for s in given if s not in self.subscribers]
        answer = {"succeeded": known} | ({"failed": {"notFound": missing}} if missing else {})
        return web.json_response({"data": answer})

    async def _remove_from_topic(self, request: web.Request) -> web.Response:
        """`POST /v1/topics/{key}/subscribers/removal` `{subscribers: [ids]}` (IsArray,
        IsDefined): 204 No Content, whoever of them was in it leaves (topics.controller.ts
        `removeSubscribers`, remove-subscribers.use-case.ts, 74a2e9a)."""
        gone = set(self._topic_ids(await self._body(request)))
        key = request.match_info["key"]
        self.topics[key] = [s for s in self.topics.get(key, []) if s not in gone]
        return web.Response(status=204)

    async def _feed(self, request: web.Request) -> web.Response:
        """`GET /v1/subscribers/{id}/notifications/feed?page=&limit=` (subscribers.controller.ts
        `getNotificationsFeed`, get-notifications-feed.usecase.ts, 74a2e9a): newest first,
        `limit` 1-100 (default 10), answered whole as {data, totalCount, hasMore, pageSize,
        page}; Novu caps `totalCount` at `limit` and gives `pageSize` as the limit asked. An
        unknown subscriber is a 400 (ApiException)."""
        try:
            page = int(request.query.get("page", "0"))
            limit = int(request.query.get("limit", "10"))
        except ValueError:
            raise ValueError("page and limit must be numbers") from None
        if page < 0 or not 1 <= limit <= 100:
            raise ValueError("limit must not be greater than 100")
        subscriber = request.match_info["id"]
        if subscriber not in self.subscribers:
            message = f"Subscriber not found for this environment with the id: {subscriber}."
            return _error(400, message, request.path)
        items = list(reversed(self.feed.get(subscriber, [])))
        shown = items[page * limit : (page + 1) * limit]
        rest = len(items) - page * limit
        return web.json_response(
            {
                "data": shown,
                "totalCount": min(rest, limit) if shown else 0,
                "hasMore": len(shown) < rest,
                "pageSize": limit,
                "page": page,
            }
        )

    def _messages_of(self, request: web.Request) -> list[JSON]:
        subscriber = request.match_info["id"]
        if subscriber not in self.subscribers:
            raise LookupError(f"Subscriber {subscriber} not found")
        return self.feed.get(subscriber, [])

    async def _mark_as(self, request: web.Request) -> web.Response:
        """`POST /v1/subscribers/{id}/messages/mark-as` `{messageId: id | [ids], markAs}`
        (MessageMarkAsRequestDto: markAs one of read, seen, unread, unseen; an empty messageId
        is a 400; mark-message-as-by-mark.usecase.ts, 74a2e9a): only that subscriber's messages
        change (the update filters on `_subscriberId`); 201 with the messages named."""
        body = await self._body(request)
        given = body.get("messageId")
        ids = [given] if isinstance(given, str) else given
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise ValueError("messageId is required")
        if body.get("markAs") not in MARKS:
            raise ValueError(f"markAs must be one of the following values: {', '.join(MARKS)}")
        try:
            messages = self._messages_of(request)
        except LookupError as exc:
            return _error(404, str(exc), request.path)
        named = [m for m in messages if m["_id"] in ids]
        for message in named:
            _mark(message, str(body["markAs"]))
        return web.json_response({"data": named}, status=201)

    async def _mark_all(self, request: web.Request) -> web.Response:
        """`POST /v1/subscribers/{id}/messages/mark-all` `{markAs}`: 201 with how many changed
        (mark-all-messages-as.usecase.ts returns `modified`; 404 for an unknown subscriber)."""
        body = await self._body(request)
        if body.get("markAs") not in MARKS:
            raise ValueError(f"markAs must be one of the following values: {', '.join(MARKS)}")
        try:
            messages = self._messages_of(request)
        except LookupError as exc:
            return _error(404, str(exc), request.path)
        changed = sum(_mark(message, str(body["markAs"])) for message in messages)
        return web.json_response({"data": changed}, status=201)

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
            if kind == "delay" and controls.get("type") not in ("regular", "timed", "dynamic"):
                # delayControlZodSchema (libs/application-generic/src/schemas/control/
                # delay-control.schema.ts, 10fe646) is a union discriminated by `type`.
                raise ValueError("a delay's type must be regular, timed or dynamic")
            regular = kind == "delay" and controls.get("type") == "regular"
            if regular and not (
                isinstance(controls.get("amount"), int)
                and controls["amount"] >= 1
                and controls.get("unit") in DELAY_UNITS
            ):
                # delayControlZodSchema: a regular delay needs `amount` (a number, at least 1)
                # and `unit` (TimeUnitEnum).
                raise ValueError("a regular delay needs amount >= 1 and a unit")
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
