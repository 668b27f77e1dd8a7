"""How Cal.com validates a request: its spec read as class-validator reads it, the answers
its pipes give, and the create-booking rules that hold with or without the spec."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.sandbox.calcom.errors import _METADATA_RULE, _START_RULE, CalcomError
from gateway.sandbox.calcom.model import JSON, _instant, _is_int, _zone
from gateway.sandbox.spec import Reading, Violation

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+[1-9]\d{7,14}$")  # E.164; Cal.com uses libphonenumber


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# CreateBookingAttendee.language (language.ts), for when the spec file is absent.
_LANGUAGES = _words(
    "ar ca de es eu he id ja lv pl ro sr th vi az cs el es-419 fi hr it km nl pt ru sv tr zh-CN "
    "bg da en et fr hu iw ko no pt-BR sk ta uk zh-TW bn"
)


@dataclass(slots=True)
class _Violation:
    """A class-validator ValidationError: what Cal.com's validation pipes report."""

    property: str
    value: Any
    constraints: dict[str, str] = field(default_factory=dict)
    children: list[_Violation] = field(default_factory=list)

    def as_json(self) -> JSON:
        return {
            "value": self.value,
            "property": self.property,
            "children": [child.as_json() for child in self.children],
            "constraints": self.constraints,
        }


def _pipe_message(violations: Sequence[_Violation]) -> str:
    """CreateBookingInputPipe.formatErrors, odd spacing included."""
    return ", ".join(
        f"{v.property} property is wrong,{', '.join(v.constraints.values())} "
        f"{_pipe_message(v.children) if v.children else ''}"
        for v in violations
    )


# class-validator's type checks' names and messages, by OpenAPI type.
_TYPES: dict[str, tuple[str, str]] = {
    "string": ("isString", "must be a string"),
    "number": ("isNumber", "must be a number conforming to the specified constraints"),
    "integer": ("isInt", "must be an integer number"),
    "boolean": ("isBoolean", "must be a boolean value"),
    "array": ("isArray", "must be an array"),
    "object": ("isObject", "must be an object"),
}


def _enum_violation(name: str, value: Any, allowed: Iterable[Any]) -> _Violation:
    listed = ", ".join(str(item) for item in allowed)
    return _Violation(
        name, value, {"isEnum": f"{name} must be one of the following values: {listed}"}
    )


def _missing(name: str, schema: JSON) -> dict[str, str]:
    """The class-validator message a required-but-absent property gets, from its spec type."""
    kind = schema.get("type")
    if "ISO 8601" in schema.get("description", ""):
        return {"isDateString": f"{name} must be a valid ISO 8601 date string"}
    if kind in ("number", "integer"):
        return {"isNumber": f"{name} must be a number conforming to the specified constraints"}
    if kind == "boolean":
        return {"isBoolean": f"{name} must be a boolean value"}
    if kind == "array":
        return {"isArray": f"{name} must be an array"}
    if "properties" in schema:
        return {"nestedValidation": f"nested property {name} must be either object or array"}
    if kind == "object":
        return {"isObject": f"{name} must be an object"}
    return {"isString": f"{name} must be a string"}


# Patterns Cal.com's spec names by their constant (`@Matches(TIME_FORMAT_HH_MM, {message})` in
# packages/platform/types/schedules/schedules-2024-06-11/inputs/create-schedule.input.ts; the
# regex in ../constants.ts), with the message each carries.
_NAMED_PATTERNS = {
    "TIME_FORMAT_HH_MM": (r"^([01]\d|2[0-3]):([0-5]\d)$", "must be a valid time format HH:MM")
}
# How Cal.com reads its spec (class-validator behind Nest's pipes):
# - the global ValidationPipe has `whitelist: true` without `forbidNonWhitelisted`: unknown
#   properties are dropped (apps/api/v2/src/app.ts @ 03670679c00d600615e8df2bc64545bd51c61646);
#   CreateBookingInputPipe validates with `forbidNonWhitelisted: true`: they are refused
#   (packages/platform/types/bookings/2024-08-13/inputs/create-booking-input.pipe.ts);
# - `@IsOptional()` skips a property that is null or undefined (class-validator
#   src/decorator/common/IsOptional.ts @ 0853341cc36f53d54e5afb50800c3a4b169abd73);
# - a booking's `location` is checked by BookingInputLocationValidator_2024_08_13, which
#   takes any string "for backwards compatibility" and an object by its `type`
#   (bookings/2024-08-13/inputs/location.input.ts); the sandbox takes an object or a string
#   wherever the spec puts a union below the body;
# - an `enum` beside `type: array` is what NestJS's swagger writes for `@IsIn(values, { each:
#   true })` (e.g. ScheduleAvailabilityInput_2024_06_11.days): each item must be one of them.
_GLOBAL_PIPE = Reading(
    null_is_absent=True,
    loose_nested_unions=True,
    enum_per_item=True,
    named_patterns={name: regex for name, (regex, _) in _NAMED_PATTERNS.items()},
)
_BOOKING_PIPE = dataclasses.replace(_GLOBAL_PIPE, forbid_unknown=True)


