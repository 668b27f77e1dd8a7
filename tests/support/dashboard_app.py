"""The Chatwoot Dashboard Apps as their pages drive them, over HTTP to the gateway.

Both apps (Bookings at `/dashboard-app/<salon>`, Notices under it at `/notices`) open the same
way: the page, fetched with the salon's link key, carries a page token; the app posts
Chatwoot's appContext to `api/open` and gets the token it calls the rest of its API with.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.dashboard_app import tokens
from tests.test_flow_handoff import CW_TOKEN

JSON = dict[str, Any]


class DashboardApp:
    """One app of one salon: `open` as Chatwoot shows it to an agent, then `call` its API."""

    path = ""

    def __init__(self, gateway: Any, salon_id: str) -> None:
        self.gateway = gateway
        self.base = f"{gateway.url}/dashboard-app/{salon_id}{self.path}"
        self.key = tokens.link_key(tokens.secret_for(salon_id, CW_TOKEN))
        self.token = ""

    async def call(
        self, method: str, path: str, body: Any = None, **query: str
    ) -> tuple[int, JSON]:
        headers = {"Authorization": f"Bearer {self.token}"}
        url = f"{self.base}/api/{path}"
        async with self.gateway.http.request(
            method, url, json=body, params=query, headers=headers
        ) as answer:
            return answer.status, await answer.json()

    async def open_with(self, context: JSON) -> tuple[int, JSON]:
        """The page (it must load), its page token, then `api/open` with Chatwoot's context."""
        async with self.gateway.http.get(self.base, params={"key": self.key}) as page:
            assert page.status == 200
            found = re.search(r'let token = "([^"]+)"', await page.text())
        assert found is not None
        self.token = found.group(1)
        status, answer = await self.call("POST", "open", context)
        if status == 200:
            self.token = answer["token"]
        return status, answer


class Notices(DashboardApp):
    """The Notices app: an agent's own Novu in-app feed."""

    path = "/notices"

    async def open(self, conversation: int, agent: int) -> tuple[int, JSON]:
        context = {"conversation": {"id": conversation}, "currentAgent": {"id": agent}}
        return await self.open_with(context)
