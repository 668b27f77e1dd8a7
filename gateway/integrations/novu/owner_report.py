"""Sending the owner's weekly report through Novu, on demand and on the salon's schedule.

One trigger of `frontdesk-owner-report` (owner_workflow.py) per salon and ISO week. Twice for
one week is prevented twice over: the analytics database's `owner_reports` row
(`weekly.claim`, held while Novu is called, so replicas and restarts agree), and the trigger's
`transactionId` `<salon>:report:<week>`, which Novu versions that deduplicate by it honour
(contract §2.4; the `Idempotency-Key` names the attempt, see `send_week`).

The trigger's `to` is the owner as a subscriber object, `<salon>:owner` with their email and
locale: Novu creates or updates the subscriber while processing the trigger (contract §2.2,
docs platform/concepts/trigger.mdx "Subscriber Upsert"; TriggerEventRequestDto `to`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg

from bot.i18n import Catalogs
from gateway.analytics import store as analytics_store
from gateway.analytics import weekly
from gateway.analytics.report_text import render
from gateway.integrations.metabase.week_link import week_link
from gateway.integrations.novu.api import ACCEPTED, NovuClient
from gateway.integrations.novu.owner_workflow import OWNER_REPORT
from gateway.salon_settings import SalonSettings

log = logging.getLogger("frontdesk.report")


class ReportNotSent(Exception):
    """Novu did not take the report (e.g. the workflow is not synced): nothing is recorded."""


def owner_subscriber(salon: str) -> str:
    return f"{salon}:owner"


def report_link(salon: SalonSettings, week: weekly.Week, public_url: str | None) -> str | None:
    """The salon's dashboard for the report's week: a link to the gateway that it signs and,
    when opened, turns into a fresh signed Metabase embed of that week (week_link.py says
    why, and how long it opens). None without PUBLIC_URL or the dashboard's settings."""
    embed = salon.embedding
    if embed is None or not public_url:
        return None
    token = embed.token.get_secret_value()
    return week_link(public_url, salon.profile.id, week, token, salon.profile.zone)


def trigger_body(
    salon: SalonSettings, report: weekly.WeekReport, catalogs: Catalogs, public_url: str | None
) -> dict[str, Any]:
    owner = salon.owner
    if owner is None:
        raise ValueError("the salon has no OWNER_EMAIL")
    link = report_link(salon, report.week, public_url)
    words = render(report, catalogs, owner.locale, salon.profile.name, link)
    payload = report.figures() | {
        "subject": words.subject,
        "text": words.text,
        "dashboardUrl": link or "",
    }
    return {
        "name": OWNER_REPORT,
        "to": {
            "subscriberId": owner_subscriber(salon.profile.id),
            "email": owner.email,
            "locale": owner.locale,
            "timezone": salon.profile.timezone,
        },
        "payload": payload,
        "transactionId": f"{salon.profile.id}:report:{report.week.name}",
    }


async def send_week(
    client: NovuClient,
    connection: asyncpg.Connection,
    salon: SalonSettings,
    week: weekly.Week,
    catalogs: Catalogs,
    public_url: str | None,
) -> bool:
    """Send the week's report unless it was sent; whether it was sent now."""
    await analytics_store.migrate(connection)
    report = await weekly.compute(connection, salon.profile.id, week)
    async with weekly.claim(connection, salon.profile.id, week) as fresh:
        if not fresh:
            log.info("owner report %s already sent", week.name)
            return False
        body = trigger_body(salon, report, catalogs, public_url)
        # Novu keeps an Idempotency-Key's answer, errors too, for 24 hours (contract §2.3,
        # idempotency.interceptor.ts): a key of the week alone would replay a refusal (a
        # workflow not synced yet) or refuse a report with newer figures (same key, another
        # body: 422) for a day. The record above already makes the attempt unique; the key
        # names the attempt, the transactionId the week.
        attempt = f"{body['transactionId']}:{uuid.uuid4().hex[:12]}"
        answer = await client.trigger(body, idempotency_key=attempt)
        status = answer.get("status", ACCEPTED)
        if status != ACCEPTED:
            # Raising rolls the record back: once fixed (`frontdesk novu sync`), send again.
            raise ReportNotSent(f"Novu did not run {OWNER_REPORT}: {status}")
    log.info("owner report %s sent", week.name)
    return True


class ScheduledReports:
    """REPORT_SCHEDULE: at the salon's weekday and time, the week before is sent (once: the
    record in the analytics database decides, whichever replica or restart looks)."""

    def __init__(
        self,
        salon: SalonSettings,
        client: NovuClient,
        database_url: str,
        public_url: str | None,
        clock: Callable[[], datetime],
        catalogs: Catalogs | None = None,
    ) -> None:
        self.salon = salon
        self.client = client
        self.database_url = database_url
        self.public_url = public_url
        self.clock = clock
        self.catalogs = catalogs or Catalogs(default_locale=salon.profile.default_locale)
        self.done: set[str] = set()  # weeks this process knows are sent

    async def run_once(self) -> bool:
        """Send the report if it is due and not sent; whether this call sent it."""
        owner = self.salon.owner
        if owner is None or owner.schedule is None:
            return False
        monday = owner.schedule.due_in(self.clock(), self.salon.profile.zone)
        if monday is None:
            return False
        week = weekly.Week.of(monday)
        if week.name in self.done:
            return False
        connection = await asyncpg.connect(self.database_url, timeout=10)
        try:
            sent = await send_week(
                self.client, connection, self.salon, week, self.catalogs, self.public_url
            )
        finally:
            await connection.close()
        self.done.add(week.name)
        return sent

    async def run(self, every: float = 60.0) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # PostgreSQL or Novu away: the next look tries again
                log.warning("owner report not sent: %s", type(exc).__name__)
