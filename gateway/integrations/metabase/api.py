"""Metabase: `frontdesk metabase sync` (the questions and the "Frontdesk" dashboard, from the
repo) and signed embedding for staff (contract §3).

Sync is idempotent: it finds the analytics database, the questions and the dashboard by name,
creates what is missing and changes only what differs, so a second run writes nothing. The
dashboard's `salon` parameter is locked for embedding: a signed embed shows one salon's data
only. The embed token is a JWT (HS256 with METABASE_SECRET_KEY, `params` always present, a
short `exp`); twenty lines of our own rather than a JWT library for one algorithm.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from gateway.analytics.store import Question

log = logging.getLogger("frontdesk.metabase")

DATABASE_NAME = "Frontdesk analytics"
DASHBOARD_NAME = "Frontdesk"
CARD_PREFIX = "Frontdesk · "
# The dashboard's parameters: the salon (locked in every embed), and the days shown.
PARAMETERS = (
    {"id": "fd-salon", "name": "Salon", "slug": "salon", "type": "category"},
    {"id": "fd-start", "name": "From", "slug": "start", "type": "date/single"},
    {"id": "fd-end", "name": "To", "slug": "end", "type": "date/single"},
)
EMBEDDING = {"salon": "locked", "start": "enabled", "end": "enabled"}
GRID = 24  # Metabase's dashboard grid is 24 columns wide


class MetabaseError(Exception):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_embed(
    secret: str, dashboard: int, params: dict[str, Any], *, ttl: int = 600, now: float | None = None
) -> str:
    """A signed embed token for the dashboard (JWT, HS256)."""
    issued = int(time.time() if now is None else now)
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {"resource": {"dashboard": dashboard}, "params": params, "exp": issued + ttl}
    signing = ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload)
    )
    # A trailing newline in the secret is the classic "Message seems corrupt" (§3.2).
    digest = hmac.new(secret.strip().encode(), signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{_b64(digest)}"


def embed_url(site: str, token: str) -> str:
    return f"{site.rstrip('/')}/embed/dashboard/{token}#bordered=true&titled=true"


def card_body(question: Question, database: int) -> dict[str, Any]:
    tags: dict[str, dict[str, Any]] = {
        slug: {
            "id": f"fd-{slug}",
            "name": slug,
            "display-name": name,
            "type": kind,
            "required": True,
        }
        for slug, name, kind in (
            ("salon", "Salon", "text"),
            ("start", "From", "date"),
            ("end", "To", "date"),
        )
    }
    parameters = [{**p, "target": ["variable", ["template-tag", p["slug"]]]} for p in PARAMETERS]
    return {
        "name": CARD_PREFIX + question.title,
        "description": f"Frontdesk question `{question.slug}` (`frontdesk metabase sync`).",
        "display": question.display,
        "visualization_settings": {},
        "dataset_query": {
            "type": "native",
            "database": database,
            "native": {"query": question.sql, "template-tags": tags},
        },
        "parameters": parameters,
    }


def dashcards(cards: list[int], existing: dict[int, int]) -> list[dict[str, Any]]:
    """Two cards a row, each half the grid; existing dashcards keep their ids."""
    laid = []
    for n, card in enumerate(cards):
        laid.append(
            {
                "id": existing.get(card, -(n + 1)),
                "card_id": card,
                "row": (n // 2) * 6,
                "col": (n % 2) * (GRID // 2),
                "size_x": GRID // 2,
                "size_y": 6,
                "visualization_settings": {},
                "parameter_mappings": [
                    {
                        "parameter_id": p["id"],
                        "card_id": card,
                        "target": ["variable", ["template-tag", p["slug"]]],
                    }
                    for p in PARAMETERS
                ],
            }
        )
    return laid


class MetabaseClient:
    """Metabase's REST API with an API key (`x-api-key`, 0.49+) or a session."""

    def __init__(
        self,
        site: str,
        *,
        api_key: str | None = None,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"x-api-key": api_key} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=site.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )
        self._login = (user, password) if not api_key else None
        self.writes: list[str] = []  # what this client changed (sync reports it)

    async def __aenter__(self) -> MetabaseClient:
        if self._login is not None:
            user, password = self._login
            answer = await self._call(
                "POST", "/api/session", {"username": user, "password": password}
            )
            self._http.headers["X-Metabase-Session"] = str(answer["id"])
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self._http.request(method, path, json=body)
        if not response.is_success:
            raise MetabaseError(
                f"{method} {path}: HTTP {response.status_code} {response.text[:300]}"
            )
        if method != "GET" and path != "/api/session":
            self.writes.append(f"{method} {path}")
        return response.json() if response.content else None

    async def get(self, path: str) -> Any:
        answer = await self._call("GET", path)
        # Lists come bare or as {"data": [...]} depending on the version.
        if isinstance(answer, dict) and isinstance(answer.get("data"), list):
            return answer["data"]
        return answer

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        return await self._call("POST", path, body)

    async def put(self, path: str, body: dict[str, Any]) -> Any:
        return await self._call("PUT", path, body)


