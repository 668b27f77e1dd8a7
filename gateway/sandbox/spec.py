"""One request validator for every sandbox: a vendor's spec, and what a request breaks in it.

A `Spec` holds a vendor's OpenAPI description (the Telegram Bot API file is turned into the
same form by `openapi_from_bot_api`). It checks a request body or query string against the
operation at a path template and returns `Violation`s (where, which schema keyword, the value);
each stand-in words them the way its vendor does. It reads the keywords the vendor specs in
`shared/contracts/` use in requests: `$ref` (to `components/schemas`), `type` (a list too, as
OpenAPI 3.1 writes it), `nullable`, `enum`, `required`, `properties`, `additionalProperties`,
`items`, `minItems`, `maxItems`, `maxLength`, `pattern`, `allOf`, `oneOf`, `anyOf`,
`discriminator` and `format: binary`.

Where the specs leave room, they are read as the vendors' services read them:

- `allOf` branches are merged before `additionalProperties: false` is applied. Meta's message
  schemas are `allOf: [BaseMessageProperties, {type, text, additionalProperties: false}]`;
  read branch by branch that would refuse every message's `to`, which Meta accepts (its own
  request examples in the same spec carry it). Cal.com and Chatwoot wrap single schemas in
  `allOf`, where both readings agree.
- `oneOf` and `anyOf` pass when at least one branch fits, and a failure reports the closest
  branch. A `discriminator` naming a mapped value picks that branch alone. NestJS writes
  overlapping alternatives: a plain Cal.com booking fits both `CreateBookingInput_2024_08_13`
  and `CreateRecurringBookingInput_2024_08_13` (its `recurrenceCount` is optional), so "exactly
  one" would refuse every valid booking.
- The rest is each vendor's own `Reading` (unknown properties, null, patterns, uploads).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JSON = dict[str, Any]
Where = tuple[str | int, ...]

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


@dataclass(frozen=True, slots=True)
class Reading:
    """How one vendor's service reads its spec where the spec leaves room.

    `forbid_unknown`: every object that declares properties refuses any other, whatever its
    `additionalProperties` says (class-validator's `forbidNonWhitelisted`).
    `null_is_absent`: a property sent as null counts as not sent (class-validator's
    `@IsOptional()` skips null and undefined).
    `loose_nested_unions`: a `oneOf` below the checked body only needs an object or a string.
    `enum_per_item`: an `enum` beside `type: array` lists what each item may be.
    `unchecked_patterns`: `pattern`s the vendor's service does not apply.
    `named_patterns`: `pattern`s that name a constant of the vendor's code, and its regex.
    `is_file`: what an uploaded file looks like, for `format: binary` (None: not checked).
    `check_bounds`: `minimum`, `maximum` and `minLength` are applied (the stand-ins leave them
    to their vendor-specific rules; a client's request is checked against them).
    """

    forbid_unknown: bool = False
    null_is_absent: bool = False
    loose_nested_unions: bool = False
    enum_per_item: bool = False
    unchecked_patterns: frozenset[str] = frozenset()
    named_patterns: Mapping[str, str] = field(default_factory=dict)
    is_file: Callable[[Any], bool] | None = None
    check_bounds: bool = False


PLAIN = Reading()  # the spec read as written
# A client's request, read strictly: an object that declares its properties takes no other
# (Cal.com validates bodies with class-validator's `forbidNonWhitelisted`, see
# `create-booking.input.pipe.ts`; objects without `properties`, such as `metadata`, stay open),
# and every bound is applied.
STRICT = Reading(forbid_unknown=True, check_bounds=True)


@dataclass(frozen=True, slots=True)
class Violation:
    """One way a value breaks its schema: the path to it below the checked value (property
    names and item indexes), the schema keyword it breaks, the value, and the schema broken.
    For `required` and `additionalProperties` the path ends with the property's name, and for
    `required` the schema is the missing property's own."""

    path: Where
    keyword: str
    value: Any
    schema: JSON

    @property
    def name(self) -> str:
        """The property it concerns (an array's name for its items), '' for the value itself."""
        return next((part for part in reversed(self.path) if isinstance(part, str)), "")

    def describe(self, root: str) -> str:
        """The problem in plain words, the checked value being called `root`."""
        schema, value = self.schema, self.value
        texts: dict[str, Callable[[], str]] = {
            "required": lambda: f"{self.name} is required",
            "additionalProperties": lambda: f"unknown property {self.name}",
            "type": lambda: f"must be {_expected(schema)}",
            "format": lambda: "must be an uploaded file",
            "enum": lambda: f"{value!r} is not one of {schema.get('enum')}",
            "maxLength": lambda: f"longer than {schema.get('maxLength')} characters",
            "maxItems": lambda: f"more than {schema.get('maxItems')} items",
            "minItems": lambda: f"fewer than {schema.get('minItems')} items",
            "minLength": lambda: f"shorter than {schema.get('minLength')} characters",
            "minimum": lambda: f"{value} < minimum {schema.get('minimum')}",
            "maximum": lambda: f"{value} > maximum {schema.get('maximum')}",
            "pattern": lambda: f"does not match {schema.get('pattern')!r}",
            "oneOf": lambda: "is neither an object nor a string",
        }
        named = self.keyword in ("required", "additionalProperties")
        return f"{_where(root, self.path[:-1] if named else self.path)}: {texts[self.keyword]()}"


def _expected(schema: JSON) -> str:
    kind = schema.get("type") or "object"  # no `type` but `properties`: an object
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def _where(root: str, path: Where) -> str:
    text = root
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


class Spec:
    """A vendor's OpenAPI description (or an empty one), and the checks of requests against it."""

    def __init__(self, data: JSON) -> None:
        self.paths: JSON = data.get("paths", {})
        self.schemas: JSON = data.get("components", {}).get("schemas", {})

    def operation(self, method: str, template: str) -> JSON | None:
        operation: JSON | None = self.paths.get(template, {}).get(method.lower())
        return operation

    def body_schema(self, method: str, template: str) -> JSON | None:
        """The operation's JSON request body schema, if the spec has one."""
        operation = self.operation(method, template) or {}
        content = (operation.get("requestBody") or {}).get("content") or {}
        schema: JSON | None = (content.get("application/json") or {}).get("schema")
        return schema

    def check_body(
        self, method: str, template: str, body: Any, reading: Reading = PLAIN
    ) -> list[Violation]:
        """What `body` breaks in the operation's JSON body schema (nothing when it has none)."""
        schema = self.body_schema(method, template)
        return [] if schema is None else self.problems(body, schema, reading)

    def check_query(
        self, method: str, template: str, query: Mapping[str, str], reading: Reading = PLAIN
    ) -> list[Violation]:
        """What a query string breaks in the operation's query parameters. A value is read as
        its schema's type; an array is a comma-separated list (Cal.com's list filters, §1.7 of
        calcom-novu-metabase.md). Unknown parameters are ignored, as query strings are."""
        problems: list[Violation] = []
        operation = self.operation(method, template) or {}
        for param in operation.get("parameters", []):
            if param.get("in") != "query":
                continue
            name = param["name"]
            # The parameter's description says what the value is (e.g. "ISO 8601").
            schema = self.resolve(param.get("schema", {})) | {
                "description": param.get("description", "")
            }
            raw = query.get(name)
            if raw is None:
                if param.get("required"):
                    problems.append(Violation((name,), "required", None, schema))
                continue
            problems += self._check(_from_query(raw, schema), schema, (name,), reading)
        return problems

    def problems(self, value: Any, schema: JSON, reading: Reading = PLAIN) -> list[Violation]:
        """What `value` breaks in `schema` (empty when it fits)."""
        return self._check(value, schema, (), reading)

    def resolve(self, schema: JSON) -> JSON:
        """The schema with its `$ref` followed and its `allOf` branches merged (see above)."""
        while "$ref" in schema:
            schema = self.schemas.get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
        if "allOf" not in schema:
            return schema
        merged: JSON = {key: value for key, value in schema.items() if key != "allOf"}
        for part in map(self.resolve, schema["allOf"]):
            for key, value in part.items():
                if key == "properties":
                    merged["properties"] = merged.get("properties", {}) | value
                elif key == "required":
                    merged["required"] = [*merged.get("required", []), *value]
                elif key == "additionalProperties" and value is False:
                    merged[key] = False
                else:
                    merged.setdefault(key, value)
        return merged

    # -- the checks -----------------------------------------------------------------------

    def _check(self, value: Any, schema: JSON, path: Where, reading: Reading) -> list[Violation]:
        schema = self.resolve(schema)
        if value is None and (schema.get("nullable") or not schema):
            return []
        union = "oneOf" in schema or "anyOf" in schema
        if union and (missed := self._union(value, schema, path, reading)):
            return missed
        if schema.get("format") == "binary" and reading.is_file is not None:
            return [] if reading.is_file(value) else [Violation(path, "format", value, schema)]
        kind = schema.get("type") or ("object" if "properties" in schema else None)
        kinds: list[str] = kind if isinstance(kind, list) else [kind] if kind else []
        if kinds and not any(_TYPES.get(k, _anything)(value) for k in kinds):
            return [Violation(path, "type", value, schema)]
        found = self._enum(value, schema, path, reading) if "enum" in schema else []
        if isinstance(value, str):
            found += self._string(value, schema, path, reading)
        if reading.check_bounds:
            found += _bounds(value, schema, path)
        if isinstance(value, list):
            found += self._array(value, schema, path, reading)
        if isinstance(value, dict):
            found += self._object(value, schema, path, reading)
        return found

    def _union(self, value: Any, schema: JSON, path: Where, reading: Reading) -> list[Violation]:
        """The branch that fits, or the closest miss (see above)."""
        if path and reading.loose_nested_unions:
            fits = isinstance(value, str | dict)
            return [] if fits else [Violation(path, "oneOf", value, schema)]
        branches: list[JSON] = schema.get("oneOf") or schema.get("anyOf") or []
        discriminator: JSON = schema.get("discriminator", {})
        named = value.get(discriminator.get("propertyName", "")) if isinstance(value, dict) else 0
        mapping: JSON = discriminator.get("mapping", {})
        if isinstance(named, str) and named in mapping:
            branches = [{"$ref": mapping[named]}]
        best: list[Violation] = []
        for branch in branches:
            missed = self._check(value, branch, path, reading)
            if not missed:
                return []
            if not best or len(missed) < len(best):
                best = missed
        return best

    def _enum(self, value: Any, schema: JSON, path: Where, reading: Reading) -> list[Violation]:
        allowed = schema["enum"]
        if reading.enum_per_item and isinstance(value, list):
            return [
                Violation((*path, index), "enum", item, schema)
                for index, item in enumerate(value)
                if item not in allowed
            ]
        return [] if value in allowed else [Violation(path, "enum", value, schema)]

    def _string(self, value: str, schema: JSON, path: Where, reading: Reading) -> list[Violation]:
        found: list[Violation] = []
        if len(value) > schema.get("maxLength", len(value)):
            found.append(Violation(path, "maxLength", value, schema))
        pattern: str = schema.get("pattern", "")
        regex = reading.named_patterns.get(pattern, pattern)
        if pattern and pattern not in reading.unchecked_patterns and not re.search(regex, value):
            found.append(Violation(path, "pattern", value, schema))
        return found

    def _array(
        self, value: list[Any], schema: JSON, path: Where, reading: Reading
    ) -> list[Violation]:
        found: list[Violation] = []
        if len(value) > schema.get("maxItems", len(value)):
            found.append(Violation(path, "maxItems", value, schema))
        if len(value) < schema.get("minItems", 0):
            found.append(Violation(path, "minItems", value, schema))
        for index, item in enumerate(value):
            found += self._check(item, schema.get("items", {}), (*path, index), reading)
        return found

    def _object(self, value: JSON, schema: JSON, path: Where, reading: Reading) -> list[Violation]:
        """Unknown properties first (in the body's order), then the declared ones in the
        spec's order: a missing required one, or what its value breaks."""
        properties: JSON = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        closed = extra is False or (reading.forbid_unknown and bool(properties))
        found: list[Violation] = []
        for name, item in value.items():
            if name in properties:
                continue
            if closed:
                found.append(Violation((*path, name), "additionalProperties", item, schema))
            elif isinstance(extra, dict):
                found += self._check(item, extra, (*path, name), reading)
        required = set(schema.get("required", []))
        for name, declared in properties.items():
            given = value.get(name) is not None if reading.null_is_absent else name in value
            if given:
                found += self._check(value[name], declared, (*path, name), reading)
            elif name in required:
                missing = self.resolve(declared)
                found.append(Violation((*path, name), "required", None, missing))
        return found


def _anything(_value: Any) -> bool:
    return True


def _bounds(value: Any, schema: JSON, path: Where) -> list[Violation]:
    """`minimum`, `maximum` (numbers) and `minLength` (strings)."""
    found: list[Violation] = []
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < schema.get("minimum", value):
            found.append(Violation(path, "minimum", value, schema))
        if value > schema.get("maximum", value):
            found.append(Violation(path, "maximum", value, schema))
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        found.append(Violation(path, "minLength", value, schema))
    return found


def _from_query(raw: str, schema: JSON) -> Any:
    """A query string value as the type its schema declares (left a string when it is not)."""
    kind = schema.get("type")
    if kind == "array":
        return [part for part in raw.split(",") if part]
    if kind in ("number", "integer"):
        try:
            return float(raw) if kind == "number" else int(raw)
        except ValueError:
            return raw
    return raw


# -- whole requests: what a client sends ----------------------------------------------------

_METHODS = ("get", "post", "put", "patch", "delete")
# Cal.com's operations say which `cal-api-version` they take in the header's description.
_MUST_BE = re.compile(r"Must be set to (\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True, slots=True)
class Request:
    """A request as a client sent it: `path` below the spec's paths' root, `headers` with
    lower-case names, the query's (name, value) pairs in order, and the body's bytes."""

    method: str
    path: str
    headers: Mapping[str, str]
    query: Sequence[tuple[str, str]] = ()
    content: bytes = b""


@dataclass(frozen=True, slots=True)
class _Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    spec: JSON


@functools.lru_cache(maxsize=8)
def _operations(spec: Spec) -> list[_Operation]:
    """Every operation, a path with more literal segments first (`/v2/schedules/default`
    before `/v2/schedules/{scheduleId}`)."""
    found: list[tuple[int, _Operation]] = []
    for template, item in spec.paths.items():
        regex = "^" + re.sub(r"\\\{([^}]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
        literal = sum(1 for part in template.split("/") if part and "{" not in part)
        for method, operation in item.items():
            if method in _METHODS:
                found.append(
                    (literal, _Operation(method.upper(), template, re.compile(regex), operation))
                )
    found.sort(key=lambda pair: -pair[0])
    return [operation for _, operation in found]


def request_problems(spec: Spec, request: Request, reading: Reading = STRICT) -> list[str]:
    """Everything about `request` the spec would not accept (empty when it conforms): the
    operation exists, path parameters fit their type, required headers are there (and
    `cal-api-version` has the value the operation says it must be set to), no query parameter
    is unknown or missing and each fits, and the JSON body fits the request schema."""
    where = f"{request.method} {request.path}"
    found = next(
        (
            (op, match.groupdict())
            for op in _operations(spec)
            if op.method == request.method.upper() and (match := op.pattern.match(request.path))
        ),
        None,
    )
    if found is None:
        return [f"{where}: no such operation in the spec"]
    operation, path_params = found
    problems: list[str] = []
    for param in operation.spec.get("parameters", []):
        name, location = param["name"], param["in"]
        if location == "path":
            raw = path_params.get(name, "")
            problems += _scalar(spec, param.get("schema", {}), raw, f"{where} path {name}", reading)
        elif location == "header":
            problems += _header(param, request.headers.get(name.lower()), where)
    problems += _query(spec, operation, request.query, where, reading)
    return problems + _body(spec, operation, request, where, reading)


def _header(param: JSON, value: str | None, where: str) -> list[str]:
    name = param["name"]
    if value is None:
        return [f"{where}: missing required header {name}"] if param.get("required") else []
    if name.lower() == "cal-api-version":
        match = _MUST_BE.search(param.get("description", ""))
        allowed = match.group(1) if match else param.get("schema", {}).get("default")
        if allowed and value != allowed:
            return [f"{where}: {name} is {value!r}, the operation requires {allowed!r}"]
    if name.lower() == "authorization" and not value.startswith("Bearer "):
        return [f"{where}: Authorization must be `Bearer <token>`"]
    return []


def _query(
    spec: Spec,
    operation: _Operation,
    pairs: Sequence[tuple[str, str]],
    where: str,
    reading: Reading,
) -> list[str]:
    declared = {p["name"]: p for p in operation.spec.get("parameters", []) if p["in"] == "query"}
    given: dict[str, list[str]] = {}
    for name, value in pairs:
        given.setdefault(name, []).append(value)
    problems = [
        f"{where}: unknown query parameter {name!r}" for name in given if name not in declared
    ]
    for name, param in declared.items():
        if name not in given:
            if param.get("required"):
                problems.append(f"{where}: missing required query parameter {name!r}")
            continue
        schema = spec.resolve(param.get("schema", {}))
        for value in given[name]:
            # Cal.com's list filters take comma-separated values (§1.7 of the contract).
            is_list = schema.get("type") == "array"
            parts = value.split(",") if is_list else [value]
            item = schema.get("items", {}) if is_list else schema
            for part in parts:
                problems += _scalar(spec, item, part, f"{where} query {name}", reading)
    return problems


def _body(
    spec: Spec, operation: _Operation, request: Request, where: str, reading: Reading
) -> list[str]:
    declared = operation.spec.get("requestBody")
    if declared is None:
        return [f"{where}: the operation takes no body"] if request.content else []
    if not request.content:
        return [f"{where}: missing request body"] if declared.get("required") else []
    media = declared.get("content", {}).get("application/json")
    if media is None:
        return [f"{where}: the operation does not take JSON"]
    if not request.headers.get("content-type", "").startswith("application/json"):
        return [f"{where}: body sent without Content-Type: application/json"]
    try:
        body = json.loads(request.content)
    except ValueError:
        return [f"{where}: body is not JSON"]
    found = spec.problems(body, media.get("schema", {}), reading)
    return [_said(problem, f"{where} body") for problem in found]


def _scalar(spec: Spec, schema: JSON, raw: str, where: str, reading: Reading) -> list[str]:
    """A path, query or header string against a scalar schema, read as that type."""
    schema = spec.resolve(schema)
    kind = schema.get("type")
    value: Any = raw
    if kind in ("number", "integer"):
        try:
            value = float(raw) if kind == "number" else int(raw)
        except ValueError:
            return [f"{where}: {raw!r} is not a {kind}"]
    elif kind == "boolean":
        if raw not in ("true", "false"):
            return [f"{where}: {raw!r} is not a boolean"]
        value = raw == "true"
    return [_said(problem, where) for problem in spec.problems(value, schema, reading)]


def _said(problem: Violation, where: str) -> str:
    """One violation as a line of a conformance report."""
    if problem.keyword == "additionalProperties":
        inside = _where(where, problem.path[:-1])
        return f"{inside}: property {problem.name!r} is not in the schema"
    if problem.keyword == "required":
        inside = _where(where, problem.path[:-1])
        return f"{inside}: missing required property {problem.name!r}"
    return problem.describe(where)


# -- the Telegram Bot API file ----------------------------------------------------------------

BOT_API_PATH = "/bot{token}/"  # + the method's name: where the Bot API serves it
_BOT_API_SCALARS: dict[str, JSON] = {
    "Integer": {"type": "integer"},
    "Float": {"type": "number"},
    "Boolean": {"type": "boolean"},
    "String": {"type": "string"},
    # OpenAPI describes an uploaded file as a binary string.
    "InputFile": {"type": "string", "format": "binary"},
}


def bot_api_schema(types: Iterable[str], known: Collection[str] = ()) -> JSON:
    """A field's schema from its Bot API types ("Integer", "Array of X", a type's name); any
    of them fits. A type the file does not describe (not in `known`) is any object."""
    branches: list[JSON] = []
    for expr in types:
        depth = 0
        while expr.startswith("Array of "):
            expr, depth = expr[len("Array of ") :], depth + 1
        item = _BOT_API_SCALARS.get(expr) or (
            {"$ref": f"#/components/schemas/{expr}"} if expr in known else {"type": "object"}
        )
        for _ in range(depth):
            item = {"type": "array", "items": item}
        branches.append(item)
    return branches[0] if len(branches) == 1 else {"anyOf": branches}


def openapi_from_bot_api(data: JSON) -> JSON:
    """The Bot API file (methods and types, each with fields of Bot API types; not OpenAPI) in
    OpenAPI form: a POST operation per method whose body is the method's parameters, no other
    parameter allowed; a component schema per type (a type with subtypes is any of them)."""
    types: dict[str, JSON] = data.get("types", {})

    def fields(entry: JSON, closed: bool) -> JSON:
        listed = entry.get("fields", [])
        return {
            "type": "object",
            "properties": {f["name"]: bot_api_schema(f["types"], types) for f in listed},
            "required": [f["name"] for f in listed if f["required"]],
            **({"additionalProperties": False} if closed else {}),
        }

    schemas = {
        name: {"anyOf": [bot_api_schema([sub], types) for sub in entry["subtypes"]]}
        if entry.get("subtypes")
        else fields(entry, closed=False)
        for name, entry in types.items()
    }
    paths = {
        BOT_API_PATH + name: {
            "post": {"requestBody": {"content": {"application/json": {"schema": fields(m, True)}}}}
        }
        for name, m in data.get("methods", {}).items()
    }
    return {"paths": paths, "components": {"schemas": schemas}}


@functools.lru_cache(maxsize=8)
def load_spec(path: Path) -> Spec:
    """A vendor's spec file: OpenAPI, or the Telegram Bot API file (which has `methods`)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return Spec(openapi_from_bot_api(data) if "methods" in data else data)
