"""The one request validator reads each vendor's spec the way its service does, and every
stand-in refuses what its vendor's spec refuses. Each test quotes the spec rule it checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.sandbox import calcom, telegram, whatsapp
from gateway.sandbox.calcom import VERSIONS, CalcomSandbox
from gateway.sandbox.chatwoot import ChatwootSandbox
from gateway.sandbox.spec import (
    PLAIN,
    Reading,
    Request,
    Spec,
    Violation,
    bot_api_schema,
    load_spec,
    openapi_from_bot_api,
    request_problems,
)
from gateway.sandbox.telegram import TelegramSandbox, Upload
from gateway.sandbox.whatsapp import WhatsAppSandbox
from tests.conftest import CONTRACTS

JSON = dict[str, Any]
ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
CAL_KEY = "cal_test_sandbox_key_0123456789"
BOT_TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvw"
NUMBER = "106540352242922"


def vendor_spec(fixture: str, name: str) -> Any:
    """A fixture `fixture` giving the vendor spec `name`, or skipping where it is absent."""

    def load() -> Spec:
        path = CONTRACTS / name
        if not path.is_file():
            pytest.skip(f"needs the vendor spec at ../shared/contracts/{name} (absent)")
        return load_spec(path)

    return pytest.fixture(load, name=fixture)


cal = vendor_spec("cal", "calcom-v2.openapi.json")
meta = vendor_spec("meta", "whatsapp-cloud.openapi.json")
chatwoot = vendor_spec("chatwoot", "chatwoot.openapi.json")
bot_api = vendor_spec("bot_api", "telegram-bot-api.json")


def text_message(**extra: Any) -> JSON:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "4915112345678",
        "type": "text",
        "text": {"body": "Hello"},
        **extra,
    }


def buttons_message(*titles: str) -> JSON:
    listed = [{"type": "reply", "reply": {"id": title, "title": title}} for title in titles]
    interactive = {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": listed}}
    message = {key: value for key, value in text_message().items() if key != "text"}
    return message | {"type": "interactive", "interactive": interactive}


def found(problems: list[Violation]) -> list[tuple[tuple[str | int, ...], str]]:
    return [(problem.path, problem.keyword) for problem in problems]


# -- the validator, keyword by keyword ------------------------------------------------------


def test_required_properties(chatwoot: Spec) -> None:
    """chatwoot `conversation_message_create_payload`: `"required": ["content"]`."""
    template = "/api/v1/accounts/{account_id}/conversations/{conversation_id}/messages"
    problems = chatwoot.check_body("POST", template, {"message_type": "outgoing"})
    assert found(problems) == [(("content",), "required")]
    assert problems[0].describe("body") == "body: content is required"
    assert chatwoot.check_body("POST", template, {"content": "Hello"}) == []


def test_types(cal: Spec) -> None:
    """calcom `ReserveSlotInput_2024_09_04.eventTypeId`: `"type": "number"`; `slotStart`:
    `"type": "string"`."""
    body = {"eventTypeId": "haircut", "slotStart": 1}
    problems = cal.check_body("POST", "/v2/slots/reservations", body)
    assert found(problems) == [(("eventTypeId",), "type"), (("slotStart",), "type")]
    assert problems[0].describe("body") == "body.eventTypeId: must be number"


def test_type_lists_and_nullable() -> None:
    """OpenAPI 3.1 (chatwoot `message.source_id`): `"type": ["string", "null"]`; OpenAPI 3.0
    (calcom `Routing.responseId`): `"type": "number", "nullable": true`."""
    spec = Spec({})
    either = {"type": ["string", "null"]}
    assert spec.problems(None, either) == spec.problems("x", either) == []
    assert spec.problems(1, either)[0].describe("source_id") == "source_id: must be string or null"
    assert spec.problems(None, {"type": "number", "nullable": True}) == []
    assert found(spec.problems(None, {"type": "number"})) == [((), "type")]


def test_enums(chatwoot: Spec) -> None:
    """chatwoot `conversation_message_create_payload.message_type`: `"enum": ["outgoing",
    "incoming"]`."""
    template = "/api/v1/accounts/{account_id}/conversations/{conversation_id}/messages"
    problems = chatwoot.check_body("POST", template, {"content": "x", "message_type": "note"})
    assert found(problems) == [(("message_type",), "enum")]
    assert "'note' is not one of ['outgoing', 'incoming']" in problems[0].describe("body")


def test_all_of_is_merged_before_additional_properties(meta: Spec) -> None:
    """whatsapp `TextMessage`: `allOf: [BaseMessageProperties, {additionalProperties: false,
    properties: {type, text}}]`, and BaseMessageProperties requires `to`. Meta accepts `to`
    (its own examples carry it): the branches are one object, closed to anything else."""
    assert meta.problems(text_message(), {"$ref": "Message"}) == []
    problems = meta.problems(text_message(colour="red"), {"$ref": "Message"})
    assert found(problems) == [(("colour",), "additionalProperties")]
    assert problems[0].describe("message") == "message: unknown property colour"
    nested = meta.problems(text_message(text={"body": "Hi", "bold": True}), {"$ref": "Message"})
    assert [p.describe("message") for p in nested] == ["message.text: unknown property bold"]


def test_additional_properties_given_a_schema() -> None:
    """JSON Schema `additionalProperties: {schema}`: every other property must fit it."""
    schema = {
        "type": "object",
        "properties": {"id": {}},
        "additionalProperties": {"type": "string"},
    }
    assert Spec({}).problems({"id": 1, "note": "ok"}, schema) == []
    assert found(Spec({}).problems({"id": 1, "count": 2}, schema)) == [(("count",), "type")]


def test_nested_arrays_and_their_limits(meta: Spec) -> None:
    """whatsapp `ActionObject` (reply buttons): `buttons` has `"minItems": 1, "maxItems": 3`,
    each `reply.title` `"maxLength": 20`."""

    def problems(*titles: str) -> list[str]:
        message = buttons_message(*titles)
        return [p.describe("message") for p in meta.problems(message, {"$ref": "Message"})]

    assert problems("Yes", "No") == []
    assert problems("A title longer than twenty") == [
        "message.interactive.action.buttons[0].reply.title: longer than 20 characters"
    ]
    assert "message.interactive.action.buttons: more than 3 items" in problems("a", "b", "c", "d")
    assert "message.interactive.action.buttons: fewer than 1 items" in problems()


def test_a_discriminator_picks_its_branch(meta: Spec) -> None:
    """whatsapp `Message`: `oneOf` with `"discriminator": {"propertyName": "type", "mapping":
    {"image": "#/components/schemas/ImageMessage", ...}}`; ImageMessage requires `image`."""
    message = text_message(type="image")
    assert found(meta.problems(message, {"$ref": "Message"})) == [
        (("text",), "additionalProperties"),
        (("image",), "required"),
    ]


def test_one_of_takes_any_fitting_branch_and_reports_the_closest_miss(bot_api: Spec) -> None:
    """Bot API `sendMessage.reply_markup`: "InlineKeyboardMarkup or ReplyKeyboardMarkup or
    ReplyKeyboardRemove or ForceReply"; `InlineKeyboardButton.text` is required."""
    schema = bot_api.body_schema("POST", "/bot{token}/sendMessage")
    assert schema is not None
    markup = schema["properties"]["reply_markup"]
    assert bot_api.problems({"remove_keyboard": True}, markup) == []
    problems = bot_api.problems({"inline_keyboard": [[{"callback_data": "x"}]]}, markup)
    assert found(problems) == [(("inline_keyboard", 0, 0, "text"), "required")]
    assert (
        problems[0].describe("reply_markup")
        == "reply_markup.inline_keyboard[0][0]: text is required"
    )