def _class_validator(problems: Sequence[Violation], target: Any) -> list[_Violation]:
    """The spec's violations as class-validator's ValidationError tree: a nested object's
    errors are its property's children; an array's items' errors are the array's own. (Bodies
    and query strings are objects, so every violation names a property.)"""
    found: list[_Violation] = []
    for problem in problems:
        level, value, path = found, target, problem.path
        last = max(index for index, part in enumerate(path) if isinstance(part, str))
        for part in path[:last]:
            value = value[part]
            if isinstance(part, str):
                level = _node(level, part, value).children
        _node(level, problem.name, problem.value).constraints.setdefault(*_constraint(problem))
    return found


def _node(level: list[_Violation], name: str, value: Any) -> _Violation:
    """The error of property `name` at this level, added if it is not there yet."""
    node = next((error for error in level if error.property == name), None)
    if node is None:
        node = _Violation(name, value)
        level.append(node)
    return node


def _constraint(problem: Violation) -> tuple[str, str]:
    """class-validator's constraint name and message for one violation."""
    name, schema = problem.name, problem.schema
    if problem.keyword == "required":
        return next(iter(_missing(name, schema).items()))
    if problem.keyword == "additionalProperties":
        return "whitelistValidation", f"property {name} should not exist"
    if problem.keyword == "type":
        key, text = _TYPES[schema["type"]]
        return key, f"{name} {text}"
    if problem.keyword == "enum":
        # An item's check (`{ each: true }`) says so: class-validator prefixes "each value in "
        # (src/decorator/common/ValidateBy.ts @ 0853341cc36f53d54e5afb50800c3a4b169abd73).
        each = "each value in " if isinstance(problem.path[-1], int) else ""
        [(key, text)] = _enum_violation(name, problem.value, schema["enum"]).constraints.items()
        return key, each + text
    if problem.keyword == "pattern":
        return "matches", f"{name} {_NAMED_PATTERNS[schema['pattern']][1]}"
    return "isObject", f"{name} is not valid"  # a union that is neither object nor string


def _invalid(problems: Sequence[_Violation], target: JSON, *, pipe: bool) -> CalcomError:
    """A 400 as the pipe that validated it reports: one string (bookings) or the global
    ValidationPipe's `{errors}` with Nest's generic message (everything else)."""
    if pipe:
        return CalcomError(400, _pipe_message(problems))
    errors = [problem.as_json() | {"target": target} for problem in problems]
    return CalcomError(400, "Bad Request Exception", {"errors": errors})


def _booking_rules(body: JSON) -> list[_Violation]:
    """The create-booking rules that hold with or without the spec (create-booking.input.ts)."""
    problems: list[_Violation] = []
    if _instant(body.get("start")) is None:
        problems.append(_Violation("start", body.get("start"), _START_RULE))
    if "eventTypeId" in body and not _is_int(body["eventTypeId"]):
        problems.append(
            _Violation(
                "eventTypeId",
                body["eventTypeId"],
                {"isInt": "eventTypeId must be an integer number"},
            )
        )
    attendee = body.get("attendee")
    if not isinstance(attendee, dict):
        nested = {"nestedValidation": "nested property attendee must be either object or array"}
        return [*problems, _Violation("attendee", attendee, nested)]
    children: list[_Violation] = []
    if not isinstance(attendee.get("name"), str):
        children.append(
            _Violation("name", attendee.get("name"), {"isString": "name must be a string"})
        )
    if _zone(attendee.get("timeZone")) is None:
        tz = {"isTimeZone": "timeZone must be a valid IANA time-zone"}
        children.append(_Violation("timeZone", attendee.get("timeZone"), tz))
    email, phone = attendee.get("email"), attendee.get("phoneNumber")
    if email and not (isinstance(email, str) and _EMAIL.match(email)):
        children.append(_Violation("email", email, {"customValidation": "Invalid email format"}))
    if not (_given(email) or _given(phone)):
        rule = {
            "requireEmailOrPhone": "At least one contact method (email or phone number) must be "
            "provided"
        }
        children.append(_Violation("email", email, rule))
    if phone and not (isinstance(phone, str) and _PHONE.match(phone)):
        text = "Invalid phone number format. Please use international format."
        children.append(_Violation("phoneNumber", phone, {"customValidation": text}))
    if "language" in attendee and attendee["language"] not in _LANGUAGES:
        children.append(_enum_violation("language", attendee["language"], _LANGUAGES))
    if children:
        problems.append(_Violation("attendee", attendee, {}, children))
    metadata = body.get("metadata")
    if metadata is not None and not _metadata_ok(metadata):
        problems.append(_Violation("metadata", metadata, {"ValidateMetadata": _METADATA_RULE}))
    return problems


def _given(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _metadata_ok(metadata: Any) -> bool:
    """§1.6: at most 50 keys of at most 40 characters; strings of at most 500, numbers, booleans."""
    if not isinstance(metadata, dict) or len(metadata) > 50:
        return False
    for key, value in metadata.items():
        if len(key) > 40 or not isinstance(value, str | int | float | bool):
            return False
        if isinstance(value, str) and len(value) > 500:
            return False
    return True
