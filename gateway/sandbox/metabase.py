"""A local stand-in of Metabase's REST API, as far as `frontdesk metabase sync` and signed
embedding use it (contract §3).

Auth by `x-api-key` or a session from `POST /api/session`. Databases, native questions
(`POST /api/card` needs `name`, `dataset_query`, `display` and `visualization_settings`),
dashboards (`PUT /api/dashboard/:id` must carry the whole `dashcards` list, as the real one
replaces it, and new dashcards take negative ids). Signed embeds at `/api/embed/dashboard/
<token>` are verified as Metabase does: HS256 with the embedding secret, `exp` with 60 s of
leeway, `params` present, every locked parameter given, none that is disabled or unknown;
`/embed/dashboard/<token>`, the page a browser opens, shows what that API answered.
`writes` lists every change made, so tests can see a second sync change nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import itertools
import json
import time
import uuid
from typing import Any

from aiohttp import web

from gateway.sandbox.base import StandIn

JSON = dict[str, Any]
LEEWAY = 60


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_embed(token: str, secret: str, now: float | None = None) -> JSON:
    """The token's payload, or ValueError with Metabase's kind of message."""
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(_unb64(header_b64))
        payload = json.loads(_unb64(payload_b64))
    except (ValueError, json.JSONDecodeError):
        raise ValueError("Message seems corrupt or manipulated") from None
    if header.get("alg") != "HS256":
        raise ValueError("Message seems corrupt or manipulated")
    expected = hmac.new(
        secret.encode(), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256
    ).digest()
    if not hmac.compare_digest(expected, _unb64(signature_b64)):
        raise ValueError("Message seems corrupt or manipulated")
    if "exp" in payload and (now or time.time()) > float(payload["exp"]) + LEEWAY:
        raise ValueError("Token is expired")
    if "params" not in payload:
        raise ValueError("Token is missing value for keypath [:params]")
    return dict(payload)


class MetabaseSandbox(StandIn):
    def __init__(
        self, *, api_key: str, user: str = "admin@salon.example", password: str = "", secret: str
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.user = user
        self.password = password
        self.secret = secret
        self.sessions: set[str] = set()
        self.databases: dict[int, JSON] = {}
        self.cards: dict[int, JSON] = {}
        self.dashboards: dict[int, JSON] = {}
        self.writes: list[str] = []
        self._ids = itertools.count(1)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/session", self._create_session)
        app.router.add_get("/api/health", self._health)
        routes = [
            ("GET", "/api/database", self._list(self.databases)),
            ("POST", "/api/database", self._create_database),
            ("GET", "/api/card", self._list(self.cards)),
            ("POST", "/api/card", self._create_card),
            ("PUT", "/api/card/{id}", self._update_card),
            ("GET", "/api/dashboard", self._list(self.dashboards)),
            ("POST", "/api/dashboard", self._create_dashboard),
            ("GET", "/api/dashboard/{id}", self._get_dashboard),
            ("PUT", "/api/dashboard/{id}", self._update_dashboard),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, self._authed(handler))
        app.router.add_get("/api/embed/dashboard/{token}", self._embed)
        app.router.add_get("/embed/dashboard/{token}", self._embed_page)
        return app

    def _authed(self, handler: Any) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            key = request.headers.get("x-api-key")
            session = request.headers.get("X-Metabase-Session")
            if key != self.api_key and session not in self.sessions:
                return web.Response(status=401, text="Unauthenticated")
            if request.method != "GET":
                self.writes.append(f"{request.method} {request.path}")
            try:
                response: web.StreamResponse = await handler(request)
            except (KeyError, ValueError, TypeError) as exc:
                return _error(400, str(exc))
            return response

        return handle

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _create_session(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("username") != self.user or body.get("password") != self.password:
            return _error(401, "Password did not match stored password.")
        session = str(uuid.uuid4())
        self.sessions.add(session)
        return web.json_response({"id": session})

    @staticmethod
    def _list(store: dict[int, JSON]) -> Any:
        async def handle(_request: web.Request) -> web.Response:
            listed = list(store.values())
            # Newer versions wrap the database list in {"data": [...]}.
            return web.json_response(
                {"data": listed} if store and "engine" in listed[0] else listed
            )

        return handle

    async def _create_database(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("engine") != "postgres" or not body.get("name"):
            raise ValueError("engine and name are required")
        details = body.get("details") or {}
        for field in ("host", "port", "dbname", "user"):
            if not details.get(field):
                raise ValueError(f"details.{field} is required")
        database = {
            "id": next(self._ids),
            "name": body["name"],
            "engine": "postgres",
            "details": details,
        }
        self.databases[database["id"]] = database
        return web.json_response(database)

    def _check_card(self, body: JSON) -> None:
        for field in ("name", "dataset_query", "display", "visualization_settings"):
            if field not in body:
                raise ValueError(f"{field}: value must be provided")
        query = body["dataset_query"]
        if query.get("database") not in self.databases:
            raise ValueError("dataset_query.database: unknown database")
        native = query.get("native") or {}
        tags = native.get("template-tags") or {}
        for name in tags:
            if "{{" + name + "}}" not in native.get("query", "").replace(" ", ""):
                raise ValueError(f"template tag {name} is not in the query")

    async def _create_card(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._check_card(body)
        card = {**body, "id": next(self._ids)}
        self.cards[card["id"]] = card
        return web.json_response(card)

    async def _update_card(self, request: web.Request) -> web.Response:
        card = self.cards[int(request.match_info["id"])]
        body = await request.json()
        self._check_card({**card, **body})
        card.update(body)
        return web.json_response(card)

    async def _create_dashboard(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not body.get("name"):
            raise ValueError("name: value must be a non-blank string")
        dashboard = {
            "id": next(self._ids),
            "name": body["name"],
            "description": body.get("description"),
            "parameters": body.get("parameters") or [],
            "dashcards": [],
            "enable_embedding": False,
            "embedding_params": None,
        }
        self.dashboards[dashboard["id"]] = dashboard
        return web.json_response(dashboard)

    async def _get_dashboard(self, request: web.Request) -> web.Response:
        dashboard = self.dashboards.get(int(request.match_info["id"]))
        if dashboard is None:
            return _error(404, "Not found.")
        return web.json_response(dashboard)

    async def _update_dashboard(self, request: web.Request) -> web.Response:
        dashboard = self.dashboards.get(int(request.match_info["id"]))
        if dashboard is None:
            return _error(404, "Not found.")
        body = await request.json()
        if "dashcards" not in body:
            # The real one drops every card not listed: a PUT without them would empty it.
            raise ValueError("dashcards: the full list of dashboard cards must be sent")
        laid = []
        for dashcard in body["dashcards"]:
            if dashcard["card_id"] not in self.cards:
                raise ValueError(f"card {dashcard['card_id']} does not exist")
            known = {d["id"] for d in dashboard["dashcards"]}
            if dashcard["id"] >= 0 and dashcard["id"] not in known:
                raise ValueError("existing dashcards keep their ids; new ones use negative ids")
            laid.append(
                {**dashcard, "id": dashcard["id"] if dashcard["id"] >= 0 else next(self._ids)}
            )
        dashboard.update({k: v for k, v in body.items() if k != "dashcards"})
        dashboard["dashcards"] = laid
        return web.json_response(dashboard)

    async def _embed_page(self, request: web.Request) -> web.Response:
        """The iframe's page: Metabase's app, which asks `/api/embed/dashboard/<token>` for
        the dashboard (contract §3.3). Here it asks the same handler and writes what it got;
        the real page answers 200 and shows the error inside (metabase#63630), this one
        answers with the API's status, so a test sees a refusal without a browser."""
        answer = await self._embed(request)
        body = json.loads(answer.text or "{}")
        if answer.status != 200:
            return web.Response(
                status=answer.status, text=str(body.get("message")), content_type="text/plain"
            )
        filters = "".join(
            f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>"
            for k, v in body["params"].items()
        )
        cards = "".join(f"<li>{html.escape(name)}</li>" for name in body["cards"])
        page = (
            f"<!doctype html><title>{html.escape(body['name'])}</title>"
            f"<h1>{html.escape(body['name'])}</h1><ul class=params>{filters}</ul>"
            f"<ul class=cards>{cards}</ul>"
        )
        return web.Response(text=page, content_type="text/html")

    async def _embed(self, request: web.Request) -> web.Response:
        try:
            payload = verify_embed(request.match_info["token"], self.secret)
        except ValueError as exc:
            return _error(400, str(exc))
        dashboard = self.dashboards.get(int((payload.get("resource") or {}).get("dashboard", 0)))
        if dashboard is None or not dashboard.get("enable_embedding"):
            return _error(400, "Embedding is not enabled for this object.")
        params = payload["params"]
        visibility = dashboard.get("embedding_params") or {}
        for slug in params:
            if slug not in visibility:
                return _error(400, f"Unknown parameter :{slug}.")
            if visibility[slug] == "disabled":
                return _error(400, f"You're not allowed to specify a value for {slug}.")
        for slug, how in visibility.items():
            if how == "locked" and slug not in params:
                return _error(400, f"You must specify a value for :{slug} in the JWT.")
        cards = [self.cards[d["card_id"]]["name"] for d in dashboard["dashcards"]]
        return web.json_response({"name": dashboard["name"], "params": params, "cards": cards})