def test_patterns_and_the_ones_vendors_do_not_apply(meta: Spec) -> None:
    """whatsapp `TemplateComponent.index`: `"pattern": "^[2-6, 11-14]$"`, yet `"example": "0"`
    and "Position index of the button (0-9)": Meta does not apply that pattern."""
    button = {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": []}
    problems = meta.problems(button, {"$ref": "TemplateComponent"}, PLAIN)
    assert found(problems) == [(("index",), "pattern")]
    assert "does not match '^[2-6, 11-14]$'" in problems[0].describe("button")
    assert meta.problems(button, {"$ref": "TemplateComponent"}, whatsapp._META_READING) == []


def test_a_pattern_that_names_a_constant(cal: Spec) -> None:
    """calcom `ScheduleAvailabilityInput_2024_06_11.startTime`: `"pattern": "TIME_FORMAT_HH_MM"`,
    which is `@Matches(TIME_FORMAT_HH_MM)` with `/^([01]\\d|2[0-3]):([0-5]\\d)$/` in Cal.com."""
    schema = {"$ref": "ScheduleAvailabilityInput_2024_06_11"}
    day = {"days": ["Monday"], "startTime": "09:00", "endTime": "18:00"}
    assert cal.problems(day, schema, calcom._GLOBAL_PIPE) == []
    late = cal.problems(day | {"endTime": "24:00"}, schema, calcom._GLOBAL_PIPE)
    assert found(late) == [(("endTime",), "pattern")]
    assert [error.as_json()["constraints"] for error in calcom._class_validator(late, day)] == [
        {"matches": "endTime must be a valid time format HH:MM"}
    ]


def test_an_enum_beside_an_array_is_each_items(cal: Spec) -> None:
    """calcom `ScheduleAvailabilityInput_2024_06_11.days`: `{"type": "array", "enum": [Monday,
    ...], "items": {...}}`, NestJS's rendering of `@IsIn(WEEK_DAYS, { each: true })`."""
    schema = {"$ref": "ScheduleAvailabilityInput_2024_06_11"}

    def enums(days: list[str], reading: Reading) -> list[tuple[str | int, ...]]:
        day = {"days": days, "startTime": "09:00", "endTime": "18:00"}
        return [p.path for p in cal.problems(day, schema, reading) if p.keyword == "enum"]

    # Read as written, the array itself would have to be a weekday: no list ever is.
    assert enums(["Monday"], PLAIN) == [("days",)]
    assert enums(["Monday"], calcom._GLOBAL_PIPE) == []
    assert ("days", 1) in enums(["Monday", "Funday"], calcom._GLOBAL_PIPE)


def test_class_validator_reading_of_cal_com(cal: Spec) -> None:
    """calcom `CreateBookingInput_2024_08_13`: `attendee` is `allOf: [CreateBookingAttendee]`
    (which declares `name`, `timeZone`, ...), `lengthInMinutes` is optional, and `location` is
    `oneOf` the location inputs. CreateBookingInputPipe forbids unknown properties, at every
    level; `@IsOptional()` skips null; the location validator takes any string."""
    body = {
        "start": "2026-03-30T08:00:00Z",
        "eventTypeId": 1,
        "attendee": {"name": "C", "timeZone": "Europe/Berlin", "phone": "+49"},
        "lengthInMinutes": None,
        "location": "Salon, Main St 1",
    }
    schema = cal.body_schema("POST", "/v2/bookings")
    assert schema is not None
    problems = cal.problems(body, schema, calcom._BOOKING_PIPE)
    assert found(problems) == [(("attendee", "phone"), "additionalProperties")]
    assert cal.problems(body, schema, calcom._GLOBAL_PIPE) == []  # the global pipe drops it
    errors = [error.as_json() for error in calcom._class_validator(problems, body)]
    assert errors[0]["property"] == "attendee"
    assert errors[0]["children"][0]["constraints"] == {
        "whitelistValidation": "property phone should not exist"
    }
    located = body | {"attendee": {"name": "C", "timeZone": "UTC"}, "location": 7}
    assert found(cal.problems(located, schema, calcom._GLOBAL_PIPE)) == [(("location",), "oneOf")]


def test_cal_com_words_violations_as_class_validator_errors() -> None:
    """class-validator (behind Cal.com's pipes): a nested object's errors are the `children` of
    its property's error, each with its `constraints`; Cal.com reports an array item's errors
    as the array's."""
    body = {"hosts": [{"userId": "x", "mandatory": 1}], "location": 7}
    problems = [
        Violation(("hosts", 0, "userId"), "type", "x", {"type": "number"}),
        Violation(("hosts", 0, "mandatory"), "type", 1, {"type": "boolean"}),
        Violation(("location",), "oneOf", 7, {}),
    ]
    errors = [error.as_json() for error in calcom._class_validator(problems, body)]
    assert [(e["property"], e["value"], e["constraints"]) for e in errors] == [
        ("hosts", body["hosts"], {}),
        ("location", 7, {"isObject": "location is not valid"}),
    ]
    assert [(c["property"], c["constraints"]) for c in errors[0]["children"]] == [
        ("userId", {"isNumber": "userId must be a number conforming to the specified constraints"}),
        ("mandatory", {"isBoolean": "mandatory must be a boolean value"}),
    ]


def test_uploaded_files(bot_api: Spec) -> None:
    """Bot API `sendDocument.document`: "InputFile or String" (a file posted as
    multipart/form-data, or a file_id / URL)."""
    reading = telegram._BOT_API_READING
    template = "/bot{token}/sendDocument"
    upload = Upload("price.pdf", "application/pdf", b"%PDF")
    assert bot_api.check_body("POST", template, {"chat_id": 1, "document": upload}, reading) == []
    assert (
        bot_api.check_body("POST", template, {"chat_id": 1, "document": "file-id"}, reading) == []
    )
    problems = bot_api.check_body("POST", template, {"chat_id": 1, "document": 5}, reading)
    assert found(problems) == [(("document",), "format")]
    assert problems[0].describe("") == "document: must be an uploaded file"


def test_query_strings(cal: Spec) -> None:
    """calcom `GET /v2/bookings`: `status` is an array of `enum: [upcoming, recurring, past,
    cancelled, unconfirmed]` (sent comma-separated), `take` is a number; `GET /v2/slots`
    requires `start` and `end` ("ISO 8601")."""
    assert cal.check_query("GET", "/v2/bookings", {"status": "upcoming,past", "take": "10"}) == []
    wrong = cal.check_query("GET", "/v2/bookings", {"status": "upcoming,accepted", "take": "ten"})
    assert found(wrong) == [(("status", 1), "enum"), (("take",), "type")]
    missing = cal.check_query("GET", "/v2/slots", {"eventTypeId": "1"})
    assert found(missing) == [(("start",), "required"), (("end",), "required")]
    assert "ISO 8601" in missing[0].schema["description"]
    assert cal.check_query("GET", "/v2/unknown", {"a": "b"}) == []


def test_integer_query_values() -> None:
    """OpenAPI: a query parameter's `schema` says how its string is read."""
    spec = Spec(
        {
            "paths": {
                "/items": {
                    "get": {
                        "parameters": [
                            {"in": "path", "name": "id", "schema": {"type": "integer"}},
                            {"in": "query", "name": "page", "schema": {"type": "integer"}},
                        ]
                    }
                }
            }
        }
    )
    assert spec.check_query("GET", "/items", {"page": "2"}) == []
    assert found(spec.check_query("GET", "/items", {"page": "2.5"})) == [(("page",), "type")]


def test_operations_without_a_json_body(chatwoot: Spec) -> None:
    """chatwoot `GET .../conversations/{conversation_id}/messages` has no request body."""
    template = "/api/v1/accounts/{account_id}/conversations/{conversation_id}/messages"
    assert chatwoot.body_schema("GET", template) is None
    assert chatwoot.check_body("GET", template, {"anything": 1}) == []


def test_the_bot_api_file_becomes_openapi() -> None:
    """Bot API file: a method's `fields` have `types` ("Integer", "Array of Array of X", a type
    name) and `required`; a type with `subtypes` is one of them."""
    data = {
        "methods": {
            "send": {
                "fields": [
                    {"name": "to", "types": ["Integer", "String"], "required": True},
                    {"name": "rows", "types": ["Array of Array of Cell"], "required": False},
                    {"name": "shape", "types": ["Shape"], "required": False},
                    {"name": "other", "types": ["Undescribed"], "required": False},
                ]
            },
            "getMe": {},
        },
        "types": {
            "Cell": {"fields": [{"name": "text", "types": ["String"], "required": True}]},
            "Shape": {"subtypes": ["Cell"]},
        },
    }
    spec = Spec(openapi_from_bot_api(data))
    assert set(spec.paths) == {"/bot{token}/send", "/bot{token}/getMe"}
    params = spec.body_schema("POST", "/bot{token}/send")
    assert params is not None
    assert params["required"] == ["to"]
    assert params["additionalProperties"] is False
    assert params["properties"]["to"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert params["properties"]["other"] == {"type": "object"}
    call = {"to": 1, "rows": [[{"text": "a"}]], "shape": {"text": "b"}, "other": {}}
    assert spec.check_body("POST", "/bot{token}/send", call) == []
    bad = {"to": 1, "rows": [[{}]], "shape": {}, "colour": 1}
    assert found(spec.check_body("POST", "/bot{token}/send", bad)) == [
        (("colour",), "additionalProperties"),
        (("rows", 0, 0, "text"), "required"),
        (("shape", "text"), "required"),
    ]
    assert bot_api_schema(["Array of Boolean"]) == {"type": "array", "items": {"type": "boolean"}}


def test_unknown_types_and_refs_accept_anything() -> None:
    """OpenAPI leaves a schema without `type` open; a `type` the validator does not know is
    not guessed at."""
    spec = Spec({})
    assert spec.problems(5, {"$ref": "#/components/schemas/Missing"}) == []
    assert spec.problems(5, {"type": "file"}) == []
    implied = spec.problems([], {"properties": {"id": {}}})
    assert [p.describe("body") for p in implied] == ["body: must be object"]


def test_load_spec_reads_each_format_once(tmp_path: Path) -> None:
    openapi = tmp_path / "openapi.json"
    openapi.write_text('{"openapi": "3.0.0", "paths": {"/a": {"get": {}}}}', encoding="utf-8")
    bot = tmp_path / "bot.json"
    bot.write_text('{"methods": {"getMe": {}}, "types": {}}', encoding="utf-8")
    assert set(load_spec(openapi).paths) == {"/a"}
    assert set(load_spec(bot).paths) == {"/bot{token}/getMe"}
    assert load_spec(bot) is load_spec(bot)


def test_readings_default_to_the_spec_as_written() -> None:
    assert Reading() == PLAIN
    assert not PLAIN.forbid_unknown
    assert PLAIN.is_file is None


# -- each stand-in refuses what its vendor's spec refuses ----------------------------------


async def test_calcom_refuses_a_reservation_the_spec_refuses(
    cal: Spec, aiohttp_client: ClientFactory
) -> None:
    """calcom `ReserveSlotInput_2024_09_04`: `"eventTypeId": {"type": "number"}`, answered by
    the global ValidationPipe as `{errors}` with "Bad Request Exception"."""
    sandbox = CalcomSandbox(CAL_KEY, CONTRACTS / "calcom-v2.openapi.json")
    client = await aiohttp_client(sandbox.app(), server_kwargs={"access_log": None})
    body = {"eventTypeId": "haircut", "slotStart": "2026-03-30T08:00:00Z"}
    headers = {"cal-api-version": VERSIONS["slots"]}
    response = await client.post("/v2/slots/reservations", json=body, headers=headers)
    error = (await response.json())["error"]
    assert (response.status, error["message"]) == (400, "Bad Request Exception")
    [refused] = error["details"]["errors"]
    assert (refused["property"], refused["constraints"]) == (
        "eventTypeId",
        {"isNumber": "eventTypeId must be a number conforming to the specified constraints"},
    )


async def test_calcom_checks_webhook_inputs_with_the_same_validator(
    aiohttp_client: ClientFactory,
) -> None:
    """CreateWebhookInputDto: `triggers` is `@IsEnum(WebhookTriggerEvents, { each: true })`;
    class-validator words an item's failure "each value in triggers must be one of the following
    values: ..."; UpdateWebhookInputDto (PartialType) requires nothing."""
    sandbox = CalcomSandbox(CAL_KEY)
    client = await aiohttp_client(sandbox.app(), server_kwargs={"access_log": None})
    auth = {"Authorization": f"Bearer {CAL_KEY}"}
    body = {"subscriberUrl": "http://hook", "active": True, "triggers": ["BOOKING_CONFIRMED"]}
    response = await client.post("/v2/webhooks", json=body, headers=auth)
    [refused] = (await response.json())["error"]["details"]["errors"]
    assert response.status == 400
    assert refused["property"] == "triggers"
    assert refused["constraints"]["isEnum"].startswith(
        "each value in triggers must be one of the following values: BOOKING_CANCELLED, "
    )
    made = body | {"triggers": ["BOOKING_CREATED"]}
    response = await client.post("/v2/webhooks", json=made, headers=auth)
    hook = (await response.json())["data"]["id"]
    response = await client.patch(f"/v2/webhooks/{hook}", json={"secret": "s"}, headers=auth)
    assert response.status == 200


async def test_telegram_refuses_a_call_the_spec_refuses(
    bot_api: Spec, aiohttp_client: ClientFactory
) -> None:
    """Bot API `MessageEntity`: `offset` ("Integer", required); `sendMessage.entities` is an
    "Array of MessageEntity"."""
    sandbox = TelegramSandbox(BOT_TOKEN, CONTRACTS / "telegram-bot-api.json")
    client = await aiohttp_client(sandbox.app(), server_kwargs={"access_log": None})
    params = {"chat_id": 1, "text": "Hello", "entities": [{"type": "bold", "length": 5}]}
    response = await client.post(f"/bot{BOT_TOKEN}/sendMessage", json=params)
    assert response.status == 400
    assert (await response.json())["description"] == (
        "Bad Request: can't parse entities: entities[0]: offset is required"
    )
    assert sandbox.sent == []


async def test_whatsapp_refuses_a_message_the_spec_refuses(
    meta: Spec, aiohttp_client: ClientFactory
) -> None:
    """whatsapp `ActionObject` reply button: `"title": {"type": "string", "maxLength": 20}`;
    refused as `(#100) Invalid parameter`."""
    sandbox = WhatsAppSandbox(
        "EAAG-token", NUMBER, "secret", CONTRACTS / "whatsapp-cloud.openapi.json"
    )
    client = await aiohttp_client(sandbox.app())
    message = buttons_message("Yes, book me in for that")
    response = await client.post(
        f"/v23.0/{NUMBER}/messages", json=message, headers={"Authorization": "Bearer EAAG-token"}
    )
    error = (await response.json())["error"]
    assert (response.status, error["code"]) == (400, 100)
    assert error["error_data"]["details"] == (
        "message.interactive.action.buttons[0].reply.title: longer than 20 characters"
    )
    assert sandbox.sent == []


async def test_chatwoot_refuses_a_body_the_spec_refuses(
    chatwoot: Spec, aiohttp_client: ClientFactory
) -> None:
    """chatwoot `contact_create_payload`: `"inbox_id": {"type": "number"}`, required."""
    sandbox = ChatwootSandbox("t", 1, CONTRACTS / "chatwoot.openapi.json")
    client = await aiohttp_client(sandbox.app())
    response = await client.post(
        "/api/v1/accounts/1/contacts",
        json={"name": "Clara", "inbox_id": "telegram"},
        headers={"api_access_token": "t"},
    )
    assert response.status == 422
    assert (await response.json())["message"] == "body.inbox_id: must be number"
    assert sandbox.contacts == {}


# -- whole requests, as the client tests check them -------------------------------------------

_SCHEDULES = Spec(
    {
        "paths": {
            "/v2/schedules/{scheduleId}": {
                "get": {
                    "parameters": [
                        {"name": "scheduleId", "in": "path", "schema": {"type": "number"}}
                    ]
                }
            },
            "/v2/schedules/default": {
                "get": {
                    "parameters": [
                        {
                            "name": "cal-api-version",
                            "in": "header",
                            "required": True,
                            "description": "Must be set to 2024-06-11",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "take",
                            "in": "query",
                            "schema": {"type": "number", "maximum": 250},
                        },
                    ]
                }
            },
            "/v2/schedules": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["name"],
                                    "properties": {
                                        "name": {"type": "string", "minLength": 1},
                                        "metadata": {"type": "object"},
                                    },
                                }
                            }
                        },
                    }
                }
            },
        }
    }
)
_JSON_BODY = {"content-type": "application/json"}


