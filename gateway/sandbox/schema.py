"""A vendor OpenAPI spec's schemas, read the way the vendors' services read them (the subset
the sandboxes need to refuse what the real service refuses)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

JSON = dict[str, Any]


class Schema:
    """The vendor spec's message schemas, read the way Meta's service reads them.

    The spec says `additionalProperties: false` inside one branch of an `allOf` (TextMessage is
    `allOf: [BaseMessageProperties, {type, text}]`); read literally that would refuse every
    message's `to`. The branches are merged first, then unknown properties are refused. `oneOf`
    picks the branch named by the `discriminator` when there is one, else any branch that fits.
    Template button `index` patterns are not checked: the spec's pattern refuses Meta's own
    example ("0").
    """

    def __init__(self, data: JSON) -> None:
        self.schemas: JSON = data.get("components", {}).get("schemas", {})
        self.paths: JSON = data.get("paths", {})

    def request_schema(self, method: str, template: str) -> JSON | None:
        """The JSON request body's schema of an operation, if the spec has one."""
        operation = self.paths.get(template, {}).get(method.lower()) or {}
        content = (operation.get("requestBody") or {}).get("content") or {}
        schema: JSON | None = (content.get("application/json") or {}).get("schema")
        return schema

    def resolve(self, schema: JSON) -> JSON:
        while "$ref" in schema:
            schema = self.schemas.get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
        if "allOf" in schema:
            merged: JSON = {"type": "object", "properties": {}, "required": []}
            for part in schema["allOf"]:
                part = self.resolve(part)
                merged["properties"] |= part.get("properties", {})
                merged["required"] += part.get("required", [])
                if part.get("additionalProperties") is False:
                    merged["additionalProperties"] = False
            return merged
        return schema

    def problems(self, value: Any, schema: JSON, where: str) -> list[str]:
        schema = self.resolve(schema)
        if "oneOf" in schema:
            options = schema["oneOf"]
            discriminator = schema.get("discriminator", {})
            name = discriminator.get("propertyName")
            if name and isinstance(value, dict) and value.get(name) in discriminator["mapping"]:
                options = [{"$ref": discriminator["mapping"][value[name]]}]
            best: list[str] | None = None
            for option in options:
                missed = self.problems(value, option, where)
                if not missed:
                    return []
                if best is None or len(missed) < len(best):
                    best = missed
            return best or []
        kind = schema.get("type") or ("object" if "properties" in schema else None)
        checks: dict[str, Callable[[Any], bool]] = {
            "object": lambda v: isinstance(v, dict),
            "array": lambda v: isinstance(v, list),
            "string": lambda v: isinstance(v, str),
            "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "boolean": lambda v: isinstance(v, bool),
        }
        if kind in checks and not checks[kind](value):
            return [f"{where}: must be {kind}"]
        found: list[str] = []
        if "enum" in schema and value not in schema["enum"]:
            found.append(f"{where}: {value!r} is not one of {schema['enum']}")
        if isinstance(value, str) and len(value) > schema.get("maxLength", len(value)):
            found.append(f"{where}: longer than {schema['maxLength']} characters")
        if isinstance(value, list):
            if len(value) > schema.get("maxItems", len(value)):
                found.append(f"{where}: more than {schema['maxItems']} items")
            if len(value) < schema.get("minItems", 0):
                found.append(f"{where}: fewer than {schema['minItems']} items")
            for index, item in enumerate(value):
                found += self.problems(item, schema.get("items", {}), f"{where}[{index}]")
        if isinstance(value, dict):
            properties: JSON = schema.get("properties", {})
            for name in schema.get("required", []):
                if name not in value:
                    found.append(f"{where}: {name} is required")
            for name, item in value.items():
                if name in properties:
                    found += self.problems(item, properties[name], f"{where}.{name}")
                elif schema.get("additionalProperties") is False:
                    found.append(f"{where}: unknown property {name}")
        return found


@functools.lru_cache(maxsize=4)
def load_schema(path: Path) -> Schema:
    return Schema(json.loads(path.read_text(encoding="utf-8")))