def _database_details(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "localhost",
        "port": parts.port or 5432,
        "dbname": parts.path.lstrip("/"),
        "user": parts.username or "",
        "password": parts.password or "",
        "ssl": False,
    }


def _query_of(card: dict[str, Any]) -> str:
    query = card.get("dataset_query") or {}
    native = query.get("native")
    if isinstance(native, dict):
        return str(native.get("query", ""))
    stages = query.get("stages") or [{}]  # MBQL 5 (0.57+)
    return str(stages[0].get("native", ""))


async def sync(
    client: MetabaseClient, database_url: str, questions: list[Question]
) -> dict[str, Any]:
    """Put the analytics database, the questions and the dashboard in place; what it found."""
    databases = await client.get("/api/database")
    database = next((d for d in databases if d.get("name") == DATABASE_NAME), None)
    if database is None:
        body = {
            "engine": "postgres",
            "name": DATABASE_NAME,
            "details": _database_details(database_url),
        }
        database = await client.post("/api/database", body)
    database_id = int(database["id"])

    existing_cards = {c.get("name"): c for c in await client.get("/api/card?f=all")}
    card_ids = []
    for question in questions:
        wanted = card_body(question, database_id)
        card = existing_cards.get(wanted["name"])
        if card is None:
            card = await client.post("/api/card", wanted)
        elif (
            _query_of(card) != question.sql
            or card.get("display") != wanted["display"]
            or [p.get("slug") for p in card.get("parameters") or []]
            != [p["slug"] for p in wanted["parameters"]]
        ):
            card = await client.put(f"/api/card/{card['id']}", wanted)
        card_ids.append(int(card["id"]))

    dashboards = await client.get("/api/dashboard")
    found = next((d for d in dashboards if d.get("name") == DASHBOARD_NAME), None)
    if found is None:
        found = await client.post(
            "/api/dashboard",
            {
                "name": DASHBOARD_NAME,
                "description": "How the front desk performs (`frontdesk metabase sync`).",
                "parameters": list(PARAMETERS),
            },
        )
    dashboard = await client.get(f"/api/dashboard/{found['id']}")
    current = dashboard.get("dashcards") or dashboard.get("ordered_cards") or []
    existing = {int(d["card_id"]): int(d["id"]) for d in current if d.get("card_id")}
    wanted_cards = dashcards(card_ids, existing)
    layout = [(d["card_id"], d["row"], d["col"], d["size_x"], d["size_y"]) for d in wanted_cards]
    have = [
        (d.get("card_id"), d.get("row"), d.get("col"), d.get("size_x"), d.get("size_y"))
        for d in sorted(current, key=lambda d: (d.get("row", 0), d.get("col", 0)))
    ]
    if (
        have != layout
        or not dashboard.get("enable_embedding")
        or dashboard.get("embedding_params") != EMBEDDING
        or [p.get("slug") for p in dashboard.get("parameters") or []]
        != [p["slug"] for p in PARAMETERS]
    ):
        await client.put(
            f"/api/dashboard/{found['id']}",
            {
                "parameters": list(PARAMETERS),
                "dashcards": wanted_cards,
                "enable_embedding": True,
                "embedding_params": EMBEDDING,
            },
        )
    return {"database": database_id, "cards": card_ids, "dashboard": int(found["id"])}