def test_a_request_finds_the_most_literal_operation_and_its_header_and_query_rules() -> None:
    """`/v2/schedules/default` is its own operation, not `{scheduleId}` = "default"; its
    `cal-api-version` must be the one the description names; a query value fits its bounds."""
    version = {"cal-api-version": "2024-06-11"}
    assert request_problems(_SCHEDULES, Request("GET", "/v2/schedules/default", version)) == []
    assert request_problems(_SCHEDULES, Request("GET", "/v2/schedules/default", {})) == [
        "GET /v2/schedules/default: missing required header cal-api-version"
    ]
    wrong = {"cal-api-version": "2024-08-13"}
    [problem] = request_problems(_SCHEDULES, Request("GET", "/v2/schedules/default", wrong))
    assert problem.endswith("the operation requires '2024-06-11'")
    over = Request("GET", "/v2/schedules/default", version, [("take", "500"), ("skip", "1")])
    assert request_problems(_SCHEDULES, over) == [
        "GET /v2/schedules/default: unknown query parameter 'skip'",
        "GET /v2/schedules/default query take: 500.0 > maximum 250",  # a number is a float
    ]
    assert request_problems(_SCHEDULES, Request("GET", "/v2/schedules/x1", {})) == [
        "GET /v2/schedules/x1 path scheduleId: 'x1' is not a number"
    ]
    assert request_problems(_SCHEDULES, Request("DELETE", "/v2/schedules", {})) == [
        "DELETE /v2/schedules: no such operation in the spec"
    ]


