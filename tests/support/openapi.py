"""Check requests against a vendor OpenAPI 3.0 spec: the subset the vendor specs here use.

`jsonschema` is not a dependency, so this is a compact validator for what the specs in
`shared/contracts/` contain: `$ref` (local), `type`, `nullable`, `enum`, `required`,
`properties`, `additionalProperties`, `items`, `allOf`, `oneOf`, `anyOf`, `minimum`, `maximum`,
`minLength`, `maxLength`, `pattern`. Per operation it checks the path and method exist, path
parameters fit their type, required headers are present (and `cal-api-version` has the value the
operation says it "must be set to"), no query parameter is unknown or missing, query values fit
their schema, and the JSON body fits the request schema.

Two choices, because the validator should reject what the real service rejects and nothing more:

- Request bodies are checked *strictly*: a property the schema does not declare is an error.
  Cal.com validates bodies with class-validator's `forbidNonWhitelisted` (see
  `create-booking.input.pipe.ts`), so an undeclared property is a 400 there too. Objects without
  `properties` (`metadata`, `bookingFieldsResponses`) stay open.
- `oneOf` passes when *at least one* branch fits. NestJS emits overlapping alternatives: a plain
  create-booking body fits both `CreateBookingInput_2024_08_13` and
  `CreateRecurringBookingInput_2024_08_13` (whose `recurrenceCount` is optional), so a strict
  "exactly one" would reject every valid booking.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx

JSON = dict[str, Any]
_METHODS = ("get", "post", "put", "patch", "delete")
_MUST_BE = re.compile(r"Must be set to (\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    spec: JSON
    literal_segments: int


@dataclass
class OpenAPISpec:
    data: JSON
    operations: list[Operation] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> OpenAPISpec:
        spec = cls(json.loads(path.read_text(encoding="utf-8")))
        for template, item in spec.data.get("paths", {}).items():
            regex = "^" + re.sub(r"\\\{([^}]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
            literal = sum(1 for part in template.split("/") if part and "{" not in part)
            for method, op in item.items():
                if method in _METHODS:
                    spec.operations.append(
                        Operation(method.upper(), template, re.compile(regex), op, literal)
                    )
        # Prefer `/v2/schedules/default` over `/v2/schedules/{scheduleId}`.
        spec.operations.sort(key=lambda op: -op.literal_segments)
        return spec

    # --- requests ------------------------------------------------------------------------------

    def find(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        for op in self.operations:
            if op.method == method.upper() and (match := op.pattern.match(path)):
                return op, match.groupdict()
        return None

    def request_problems(self, request: httpx.Request, *, prefix: str = "") -> list[str]:
        """Everything about `request` that the spec would not accept (empty when it conforms).
        `prefix` is the part of the URL path before the spec's paths (e.g. `/api`)."""
        path = request.url.path
        if prefix and path.startswith(prefix):
            path = path[len(prefix) :]
        where = f"{request.method} {path}"
        found = self.find(request.method, path)
        if found is None:
            return [f"{where}: no such operation in the spec"]
        op, path_params = found
        problems: list[str] = []
        params = op.spec.get("parameters", [])
        for param in params:
            name, location = param["name"], param["in"]
            schema = param.get("schema", {})
            if location == "path":
                problems += self._scalar(schema, path_params.get(name, ""), f"{where} path {name}")
            elif location == "header":
                value = request.headers.get(name)
                if value is None:
                    if param.get("required"):
                        problems.append(f"{where}: missing required header {name}")
                    continue
                problems += self._header(param, value, where)
        problems += self._query(op, request, where)
        problems += self._body(op, request, where)
        return problems

    def _header(self, param: JSON, value: str, where: str) -> list[str]:
        name = param["name"]
        if name.lower() == "cal-api-version":
            match = _MUST_BE.search(param.get("description", ""))
            allowed = match.group(1) if match else param.get("schema", {}).get("default")
            if allowed and value != allowed:
                return [f"{where}: {name} is {value!r}, the operation requires {allowed!r}"]
        if name.lower() == "authorization" and not value.startswith("Bearer "):
            return [f"{where}: Authorization must be `Bearer <token>`"]
        return []

    def _query(self, op: Operation, request: httpx.Request, where: str) -> list[str]:
        declared = {p["name"]: p for p in op.spec.get("parameters", []) if p["in"] == "query"}
        pairs = parse_qsl(request.url.query.decode(), keep_blank_values=True)
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
            schema = self.resolve(param.get("schema", {}))
            for value in given[name]:
                if schema.get("type") == "array":
                    # Cal.com's list filters take comma-separated values (§1.7 of the contract).
                    item = schema.get("items", {})
                    for part in value.split(","):
                        problems += self._scalar(item, part, f"{where} query {name}")
                else:
                    problems += self._scalar(schema, value, f"{where} query {name}")
        return problems

    def _body(self, op: Operation, request: httpx.Request, where: str) -> list[str]:
        body_spec = op.spec.get("requestBody")
        content = request.content
        if body_spec is None:
            return [f"{where}: the operation takes no body"] if content else []
        if not content:
            return [f"{where}: missing request body"] if body_spec.get("required") else []
        media = body_spec.get("content", {}).get("application/json")
        if media is None:
            return [f"{where}: the operation does not take JSON"]
        if not request.headers.get("content-type", "").startswith("application/json"):
            return [f"{where}: body sent without Content-Type: application/json"]
        try:
            body = json.loads(content)
        except ValueError:
            return [f"{where}: body is not JSON"]
        return self.validate(media.get("schema", {}), body, f"{where} body", strict=True)

    def _scalar(self, schema: JSON, raw: str, where: str) -> list[str]:
        """A path/query/header string against a scalar schema (decoded as that type)."""
        schema = self.resolve(schema)
        value: Any = raw
        kind = schema.get("type")
        if kind in ("number", "integer"):
            try:
                value = float(raw) if kind == "number" else int(raw)
            except ValueError:
                return [f"{where}: {raw!r} is not a {kind}"]
        elif kind == "boolean":
            if raw not in ("true", "false"):
                return [f"{where}: {raw!r} is not a boolean"]
            value = raw == "true"
        return self.validate(schema, value, where)

    # --- schemas -------------------------------------------------------------------------------

    def resolve(self, schema: JSON) -> JSON:
        while "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"only local $ref is supported: {ref}")
            node: Any = self.data
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            schema = node
        return schema

    def known_properties(self, schema: JSON) -> set[str] | None:
        """The properties an object schema declares, through `allOf`; None when it is open."""
        schema = self.resolve(schema)
        names: set[str] | None = None
        if "properties" in schema:
            names = set(schema["properties"])
        for part in schema.get("allOf", []):
            more = self.known_properties(part)
            if more is not None:
                names = (names or set()) | more
        if schema.get("additionalProperties") not in (None, False):
            return None
        return names

    def validate(self, schema: JSON, value: Any, where: str, *, strict: bool = False) -> list[str]:
        schema = self.resolve(schema)
        if value is None:
            if schema.get("nullable") or not schema:
                return []
            if "type" in schema:
                return [f"{where}: null is not allowed"]
        problems: list[str] = []
        for part in schema.get("allOf", []):
            problems += self.validate(part, value, where)  # strictness is checked below, merged
        for keyword in ("oneOf", "anyOf"):
            if keyword in schema:
                branches = [self.validate(b, value, where, strict=strict) for b in schema[keyword]]
                if all(branches):
                    best = min(branches, key=len)
                    problems.append(f"{where}: fits no {keyword} alternative; closest: {best[:3]}")
        kind = schema.get("type")
        if kind is not None and not _is_type(value, kind):
            return [*problems, f"{where}: {_short(value)} is not of type {kind}"]
        if "enum" in schema and value not in schema["enum"]:
            problems.append(f"{where}: {_short(value)} is not one of {schema['enum']}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                problems.append(f"{where}: {value} < minimum {schema['minimum']}")
            if "maximum" in schema and value > schema["maximum"]:
                problems.append(f"{where}: {value} > maximum {schema['maximum']}")
        if isinstance(value, str):
            if "minLength" in schema and len(value) < schema["minLength"]:
                problems.append(f"{where}: shorter than {schema['minLength']}")
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                problems.append(f"{where}: longer than {schema['maxLength']}")
            if "pattern" in schema and not re.search(schema["pattern"], value):
                problems.append(f"{where}: does not match {schema['pattern']!r}")
        if isinstance(value, list) and "items" in schema:
            for index, item in enumerate(value):
                problems += self.validate(schema["items"], item, f"{where}[{index}]", strict=strict)
        if isinstance(value, dict):
            problems += self._object(schema, value, where, strict)
        return problems

    def _object(self, schema: JSON, value: JSON, where: str, strict: bool) -> list[str]:
        problems = [
            f"{where}: missing required property {name!r}"
            for name in schema.get("required", [])
            if name not in value
        ]
        properties = schema.get("properties", {})
        for name, item in value.items():
            if name in properties:
                problems += self.validate(properties[name], item, f"{where}.{name}", strict=strict)
            elif isinstance(schema.get("additionalProperties"), dict):
                problems += self.validate(
                    schema["additionalProperties"], item, f"{where}.{name}", strict=strict
                )
        if strict or schema.get("additionalProperties") is False:
            known = self.known_properties(schema)
            if known is not None:
                problems += [
                    f"{where}: property {name!r} is not in the schema"
                    for name in value
                    if name not in known
                ]
        return problems


def _is_type(value: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
