"""A client's httpx requests checked against a vendor spec by the stand-ins' own validator.

`gateway.sandbox.spec` is the one request validator: the stand-ins check what they are sent
with it at run time, and the client tests check what the clients send with the same code
(`request_problems`, which reads a request strictly: see `gateway.sandbox.spec.STRICT`). This
module only turns an httpx request into the validator's `Request`.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import httpx

from gateway.sandbox.spec import Request, Spec
from gateway.sandbox.spec import request_problems as spec_problems


def request_problems(spec: Spec, request: httpx.Request, *, prefix: str = "") -> list[str]:
    """Everything about `request` that the spec would not accept (empty when it conforms).
    `prefix` is the part of the URL path before the spec's paths (e.g. `/api`)."""
    path = request.url.path
    if prefix and path.startswith(prefix):
        path = path[len(prefix) :]
    query = parse_qsl(request.url.query.decode(), keep_blank_values=True)
    headers = {name.lower(): value for name, value in request.headers.items()}
    return spec_problems(spec, Request(request.method, path, headers, query, request.content))