def test_a_request_body_is_read_strictly() -> None:
    """A body's declared object takes no other property (class-validator's
    `forbidNonWhitelisted`); an object without `properties` stays open; bounds apply."""
    fine = b'{"name": "Week", "metadata": {"any": 1}}'
    assert (
        request_problems(_SCHEDULES, Request("POST", "/v2/schedules", _JSON_BODY, (), fine)) == []
    )
    extra = b'{"name": "", "colour": "red"}'
    assert request_problems(
        _SCHEDULES, Request("POST", "/v2/schedules", _JSON_BODY, (), extra)
    ) == [
        "POST /v2/schedules body: property 'colour' is not in the schema",
        "POST /v2/schedules body.name: shorter than 1 characters",
    ]
    assert request_problems(_SCHEDULES, Request("POST", "/v2/schedules", {}, (), b"{}")) == [
        "POST /v2/schedules: body sent without Content-Type: application/json"
    ]
    assert request_problems(_SCHEDULES, Request("POST", "/v2/schedules", _JSON_BODY)) == [
        "POST /v2/schedules: missing request body"
    ]
    missing = Request("POST", "/v2/schedules", _JSON_BODY, (), b"{}")
    assert request_problems(_SCHEDULES, missing) == [
        "POST /v2/schedules body: missing required property 'name'"
    ]
