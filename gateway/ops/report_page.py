"""The analytics without Metabase: a small page with every question's answer and simple bars.

`frontdesk demo` serves it beside the chats, so what a person just did in the demo shows up
in the salon's numbers. It runs the same SQL as Metabase and `frontdesk analytics report`.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from gateway.analytics import store as analytics_store
from gateway.sandbox.pages import page

log = logging.getLogger("frontdesk.report")

PAGE = Path(__file__).parents[1] / "sandbox" / "static" / "analytics.html"


def _json(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


class ReportPage:
    def __init__(self, database_url: str, salon_id: str, zone: str) -> None:
        self.database_url = database_url
        self.salon_id = salon_id
        self.zone = ZoneInfo(zone)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/report.json", self._report)
        return app

    async def _page(self, _request: web.Request) -> web.Response:
        return page(PAGE.read_text(encoding="utf-8"))

    async def _report(self, _request: web.Request) -> web.Response:
        end = datetime.now(self.zone).date()
        start = end - timedelta(days=29)
        try:
            connection = await asyncpg.connect(self.database_url, timeout=5)
        except (OSError, asyncpg.PostgresError) as exc:
            return web.json_response({"error": f"PostgreSQL: {type(exc).__name__}"}, status=503)
        try:
            await analytics_store.migrate(connection)
            answers = []
            for question in analytics_store.questions():
                columns, rows = await analytics_store.run_question(
                    connection, question, self.salon_id, start, end
                )
                answers.append(
                    {
                        "title": question.title,
                        "display": question.display,
                        "columns": columns,
                        "rows": [[_json(v) for v in row] for row in rows],
                    }
                )
        finally:
            await connection.close()
        return web.json_response(
            {"from": start.isoformat(), "to": end.isoformat(), "answers": answers}
        )
